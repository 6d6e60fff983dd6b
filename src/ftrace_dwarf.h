/* SPDX-License-Identifier: MIT */
/* Private: inlined functions of an object, from its DWARF
 * (src/ftrace_dwarf.c), for function tracing. */
#ifndef REWIRE_FTRACE_DWARF_H
#define REWIRE_FTRACE_DWARF_H

#include <stddef.h>
#include <stdint.h>

/* A function the compiler inlined into callers at least once. */
struct rw__ftd_func {
	char *name;	  /* linkage name (C++: mangled), else the DWARF name */
	uintptr_t addr;	  /* an out-of-line copy's entry (load address);
			   * 0: the function exists only inlined */
	unsigned copies;  /* inlined copies */
	unsigned callers; /* functions holding them */
};

/*
 * rw__ftrace_dwarf_inlined - the inlined functions of the object @file
 * (the file the loader mapped, e.g. /proc/self/exe; @real: its real path,
 * for .gnu_debuglink), loaded at @bias. A function with several
 * out-of-line copies (GCC's clones) has an element per copy, each with
 * every inlined copy; an inline-only one a single element of address 0.
 * One pass over the object's DWARF. Returns 0 (*n = 0 without debug
 * information) or -ENOMEM; free *out with rw__ftrace_dwarf_free().
 */
int rw__ftrace_dwarf_inlined(const char *file, const char *real, uintptr_t bias,
			     struct rw__ftd_func **out, size_t *n);
void rw__ftrace_dwarf_free(struct rw__ftd_func *v, size_t n);

#endif /* REWIRE_FTRACE_DWARF_H */
