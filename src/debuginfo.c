/* SPDX-License-Identifier: MIT */
/*
 * An object's DWARF, in the object or in a separate debug file (see
 * debuginfo.h). libdw opens the dwz alternate file (.gnu_debugaltlink) by
 * itself.
 */
#include "debuginfo.h"

#include <dwarf.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEBUG_ROOT "/usr/lib/debug"

/* Open @path as ELF with DWARF: 0, or -1 (nothing kept open). */
static int open_debug(const char *path, int *fdp, Elf **elfp, Dwarf **dbgp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	Elf *elf;
	Dwarf *dbg;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	dbg = elf && elf_kind(elf) == ELF_K_ELF
		      ? dwarf_begin_elf(elf, DWARF_C_READ, NULL)
		      : NULL;
	if (!dbg) {
		if (elf)
			elf_end(elf);
		close(fd);
		return -1;
	}
	*fdp = fd;
	*elfp = elf;
	*dbgp = dbg;
	return 0;
}

/* Does the ELF file @elf have this build id (or none to compare)? */
static bool same_build_id(Elf *elf, const void *id, ssize_t len)
{
	const void *other;
	ssize_t n = dwelf_elf_gnu_build_id(elf, &other);

	return len <= 0 || n <= 0 || (n == len && !memcmp(id, other, len));
}

/* The separate debug file of @d, as gdb finds it. */
static void find_separate(struct rw__debuginfo *d, const char *real)
{
	const void *id = NULL;
	ssize_t idlen = dwelf_elf_gnu_build_id(d->elf, &id);
	GElf_Word crc;
	const char *link = dwelf_elf_gnu_debuglink(d->elf, &crc);
	char path[PATH_MAX * 2], dir[PATH_MAX];
	const char *slash;
	size_t n = 0;

	if (idlen > 1) {
		const uint8_t *b = id;

		n = (size_t)snprintf(path, sizeof(path),
				     DEBUG_ROOT "/.build-id/%02x/", b[0]);
		for (ssize_t i = 1; i < idlen && n + 8 < sizeof(path); i++)
			n += (size_t)snprintf(path + n, sizeof(path) - n,
					      "%02x", b[i]);
		snprintf(path + n, sizeof(path) - n, ".debug");
		if (!open_debug(path, &d->dfd, &d->delf, &d->dbg))
			return;
	}
	if (!link || !link[0] || strchr(link, '/'))
		return;
	slash = strrchr(real, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - real) : 1,
		 slash ? real : ".");
	for (int k = 0; k < 3; k++) {
		snprintf(path, sizeof(path),
			 k == 0	  ? "%s/%s"
			 : k == 1 ? "%s/.debug/%s"
				  : DEBUG_ROOT "%s/%s",
			 dir, link);
		if (open_debug(path, &d->dfd, &d->delf, &d->dbg))
			continue;
		/* Not the file it was split from: ignore it. */
		if (same_build_id(d->delf, id, idlen))
			return;
		dwarf_end(d->dbg);
		elf_end(d->delf);
		close(d->dfd);
		d->dbg = NULL;
		d->delf = NULL;
		d->dfd = -1;
	}
}

void rw__debuginfo_close(struct rw__debuginfo *d)
{
	if (d->dbg)
		dwarf_end(d->dbg);
	if (d->delf)
		elf_end(d->delf);
	if (d->dfd >= 0)
		close(d->dfd);
	if (d->elf)
		elf_end(d->elf);
	if (d->fd >= 0)
		close(d->fd);
	d->dbg = NULL;
	d->delf = d->elf = NULL;
	d->dfd = d->fd = -1;
}

bool rw__debuginfo_open(struct rw__debuginfo *d, const char *file,
			const char *real)
{
	/* libelf refuses every call until a version is set; this is
	 * idempotent. */
	if (elf_version(EV_CURRENT) == EV_NONE)
		return false;
	d->fd = open(file, O_RDONLY | O_CLOEXEC);
	if (d->fd < 0)
		return false;
	d->elf = elf_begin(d->fd, ELF_C_READ_MMAP, NULL);
	if (!d->elf || elf_kind(d->elf) != ELF_K_ELF)
		return false;
	d->dbg = dwarf_begin_elf(d->elf, DWARF_C_READ, NULL);
	if (!d->dbg)
		find_separate(d, real);
	return d->dbg != NULL;
}
