/* SPDX-License-Identifier: MIT */
/*
 * libftu.so, C part (no -fexceptions, as C is built): longjmp,
 * siglongjmp, cancellation and pthread_exit through frames whose cleanup
 * handlers glibc runs from its own unwinder, and coroutines.
 */
#include "ftu.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

int ftu_cleanups;
int ftu_pipe[2] = { -1, -1 };
pthread_mutex_t ftu_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t ftu_cond = PTHREAD_COND_INITIALIZER;
sigjmp_buf ftu_sigjb;
void (*ftu_yield_hook)(int id);

/* The functions that leave by longjmp, pthread_exit or cancellation
 * recurse on every path that returns: that is the point. */
#pragma GCC diagnostic ignored "-Winfinite-recursion"

static void sink(int v)
{
	asm volatile("" : : "r"(v) : "memory");
}

int ftu_init(void)
{
	return pipe(ftu_pipe);
}

int ftu_rec(int n)
{
	if (n == 0)
		return 1;
	int r = ftu_rec(n - 1);
	sink(r);
	return (r ^ (r >> 3)) + n;
}

int ftu_leaf(int x)
{
	return x * 5 + 2;
}

int ftu_sib(int x)
{
	return ftu_leaf(x + 1);
}

int ftu_sib2(int x)
{
	return ftu_sib(x * 2);
}

int ftu_sib_outer(int x)
{
	int r = ftu_sib2(x);

	sink(r);
	return r + 1;
}

int ftu_bt_rec(int n, void **buf, int max)
{
	if (n == 0)
		return backtrace(buf, max);
	int r = ftu_bt_rec(n - 1, buf, max);
	sink(r);
	return r;
}

int ftu_jmp_rec(int n, jmp_buf *jb)
{
	if (n == 0)
		longjmp(*jb, 7);
	int r = ftu_jmp_rec(n - 1, jb);
	sink(r);
	return r + n;
}

int ftu_setjmp_mid(int n, int after)
{
	jmp_buf jb;
	volatile int got;

	got = setjmp(jb);
	if (got == 0) {
		int r = ftu_jmp_rec(n, &jb);
		sink(r);
		return -1; /* not reached: ftu_jmp_rec jumps */
	}
	return got * 1000 + ftu_rec(after);
}

int ftu_sig_rec(int n)
{
	if (n == 0) {
		raise(SIGUSR1);
		return -1; /* not reached: the handler jumps */
	}
	int r = ftu_sig_rec(n - 1);
	sink(r);
	return r + n;
}

void ftu_sig_handler(int sig)
{
	sink(sig);
	siglongjmp(ftu_sigjb, 1);
}

static void cleanup(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&ftu_cleanups, 1, __ATOMIC_SEQ_CST);
}

void ftu_c_block_read(int n)
{
	char c;

	pthread_cleanup_push(cleanup, NULL);
	if (n > 0) {
		ftu_c_block_read(n - 1);
		sink(n);
	} else {
		__atomic_add_fetch(&ftu_blocked, 1, __ATOMIC_SEQ_CST);
		for (;;)
			if (read(ftu_pipe[0], &c, 1) < 0 && errno != EINTR)
				break;
		for (;;)
			pause();
	}
	pthread_cleanup_pop(0);
}

static void unlock(void *m)
{
	pthread_mutex_unlock((pthread_mutex_t *)m);
}

void ftu_c_block_cond(int n)
{
	pthread_cleanup_push(cleanup, NULL);
	if (n > 0) {
		ftu_c_block_cond(n - 1);
		sink(n);
	} else {
		pthread_mutex_lock(&ftu_mutex);
		/* Cancellation acquires the mutex again before it unwinds:
		 * this handler gives it back. */
		pthread_cleanup_push(unlock, &ftu_mutex);
		__atomic_add_fetch(&ftu_blocked, 1, __ATOMIC_SEQ_CST);
		for (;;)
			pthread_cond_wait(&ftu_cond, &ftu_mutex);
		pthread_cleanup_pop(1);
	}
	pthread_cleanup_pop(0);
}

void ftu_c_exit(int n, void *v)
{
	pthread_cleanup_push(cleanup, NULL);
	if (n > 0) {
		ftu_c_exit(n - 1, v);
		sink(n);
	} else {
		pthread_exit(v);
	}
	pthread_cleanup_pop(0);
}

void ftu_yield(int id)
{
	ftu_yield_hook(id);
	sink(id);
}

int ftu_coro_rec(int id, int n, int y)
{
	int r;

	if (n == 0) {
		for (int i = 0; i < y; i++)
			ftu_yield(id);
		return id;
	}
	r = ftu_coro_rec(id, n - 1, y);
	sink(r);
	ftu_yield(id);
	return r + n;
}

void ftu_coro_main(int id, int n)
{
	int r = ftu_coro_rec(id, n, 2);

	sink(r);
}
