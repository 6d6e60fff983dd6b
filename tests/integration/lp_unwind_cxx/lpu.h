/* SPDX-License-Identifier: MIT */
/*
 * Shared by test_lp_unwind_cxx.cc, its library (dso.cc: liblpu_dso.so,
 * linked to the test) and its patch (patch.cc: lpu_patch.so, which links
 * liblpu_dso.so too).
 *
 * Two patched functions, one in the program (lpu_work: its patched entry
 * ends as a jump to a far stub) and one in liblpu_dso.so (lpu_dso_work:
 * a direct jmp to the new function when the patch is within 2 GiB), both
 * with the same body, LPU_BODY(side): side 1 in the old functions, 2 in
 * the new ones. The body holds a local object whose destructor counts
 * (lpu_dtors[side]), then by mode:
 *   LPU_THROW  lpu_throw(side): throws std::runtime_error("side N");
 *   LPU_BLOCK  lpu_block(): read() from a pipe nobody writes to, forever
 *              (a cancellation point);
 *   LPU_HOOK   hook(arg), for a call of a patched function from inside
 *              one;
 * and returns side.
 */
#ifndef LPU_H
#define LPU_H

#ifdef __cplusplus
extern "C" {
#endif

enum { LPU_RETURN, LPU_THROW, LPU_BLOCK, LPU_HOOK };

typedef void (*lpu_hook_t)(void *arg);
typedef int (*lpu_work_t)(int mode, lpu_hook_t hook, void *arg);

/* In liblpu_dso.so. Counters are read and written with __atomic. */
extern int lpu_dtors[3]; /* [side]: destructors of LPU_BODY's local */
extern int lpu_blocked;	 /* calls of lpu_block() */
extern int lpu_pipe[2];	 /* set up by lpu_init() */
int lpu_init(void);
void lpu_throw(int side);
void lpu_block(void);
int lpu_dso_work(int mode, lpu_hook_t hook, void *arg);

#ifdef __cplusplus
}

struct lpu_guard {
	int side;
	explicit lpu_guard(int s)
		: side(s)
	{
	}
	~lpu_guard()
	{
		__atomic_add_fetch(&lpu_dtors[side], 1, __ATOMIC_SEQ_CST);
	}
	lpu_guard(const lpu_guard &) = delete;
	lpu_guard &operator=(const lpu_guard &) = delete;
};

/* The body of every version: a macro, so that the guard lives in the
 * patched function's own frame. */
#define LPU_BODY(s, mode, hook, arg)  \
	do {                          \
		lpu_guard guard_(s);  \
		switch (mode) {       \
		case LPU_THROW:       \
			lpu_throw(s); \
			break;        \
		case LPU_BLOCK:       \
			lpu_block();  \
			break;        \
		case LPU_HOOK:        \
			(hook)(arg);  \
			break;        \
		default:              \
			break;        \
		}                     \
		return (s);           \
	} while (0)
#endif

#endif /* LPU_H */
