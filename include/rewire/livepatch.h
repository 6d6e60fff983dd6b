/* SPDX-License-Identifier: MIT */
/*
 * rewire/livepatch.h - replace functions of the running program, with the
 * kernel livepatch's per-thread consistency model.
 *
 * A patch (rewire/patch.h) is loaded, checked against the program's symbol
 * tables, then enabled. Enabling starts a transition: the entry of every
 * old function jumps to a dispatcher that runs the old or the new function
 * depending on the calling thread's state. A thread switches to the target
 * state when
 *   - its stack holds none of the patch's functions (the old ones when
 *     patching, the new ones when unpatching): running threads unwind
 *     their own stack (libunwind) in rewire's signal handler; threads
 *     blocked in a system call are unwound from outside, from the
 *     registers the kernel shows in /proc/self/task/TID/syscall, and are
 *     not signalled, so their call is never interrupted. Only the stack
 *     pointer and instruction pointer are known there: when a frame
 *     needs %rbp to be unwound (code built with frame pointers calling
 *     the system call wrapper), the thread is signalled if its call is
 *     one the kernel restarts after a handler (read, write, accept,
 *     futex, ...), and otherwise (nanosleep, poll, epoll_wait, select)
 *     it stays pending, reported as RW_PT_UNWIND_FAILED, until its call
 *     returns;
 *   - or it calls rw_patch_quiescent() (it says: none of my callers is a
 *     patched function).
 * A stack that cannot be unwound to its end counts as "not yet". Threads
 * created during a transition start in the target state; threads that
 * exit are forgotten. When every thread has switched, each old entry
 * becomes a direct "jmp new" (no dispatch cost afterwards) and the
 * transition completes.
 *
 *	struct rw_patch *p;
 *	int err = rw_patch_load("fix.so", 0, &p);
 *
 *	if (err)
 *		fprintf(stderr, "%s\n", rw_patch_last_error());
 *	else if (!(err = rw_patch_enable(p)))
 *		err = rw_patch_wait(p, 5000);	// -ETIMEDOUT: still going
 *
 * Only one transition runs at a time in the process (as in the kernel).
 * Patches stack: a patch of a function that an earlier patch replaced
 * starts from that patch's function, and only the topmost patch of a
 * stack can be disabled. A patch built with .replace = 1 replaces every
 * earlier patch atomically: functions they patched that it does not
 * patch return to their original code in the same transition, and the
 * earlier patches end up REPLACED (they can then only be unloaded).
 *
 * Requirements: the x86_64 backend (elsewhere every call returns
 * -EOPNOTSUPP), target functions built with -fpatchable-function-entry=5
 * or more, the patch file owned by the caller's user (or root) and not
 * writable by group or others.
 *
 * Caveats:
 * - A thread that never leaves a patched function (or stays blocked in a
 *   system call below one) keeps the transition open; rw_patch_state()
 *   names it. rw_patch_force() completes the transition without it, as the
 *   kernel's force: the thread may then run the old and the new code
 *   mixed, and the forced patch's object is never unmapped.
 * - Threads created with a raw clone() and no pthread_create() are not
 *   seen until they show up in /proc/self/task; they are then checked like
 *   the others.
 * - A thread that is running (not blocked) when it is checked gets
 *   rewire's signal (rewire/threads.h): a system call that it enters at
 *   that very moment may return EINTR, as with any signal.
 */
#ifndef REWIRE_LIVEPATCH_H
#define REWIRE_LIVEPATCH_H

#include <rewire/common.h>
#include <rewire/patch.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

RW_EXTERN_C_BEGIN

struct rw_patch;

enum rw_patch_state_kind {
	RW_PATCH_LOADED,    /* loaded and checked, never enabled or disabled */
	RW_PATCH_ENABLING,  /* transition to patched in progress */
	RW_PATCH_ENABLED,   /* every thread runs the new functions */
	RW_PATCH_DISABLING, /* transition back in progress */
	RW_PATCH_DISABLED,  /* every thread runs the old functions again */
	RW_PATCH_REPLACED,  /* a later replace patch took over */
};

/* Why a thread has not switched yet. */
enum rw_patch_thread_why {
	RW_PT_SWITCHED,	     /* in the target state */
	RW_PT_NOT_CHECKED,   /* not looked at yet in this transition */
	RW_PT_ON_STACK,	     /* a patch function is on its stack */
	RW_PT_UNWIND_FAILED, /* its stack could not be unwound to the end */
	RW_PT_BUSY,	     /* it was inside a dispatcher or entry, or it moved
			     * while it was being checked */
	RW_PT_NO_ANSWER,     /* it did not answer rewire's signal in time */
};

struct rw_patch_thread {
	pid_t tid;
	int why;       /* enum rw_patch_thread_why */
	int patched;   /* rw_patch_threads: 1 runs the patch's functions,
			* 0 the ones below it, -1 unknown */
	uintptr_t ip;  /* RW_PT_ON_STACK: the frame's address */
	char func[64]; /* RW_PT_ON_STACK: the function found there */
};

struct rw_patch_info {
	char name[64];
	char path[256];
	int state;   /* enum rw_patch_state_kind */
	int forced;  /* a transition of the patch was forced */
	int replace; /* built as an atomic replace patch */
	size_t nfuncs;
	int target_patched;	 /* in a transition: 1 patching, 0 unpatching */
	size_t threads_total;	 /* threads in the transition (last check) */
	size_t threads_switched; /* of which in the target state */
	uint64_t transition_ns;	 /* time since it started, or its duration */
	unsigned attempts;	 /* check rounds so far */
	/* Threads not switched, up to RW_PATCH_INFO_THREADS of them. */
	size_t npending;
#define RW_PATCH_INFO_THREADS 16
	struct rw_patch_thread pending[RW_PATCH_INFO_THREADS];
};

/* Flags of rw_patch_load. */
#define RW_PATCH_LOAD_ALLOW_ANY_OWNER 1u /* skip the owner/mode check */
/* Load even if a patched function has copies inlined into callers (they
 * keep the old code: patch those callers too, or accept it). */
#define RW_PATCH_LOAD_ALLOW_INLINED 2u
/* Refuse a patch that carries no build binding (.rewire.bind, written by
 * `rewire bind-patch`): -RW_ERR_BUILD_ID. The control server's patch
 * directory loads with it (rewire/ctl.h). */
#define RW_PATCH_LOAD_BOUND_ONLY 4u

/*
 * rw_patch_load - map a patch object and check it against the program.
 * @path:  the patch's .so file.
 * @flags: 0, RW_PATCH_LOAD_ALLOW_ANY_OWNER (tests only),
 *         RW_PATCH_LOAD_ALLOW_INLINED, RW_PATCH_LOAD_BOUND_ONLY.
 * @out:   receives the patch, in state LOADED.
 *
 * Checks, in this order, without running any code of the patch until the
 * file passed the first three: the file (a regular file owned by the
 * caller's effective uid or root, not writable by group or others; opened
 * once, the same open file is mapped), its ELF note (".note.rewire" with
 * the version of this library), its binding (".rewire.bind", if it has
 * one: each bound object loaded with the recorded build-id, each bound
 * function of the recorded size and hash), the descriptor (magic,
 * version, size), the name (no loaded patch has it),
 * then each function: the object is loaded and has a symbol table (not
 * stripped), the symbol exists and is unique (or its position exists),
 * its size matches when given, its entry holds at least five NOP bytes
 * from -fpatchable-function-entry, no other loaded patch replaces it in a
 * way that conflicts; each reference and each relocation resolves (a
 * relocation's field lies in the patch; the fields are written before
 * the load returns). Last, the DWARF of each
 * target object (its own, or a separate debug file by build id or
 * .gnu_debuglink): no patched function may have copies inlined into
 * callers that the patch does not replace too. Without debug information
 * the load succeeds and rw_patch_last_error() returns a warning ("warning:
 * ...: inlining not checked: ...").
 *
 * Returns 0, or a negative error with a message in rw_patch_last_error():
 *   -EINVAL bad arguments; -EOPNOTSUPP generic backend;
 *   -RW_ERR_PATCH_FILE  owner, mode, not a regular file (a FIFO, device,
 *   directory or socket is refused without blocking), not ELF, another
 *   machine, not a shared object (an executable, a .o), truncated (a
 *   segment or section past the end of the file), or dlopen refused it,
 *   malformed .rewire.bind (with its line);
 *   -RW_ERR_BUILD_ID  bound (.rewire.bind) to another build: an object's
 *   build-id, or a function's size or hash, differ (both in the message);
 *   or not bound at all, with RW_PATCH_LOAD_BOUND_ONLY;
 *   -RW_ERR_PATCH_VERSION  no note, other version, bad descriptor, a
 *   relocation of an unknown type, with flags, or outside the patch;
 *   -RW_ERR_OUT_OF_RANGE  a PC32 relocation does not fit;
 *   -RW_ERR_SYMBOL  a symbol or object not found (a bound object not
 *   loaded; dlopen's "undefined symbol", with a hint);
 *   -RW_ERR_AMBIGUOUS  a name with several symbols and position 0;
 *   -RW_ERR_STRIPPED  an object with no symbol table;
 *   -RW_ERR_NOT_PATCHABLE  no patchable entry, or size mismatch;
 *   -RW_ERR_INLINED  a function has copies inlined into callers, which
 *   the message names (unless RW_PATCH_LOAD_ALLOW_INLINED: a warning);
 *   -EEXIST  a patch of the same name is loaded (checked before anything
 *   is written, so also for the same file loaded twice);
 *   -EDEADLK  called from a patch's constructor or destructor (while a
 *   patch is loaded or unloaded) or callback (under the patch lock) in
 *   this thread: it would wait for itself (also rw_patch_unload and the
 *   calls below, from a callback);
 *   -ENOMEM, or the negative errno of open() (-ENOENT, -EACCES).
 * On error nothing of the program has changed and the patch is unmapped.
 */
RW_EXPORT int rw_patch_load(const char *path, unsigned flags,
			    struct rw_patch **out);

/*
 * rw_patch_load_fd - rw_patch_load of the file open on @fd.
 * @fd:           a descriptor of the patch file, in any mode (O_PATH and
 *                write-only too); not closed, its offset not used. The file
 *                is opened again through /proc/self/fd, read-only.
 * @display_path: names the file in messages and in rw_patch_state's .path
 *                (kept as given, not resolved here); NULL: "(descriptor N)".
 *
 * For a file the process cannot reach by its path: one in a directory it
 * may not search, one since unlinked, or one of another mount namespace
 * (the control server loads a descriptor passed by `rewire` this way).
 * The checks, flags, errors and messages are rw_patch_load's, made on the
 * file @fd refers to: owned by the caller's effective uid or root, not
 * writable by group or others, a regular file (anything else is refused
 * without being opened).
 *
 * Returns what rw_patch_load() returns, and -EINVAL when @fd < 0, or the
 * negative errno of reopening (-EACCES when the process may not read the
 * file).
 */
RW_EXPORT int rw_patch_load_fd(int fd, const char *display_path, unsigned flags,
			       struct rw_patch **out);

/*
 * rw_patch_last_error - the message of this thread's last rw_patch_* call
 * (like dlerror): every rw_patch_* call that can fail clears it first, so
 * after a failure it says why that very call failed, and after a success
 * it is "no error" (rw_patch_list, rw_patch_find and rw_patch_quiescent
 * leave it alone). The string is the thread's own, valid until its next
 * rw_patch_* call.
 */
RW_EXPORT const char *rw_patch_last_error(void);

/*
 * rw_patch_enable - start the transition to the patched state.
 * Runs pre_patch (its failure is returned, nothing changed), redirects the
 * old entries to dispatchers and makes a first pass over the threads.
 * Returns 0 when the transition started (or already completed: see
 * rw_patch_state); -EBUSY when another transition is in progress or the
 * patch is not LOADED or DISABLED; -EALREADY when enabled;
 * -RW_ERR_THREAD_TIMEOUT when running threads did not answer while the
 * entries' NOPs were armed (three tries, 1 + 2 + 4 s; nothing changed).
 * Calling it on a patch that is DISABLING reverses that transition.
 */
RW_EXPORT int rw_patch_enable(struct rw_patch *p);

/*
 * rw_patch_disable - start the transition back to the old functions.
 * Only the topmost enabled patch of a function can be disabled (-EBUSY,
 * naming the patch above it, otherwise). On an ENABLING patch, reverses
 * that transition.
 *
 * Returns 0 when the transition started (or was reversed); -EINVAL when
 * @p is not a loaded patch or not ENABLED; -EBUSY when another transition
 * is in progress or a patch above @p replaces one of its functions;
 * -EOPNOTSUPP on the generic backend; -EDEADLK from a patch's callback;
 * or the error of starting the transition. rw_patch_last_error() says why.
 */
RW_EXPORT int rw_patch_disable(struct rw_patch *p);

/*
 * rw_patch_wait - drive the transition of @p until it completes.
 * @timeout_ms: < 0 forever. Checks the pending threads again after 1 ms
 * while rounds make progress, backing off to 100 ms while they do not
 * (threads that stay in a patched function). Returns 0 when complete (and not
 * in transition), -ETIMEDOUT if threads are still pending (see
 * rw_patch_state), or an error.
 */
RW_EXPORT int rw_patch_wait(struct rw_patch *p, int timeout_ms);

/*
 * rw_patch_force - complete the transition of @p now: every pending thread
 * is set to the target state without a check, and the patch is marked
 * forced (its object is then never unmapped). Use it when
 * rw_patch_state() shows a thread that will never leave.
 *
 * Returns 0 when the transition completed; -EINVAL when @p is not a loaded
 * patch or not in transition; -EOPNOTSUPP on the generic backend;
 * -EDEADLK from a patch's callback; or a negative errno (-ENOMEM).
 * rw_patch_last_error() says why.
 */
RW_EXPORT int rw_patch_force(struct rw_patch *p);

/*
 * rw_patch_unload - unmap a patch that is LOADED, DISABLED or REPLACED
 * (-EBUSY otherwise). No thread may be anywhere in the patch's code (any
 * executable segment of it, not only its replacement functions: a helper
 * they tail-called, their .cold pieces): -EBUSY while one is, with the
 * thread in rw_patch_last_error(); try again later. A forced patch's
 * object stays mapped, and so does one while a thread could not be checked
 * (it blocks rewire's signal, or its stack cannot be unwound). On success
 * @p is freed.
 *
 * Returns 0; -EBUSY (see above); -EINVAL when @p is not a loaded patch;
 * -EDEADLK from the patch's own code (a callback, a constructor or
 * destructor); -EOPNOTSUPP on the generic backend. rw_patch_last_error()
 * says why.
 */
RW_EXPORT int rw_patch_unload(struct rw_patch *p);

/*
 * rw_patch_state - fill @info for @p: its state, and for a transition the
 * threads that have not switched yet and why.
 * Returns 0, or -EINVAL when @p is not a loaded patch or @info is NULL.
 */
RW_EXPORT int rw_patch_state(struct rw_patch *p, struct rw_patch_info *info);

/*
 * rw_patch_list - the loaded patches, bottom to top of the stack. Fills
 * up to @max entries and returns how many patches there are.
 */
RW_EXPORT size_t rw_patch_list(struct rw_patch **out, size_t max);

/*
 * rw_patch_threads - every thread of the process and where it stands with
 * @p: .patched (1: runs @p's functions, 0: the code below @p, -1: not
 * known: a thread rewire has not seen start and that was not checked
 * yet), .why (RW_PT_SWITCHED when it is in the state of @p, or the reason
 * from the last check), .ip and .func for RW_PT_ON_STACK. Fills up to
 * @max entries, sorted by tid, and returns the number of threads (more
 * than @max: call again with a bigger array), or a negative error.
 */
RW_EXPORT long rw_patch_threads(struct rw_patch *p, struct rw_patch_thread *out,
				size_t max);

/* The patch named @name (its descriptor's name), or NULL. */
RW_EXPORT struct rw_patch *rw_patch_find(const char *name);

/*
 * rw_patch_quiescent - the calling thread declares that no function of any
 * patch is on its stack (call it from the top of a worker's loop). Switches
 * it to the target state of the transition in progress, if any. Cheap when
 * no transition runs (one load). Async-signal-safe.
 */
RW_EXPORT void rw_patch_quiescent(void);

/*
 * Shadow variables, the kernel's klp_shadow API: data attached to an
 * existing object (by address) under a numeric id, for patches that need
 * a field the original structure does not have. Lookups are lock-free
 * (RCU); the data is freed after a grace period.
 *
 * @ctor runs once, before the variable becomes visible, on its zeroed
 * data; a non-zero return fails the allocation. @dtor runs before the
 * memory is freed (rw_shadow_free and rw_shadow_free_all).
 *
 * rw_shadow_get - the shadow data of (@obj, @id), or NULL.
 * rw_shadow_alloc - a new shadow variable of @size bytes; NULL if (@obj,
 * @id) exists or on error.
 * rw_shadow_get_or_alloc - the existing one, or a new one: never two for
 * the same (@obj, @id).
 * rw_shadow_free - detach and free (after a grace period) the variable
 * (@obj, @id).
 * rw_shadow_free_all - detach and free every variable with @id.
 */
typedef int (*rw_shadow_ctor_t)(void *obj, void *shadow_data, void *ctor_data);
typedef void (*rw_shadow_dtor_t)(void *obj, void *shadow_data);

RW_EXPORT void *rw_shadow_get(void *obj, unsigned long id);
RW_EXPORT void *rw_shadow_alloc(void *obj, unsigned long id, size_t size,
				rw_shadow_ctor_t ctor, void *ctor_data);
RW_EXPORT void *rw_shadow_get_or_alloc(void *obj, unsigned long id, size_t size,
				       rw_shadow_ctor_t ctor, void *ctor_data);
RW_EXPORT void rw_shadow_free(void *obj, unsigned long id,
			      rw_shadow_dtor_t dtor);
RW_EXPORT void rw_shadow_free_all(unsigned long id, rw_shadow_dtor_t dtor);

RW_EXTERN_C_END

#endif /* REWIRE_LIVEPATCH_H */
