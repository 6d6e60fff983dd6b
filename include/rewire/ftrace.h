/* SPDX-License-Identifier: MIT */
/*
 * rewire/ftrace.h - trace any function with a patchable entry, live.
 *
 * Overview
 *
 * The user-space ftrace. Every function compiled with
 * -fpatchable-function-entry (rewire_target_patchable() in CMake) starts
 * with five bytes of NOPs (two NOPs on aarch64). Attaching a probe to a
 * set of such functions turns each entry into a jump to a small
 * trampoline of its own, in one trap batch however many functions there
 * are (int3 on x86-64, BRK on aarch64); detaching restores the exact
 * bytes. Nothing else in the program changes, and no function needs an
 * annotation in its source.
 *
 *	entry		a probe's entry function runs in the calling thread
 *			before the function's first instruction, with the
 *			function and its caller (the return address)
 *	graph		a probe with a return function also runs when the
 *			function returns, with the duration and the depth:
 *			the return address is replaced by rewire's return
 *			trampoline and kept on a per-thread shadow stack
 *			(the kernel's function_graph)
 *
 * An entry is shared by every user of the function (DESIGN.md 8b): live
 * patches, any number of attached probe sets. Its bytes are derived from
 * that list: NOPs when nobody uses it, the live patch's jump when only a
 * patch does, else the jump to the function's trampoline, which calls the
 * probes and then goes where the patch state sends the thread (the old
 * body, the transition's dispatcher, or the new function). A traced and
 * patched function therefore traces its new body, and tracing never lets a
 * thread bypass the patch's consistency model.
 *
 * Usage
 *
 *	static void on_entry(void *data, const struct rw_ftrace_func *f,
 *			     uintptr_t caller) { ... }
 *	static void on_return(void *data, const struct rw_ftrace_func *f,
 *			      uintptr_t caller, uint64_t ns, unsigned depth)
 *	{ ... }
 *
 *	const char *want[] = { "parse_*", "!parse_debug*" };
 *	struct rw_ftrace_probe probe = { on_entry, on_return, &ctx };
 *	struct rw_ftrace *t;
 *	int err = rw_ftrace_attach(want, 2, &probe, 0, &t);
 *	if (err)
 *		fprintf(stderr, "%s\n", rw_ftrace_last_error());
 *	...
 *	err = rw_ftrace_detach(t);	// now ctx may be freed
 *
 * Patterns
 *
 * A pattern is a glob (fnmatch: *, ?, [...]) matched against the symbol
 * name and, for C++, its demangled name with and without the parameter
 * list ("ns::compute(int)", "ns::compute", "ns::comp*"). "!GLOB" excludes
 * what it matches from the set the other patterns select (a list of
 * exclusions only selects everything else). "GLOB@OBJECT" limits the match
 * to objects whose path or basename matches OBJECT (a glob too). GCC's
 * clones (NAME.constprop.N, NAME.isra.N, NAME.part.N) are functions of
 * their own: "NAME" does not select them, "NAME*" or "NAME.*" does; their
 * .cold pieces have no entry and are never traced.
 *
 * What is never traced
 *
 * Functions without a patchable entry (most libraries as Debian builds
 * them), rewire's own code and the libraries rewire itself calls (the
 * probe and SIGTRAP paths), objects that are not mapped from a file. A
 * probe that calls a traced function, or a traced function that runs in a
 * signal handler while the same thread is in a probe, is not recursed into:
 * the hit is counted (rw_ftrace_stats) and the function runs untraced.
 *
 * Caveats
 *
 * - Probes run in the traced thread, possibly in a signal handler, with
 *   the caller's argument registers saved and restored around them. They
 *   must be async-signal-safe if the traced functions can run in a signal
 *   handler, and must not block for long.
 * - Graph mode replaces return addresses. rewire puts them back before
 *   every unwinder it knows runs: C++ exceptions (_Unwind_RaiseException
 *   and friends), pthread_exit, pthread_cancel, backtrace(); longjmp,
 *   setcontext/swapcontext and coroutines need nothing (the shadow stack is
 *   matched by stack address, not by depth). An unwinder that walks the
 *   stack on its own (a profiler reading the stack from outside, gdb) sees
 *   rewire_ftrace_return as the caller of a traced function.
 * - A shadow stack holds RW_FTRACE_GRAPH_DEPTH calls per thread; deeper
 *   calls are traced on entry but their return is not (counted as
 *   shadow_full).
 * - A shared object with a traced function stays loaded until the probe set
 *   is detached (a dlclose by the program only drops its reference).
 * - The generic backend (no code patching) has no function tracing:
 *   -EOPNOTSUPP.
 * - aarch64 (entries built with -fpatchable-function-entry=2: two NOPs,
 *   after BTI C under -mbranch-protection) has entry probes; graph mode is
 *   not there yet: a probe with a return function is refused with
 *   -EOPNOTSUPP (doc/FTRACE.md, "aarch64").
 */
#ifndef REWIRE_FTRACE_H
#define REWIRE_FTRACE_H

#include <rewire/common.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Calls a shadow stack holds per thread. */
#define RW_FTRACE_GRAPH_DEPTH 256

/* A function of the program, traceable or not. */
struct rw_ftrace_func {
	uintptr_t addr;	       /* its entry: the symbol's value */
	size_t size;	       /* st_size */
	const char *name;      /* the symbol's name (mangled for C++) */
	const char *demangled; /* C++: the demangled name; else == name */
	const char *object;    /* path of the object that defines it */
	/* 0: traceable. Else why not, a negative code:
	 *   -RW_ERR_NOT_PATCHABLE	no patchable entry (5 NOPs)
	 *   -EPERM			rewire's own code, or a library rewire
	 *				calls while tracing
	 *   -RW_ERR_BREAKPOINT		another tool's int3 is on the entry
	 *   -RW_ERR_INLINED		no code of its own: inlined into every
	 *				caller (rw_ftrace_list only, from
	 *				DWARF; addr and size are 0) */
	int status;
	/* Copies of the function inlined into callers that the trace does
	 * not see (from DWARF when the object has it, in the object or in a
	 * separate debug file by build id or .gnu_debuglink; 0 when
	 * unknown). Filled by rw_ftrace_list. */
	unsigned inlined;
};

/*
 * A probe. Either function may be NULL (not both). @data is passed back
 * as is. @caller is the return address of the call (inside the calling
 * function). @ns: the time from the entry to the return (CLOCK_MONOTONIC),
 * @depth: how many graph-traced calls of this thread were active around
 * the call (0 for the outermost; always 0 when no probe set with a return
 * function traces the thread's callers: only graph mode keeps the calls
 * on a stack). The return gets the entry's depth.
 *
 * Names are demangled with the process's own __cxa_demangle: a C++
 * program that does not load libstdc++ is traced and listed by its
 * mangled names.
 */
typedef void (*rw_ftrace_entry_fn)(void *data, const struct rw_ftrace_func *f,
				   uintptr_t caller, unsigned depth);
typedef void (*rw_ftrace_return_fn)(void *data, const struct rw_ftrace_func *f,
				    uintptr_t caller, uint64_t ns,
				    unsigned depth);
struct rw_ftrace_probe {
	rw_ftrace_entry_fn entry;
	rw_ftrace_return_fn ret; /* non-NULL: graph mode */
	void *data;
};

/* An attached probe and its set of functions. */
struct rw_ftrace;

/*
 * rw_ftrace_attach - attach @probe to the functions @patterns select.
 *
 * Every selected function's entry is changed in one int3 batch (at most
 * three core syncs). On return the probe runs for every call that begins
 * afterwards, in every thread. @flags: 0.
 *
 * Returns 0, or one of these errors, with a message in
 * rw_ftrace_last_error(); nothing is changed:
 *   -EINVAL		a NULL or empty pattern, a NULL probe, more than
 *			65,536 patterns
 *   -ENOENT		no traceable function matches (the message says
 *			why: no such name, the names that come close, or the
 *			matches that cannot be traced and why)
 *   -RW_ERR_NOT_PATCHABLE a pattern without wildcards names a function
 *			without a patchable entry
 *   -RW_ERR_INLINED	a pattern without wildcards names a function that
 *			exists only inlined into its callers (DWARF)
 *   -RW_ERR_BREAKPOINT	another tool's breakpoint is on a selected entry
 *   -EOPNOTSUPP	the generic backend
 *   -ENOMEM, or an error of the int3 batch (rw_text_poke_batch)
 */
RW_EXPORT int rw_ftrace_attach(const char *const *patterns, size_t npatterns,
			       const struct rw_ftrace_probe *probe,
			       unsigned flags, struct rw_ftrace **out);

/*
 * rw_ftrace_detach - stop tracing and free @t. On return no probe call of
 * @t is running or will run, and the entries that only @t used hold their
 * original bytes again. Returns 0 or a negative error (the set stays
 * attached): -EDEADLK from inside a probe.
 */
RW_EXPORT int rw_ftrace_detach(struct rw_ftrace *t);

/* The functions @t traces, sorted by address; valid until detach. */
RW_EXPORT size_t rw_ftrace_nfuncs(const struct rw_ftrace *t);
RW_EXPORT const struct rw_ftrace_func *
rw_ftrace_func_at(const struct rw_ftrace *t, size_t i);

/* Counters of @t since attach. */
struct rw_ftrace_stats {
	uint64_t recursion;   /* hits not traced: the thread was in a probe */
	uint64_t shadow_full; /* returns not traced: shadow stack full */
};
RW_EXPORT void rw_ftrace_get_stats(const struct rw_ftrace *t,
				   struct rw_ftrace_stats *s);

/*
 * rw_ftrace_list - call @cb for every function @patterns select (all
 * functions for npatterns 0), traceable or not (see status), in object
 * then address order, each object's inline-only functions (status
 * -RW_ERR_INLINED) after its others, by name; stops early and returns what
 * @cb returned when that is not 0. The first listing of an object reads
 * its DWARF (once: one pass, kept as counts). Returns 0, -ENOMEM, -EINVAL
 * (a bad pattern).
 */
RW_EXPORT int
rw_ftrace_list(const char *const *patterns, size_t npatterns,
	       int (*cb)(void *arg, const struct rw_ftrace_func *f), void *arg);

/* The calling thread's message for its last failed rw_ftrace_* call. */
RW_EXPORT const char *rw_ftrace_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* REWIRE_FTRACE_H */
