/* SPDX-License-Identifier: MIT */
/*
 * libftu.so: the traced functions of test_ftrace_graph_unwind, built like a
 * distribution builds them (-O2, dpkg-buildflags) with patchable entries
 * (test_ftrace_graph_unwind.cmake). Every function here is named ftu_*: the
 * test traces them all with "ftu_*" (ftu_guard's destructor matches by its
 * demangled name), in graph mode.
 *
 * The bodies are written so that GCC keeps every call a real call (no
 * tail call, no tail recursion turned into a loop): the test's oracle
 * expects one traced entry per call in the source.
 */
#ifndef FTU_H
#define FTU_H

#include <pthread.h>
#include <setjmp.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Counters the functions move (__atomic, any thread). */
extern int ftu_dtors;	 /* ftu_guard destructors that ran */
extern int ftu_cleanups; /* pthread_cleanup_push handlers that ran */
extern int ftu_rethrows; /* ftu_rethrow's catch (...) blocks */
extern int ftu_blocked;	 /* threads that reached their blocking call */
extern int ftu_pipe[2];	 /* never written: read() blocks on it */
extern pthread_mutex_t ftu_mutex;
extern pthread_cond_t ftu_cond; /* never signalled */
extern sigjmp_buf ftu_sigjb;

int ftu_init(void);

/* Plain recursion: n + 1 traced calls. */
int ftu_rec(int n);

/* Sibling calls (-O2 turns "return f(x);" into a jmp): ftu_sib_outer
 * calls ftu_sib2, which jumps to ftu_sib, which jumps to ftu_leaf. The
 * callee of a jmp starts with the return address of the caller's caller,
 * which graph mode has already replaced. Returns 10 x + 8. */
int ftu_leaf(int x);
int ftu_sib(int x);
int ftu_sib2(int x);
int ftu_sib_outer(int x);

/* C++ (ftu_cxx.cc). Each frame holds an ftu_guard (its destructor is an
 * out-of-line traced function). */
int ftu_throw_rec(int n, int tag); /* throws ftu_error{tag} at n == 0 */
int ftu_catch_mid(int n, int tag); /* catches it: returns 1000 + tag */
int ftu_rethrow(int n, int tag);   /* catch (...) { rethrows++; throw; } */
int ftu_rethrow2(int n, int tag);  /* ftu_rethrow inside ftu_rethrow */
void ftu_cxx_block(int n);	   /* blocks in read() at n == 0 */
void ftu_cxx_exit(int n, void *v); /* pthread_exit(v) at n == 0 */

/* backtrace(buf, max) from n + 1 traced frames down: its result. */
int ftu_bt_rec(int n, void **buf, int max);

/* C (ftu_c.c), frames with pthread_cleanup_push handlers. */
int ftu_jmp_rec(int n, jmp_buf *jb);  /* longjmp(*jb, 7) at n == 0 */
int ftu_setjmp_mid(int n, int after); /* setjmp; ftu_jmp_rec(n); then
					 ftu_rec(after) */
int ftu_sig_rec(int n);		      /* raise(SIGUSR1) at n == 0 */
void ftu_sig_handler(int sig);	      /* siglongjmp(ftu_sigjb, 1) */
void ftu_c_block_read(int n);	      /* blocks in read() at n == 0 */
void ftu_c_block_cond(int n);	      /* pthread_cond_wait at n == 0 */
void ftu_c_exit(int n, void *v);      /* pthread_exit(v) at n == 0 */

/* Coroutines: ftu_coro_main(id, n) (a makecontext start function) calls
 * ftu_coro_rec(id, n, 2), which yields (ftu_yield -> ftu_yield_hook)
 * twice at the bottom of its recursion and once per level on the way up,
 * then returns (to the context's uc_link). */
extern void (*ftu_yield_hook)(int id);
void ftu_yield(int id);
int ftu_coro_rec(int id, int n, int y);
void ftu_coro_main(int id, int n);

#ifdef __cplusplus
}

/* What ftu_throw_rec throws. */
struct ftu_error {
	int tag;
};
#endif

#endif /* FTU_H */
