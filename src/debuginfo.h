/* SPDX-License-Identifier: MIT */
/*
 * Private: an object's DWARF, wherever it is (src/debuginfo.c). Shared by
 * live patching (inlined copies of patched functions) and function tracing
 * (inlined functions): neither calls the other.
 */
#ifndef REWIRE_DEBUGINFO_H
#define REWIRE_DEBUGINFO_H

#include <elfutils/libdw.h>
#include <libelf.h>
#include <stdbool.h>

/* An object's ELF file and its DWARF. Zero it with fd = dfd = -1. */
struct rw__debuginfo {
	int fd, dfd; /* the object; the separate debug file (or -1) */
	Elf *elf, *delf;
	Dwarf *dbg; /* NULL: no debug information */
};

/*
 * rw__debuginfo_open - open the object @file (as the loader mapped it:
 * /proc/self/exe will do) and its DWARF: in the object itself, else in a
 * separate debug file by build id under /usr/lib/debug/.build-id, else by
 * .gnu_debuglink next to @real (the object's real path), in its .debug
 * directory or under /usr/lib/debug, as gdb looks. A debug link whose build
 * id differs is ignored. True if there is DWARF (d->dbg); either way,
 * close @d with rw__debuginfo_close().
 */
bool rw__debuginfo_open(struct rw__debuginfo *d, const char *file,
			const char *real);
void rw__debuginfo_close(struct rw__debuginfo *d);

#endif /* REWIRE_DEBUGINFO_H */
