/* SPDX-License-Identifier: MIT */
/*
 * Private interface between the parts of live patching:
 *   core.c    the patch stack, transitions, dispatchers, thread states
 *   elf.c     the loader: file checks, note, dlopen, symbol resolution
 *   dwarf.c   inlined copies of patched functions (the targets' DWARF)
 *   unwind.c  stack checks (own stack in a signal handler; a blocked
 *             thread's stack from outside)
 *   shadow.c  shadow variables
 * Never installed.
 */
#ifndef REWIRE_LP_H
#define REWIRE_LP_H

#include "../ctl/fileid.h"
#include "../internal.h"

#include <rewire/livepatch.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Messages: rw_patch_last_error() returns the thread's last one. */
#define RW__LP_ERRLEN 512
void rw__lp_set_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Address ranges [start, end). */
struct rw__lp_range {
	uintptr_t start, end;
};

/* One old function, resolved by the loader. */
struct rw__lp_func {
	const struct rw_patch_func *desc;
	uintptr_t old_addr; /* the symbol's value (function entry) */
	size_t old_size;    /* st_size, > 0 */
	/* The NOP bytes at the entry: sled = old_addr, or old_addr + 4 after
	 * an endbr64 (x86-64) or a BTI c (aarch64); sled_len >= 5 (x86-64:
	 * the 5-byte jump goes at sled), or 8 (aarch64: two NOPs, the first
	 * becomes a B). */
	uintptr_t sled;
	size_t sled_len;
	uintptr_t new_addr; /* desc->new_func */
	size_t new_size;    /* from the patch object's symbol table (> 0:
			     * the loader refuses a patch without it) */
	char label[96];	    /* "object:name" or "object:name,pos" */
	/* The compiler's pieces of each side outside [addr, addr + size):
	 * NAME.cold and NAME.part.N (and their own pieces). They belong to
	 * the function for every stack check (DESIGN.md 8b). malloc'ed. */
	struct rw__lp_range *old_pieces, *new_pieces;
	size_t nold_pieces, nnew_pieces;
};

/* A loaded patch object. */
struct rw__lp_obj {
	void *handle; /* dlopen handle */
	const struct rw_patch_desc *desc;
	struct rw__lp_func *funcs; /* desc->nfuncs entries, malloc'ed */
	size_t nfuncs;
	char path[256]; /* as given (realpath if possible) */
	/* The file's identity (src/ctl/fileid.h), read from the open file
	 * that was checked and mapped. */
	char file_id[RW_FILE_ID_MAX];
	/* The resolved address of each reference (desc->nrefs), then one
	 * address in each object that named relocations point into: for the
	 * pins on the objects they point into. malloc'ed. */
	uintptr_t *ref_addrs;
	size_t nref_addrs;
	/* The patch's executable PT_LOAD segments: no thread may run there
	 * when it is unmapped. */
	struct rw__lp_range text[8];
	size_t ntext;
};

/*
 * Load and check a patch object (see rw_patch_load in rewire/livepatch.h
 * for the checks and errors): the file at @path, or with rw__lp_load_fd
 * and @fd >= 0 the file open on @fd (rw_patch_load_fd; @path then only
 * names it in messages). On error: a negative code, a message set
 * with rw__lp_set_error(), nothing left mapped, *out untouched.
 * Not async-signal-safe; called with no rewire lock held.
 */
int rw__lp_load(const char *path, unsigned flags, struct rw__lp_obj *out);
int rw__lp_load_fd(const char *path, int fd, unsigned flags,
		   struct rw__lp_obj *out);

/*
 * 0, or -EEXIST with its message if a patch named @name is loaded (and not
 * replaced). rw__lp_load asks before it writes anything into the new patch
 * (a second dlopen of the same file gives the same, live, object);
 * rw_patch_load asks again under its lock. Takes the live patch lock.
 */
int rw__lp_check_name(const char *path, const char *name);

/* dlclose the object and free funcs. */
void rw__lp_unload(struct rw__lp_obj *o);

/*
 * Is the calling thread inside the loader's dlopen or dlclose, that is,
 * running a patch's constructor or destructor? rw_patch_load and
 * rw_patch_unload must then fail with -EDEADLK instead of waiting for
 * themselves.
 */
bool rw__lp_loader_held(void);

/*
 * Look for copies of @funcs that the compiler inlined into callers, in the
 * DWARF of their objects (src/livepatch/dwarf.c). Returns 0, or
 * -RW_ERR_INLINED with a message naming the callers (unless @flags has
 * RW_PATCH_LOAD_ALLOW_INLINED), or -ENOMEM. On 0, @notice is "" or a
 * warning: inlining could not be checked (no debug information), or
 * copies were allowed.
 */
int rw__lp_check_inlined(const char *path, const struct rw__lp_func *funcs,
			 size_t nfuncs, unsigned flags, char *notice,
			 size_t notice_size);

/* Forget the calling thread's last message (at the start of each
 * rw_patch_* call that can set one). */
void rw__lp_clear_error(void);

/* Free @n functions' pieces and the array. */
void rw__lp_funcs_free(struct rw__lp_func *funcs, size_t n);

/* Results of stack checks. */
enum {
	RW__LP_SAFE = 0,	  /* no frame in any checked range */
	RW__LP_ON_STACK = 1,	  /* a frame in a checked range */
	RW__LP_UNWIND_FAILED = 2, /* the unwind did not reach the end */
	RW__LP_BUSY = 3,	  /* a frame's address in a busy range */
	RW__LP_RUNNING = 4,	  /* outside check: the thread is not blocked
				    * in a system call; signal it instead */
	RW__LP_MOVED = 5,	  /* outside check: the thread ran during it,
				    * what was read is not its stack */
};

struct rw__lp_check {
	/* Input: sorted, non-overlapping ranges. */
	const struct rw__lp_range *funcs; /* patch functions to look for */
	size_t nfuncs;
	const struct rw__lp_range *busy; /* dispatchers and entry sleds */
	size_t nbusy;
	/* Pages of dispatcher slots (rw__arch_dispatch_pages()): an
	 * interrupted frame at a slot's first instruction is stepped to its
	 * caller instead of counting as busy (aarch64). */
	const uintptr_t *dpages;
	size_t ndpages;
	/* Output for RW__LP_ON_STACK / RW__LP_BUSY. */
	uintptr_t hit_ip;
	size_t hit_index; /* index into funcs (ON_STACK) */
};

/*
 * Unwind the calling thread's own stack. @uc: the context a signal
 * handler received (the interrupted frame is checked at its exact address,
 * callers at address - 1), or NULL to start from the caller of this
 * function. Frames are followed to the end of the stack (through signal
 * frames); more than 256 frames, or any unwind error, is
 * RW__LP_UNWIND_FAILED. Async-signal-safe: no malloc, no lock that the
 * interrupted code may hold.
 */
int rw__lp_check_self(void *uc, struct rw__lp_check *c);

/*
 * Check a thread of this process that is blocked in a system call, from
 * the calling thread, without signalling it: its registers from
 * /proc/self/task/TID/syscall, its stack read with process_vm_readv. The
 * result counts only if the thread did not run meanwhile (same registers
 * and same context switch count before and after), else RW__LP_MOVED.
 * RW__LP_RUNNING if it is not blocked, -ESRCH if it is gone, another
 * negative errno if its files cannot be read (-EACCES once the process
 * dropped privileges and is not dumpable: the caller then signals it).
 * Only rip and rsp are known: a frame whose unwind rule needs another
 * register (%rbp of a frame-pointer function that called the
 * system call wrapper directly) gives RW__LP_UNWIND_FAILED.
 * Not async-signal-safe.
 */
int rw__lp_check_blocked(pid_t tid, struct rw__lp_check *c);

/*
 * The system call a blocked thread sleeps in: 1 and *nr (-1: asleep
 * outside a system call), 0 if running, negative errno (-ESRCH: gone).
 */
int rw__lp_thread_syscall(pid_t tid, long *nr);

#endif /* REWIRE_LP_H */
