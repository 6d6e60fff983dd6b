/* SPDX-License-Identifier: MIT */
/*
 * rewire's cross-thread signal taken by the program.
 *
 * Before rewire installs its handler (a handler already there): the first
 * call and the first stop fail with -RW_ERR_SIGNAL_BUSY, whose text says
 * to set REWIRE_SIGNAL. After (sigaction, or on the patching backend
 * where sigaction is interposed also a raw rt_sigaction): every call and
 * stop fails at once with -RW_ERR_SIGNAL_REPLACED instead of timing out
 * on threads that never answer. Each case runs in a child with a worker
 * thread.
 */
#include <rewire/threads.h>

#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TIMEOUT_MS 5000
/* A refusal must not wait for the threads. */
#define FAST_NS 1000000000ull

enum how { BEFORE, AFTER, AFTER_RAW };

static _Atomic int stop;

static void noop(void *arg)
{
	(void)arg;
}

static int stop_fn(void *arg)
{
	(void)arg;
	return 0;
}

static void program_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
}

static void *worker(void *p)
{
	(void)p;
	while (!atomic_load(&stop))
		usleep(1000);
	return NULL;
}

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static void take_signal(bool raw)
{
	int sig = rw_threads_signal();
	struct sigaction sa;
	struct ksigaction k;

	if (raw) {
		/* Keep libc's restorer: the kernel needs one. */
		CHECK(syscall(SYS_rt_sigaction, sig, NULL, &k,
			      sizeof(k.mask)) == 0);
		k.handler = (void *)program_handler;
		CHECK(syscall(SYS_rt_sigaction, sig, &k, NULL,
			      sizeof(k.mask)) == 0);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = program_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(sig, &sa, NULL) == 0);
}

static void expect_refused(int want)
{
	struct rw_tid_list late;
	uint64_t t0 = rw_test_now_ns();

	CHECK_EQ(rw_on_each_thread(noop, NULL, TIMEOUT_MS, &late), want);
	CHECK_EQ(late.count, 0);
	CHECK_EQ(rw_stop_threads(stop_fn, NULL, TIMEOUT_MS, &late), want);
	CHECK_EQ(late.count, 0);
	CHECK(rw_test_now_ns() - t0 < FAST_NS);
	CHECK(strstr(rw_strerror(want), "REWIRE_SIGNAL") != NULL);
}

static int child(enum how how)
{
	pthread_t t;

	CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
	if (how == BEFORE) {
		take_signal(false);
		expect_refused(-RW_ERR_SIGNAL_BUSY);
	} else {
		CHECK_OK(rw_on_each_thread(noop, NULL, TIMEOUT_MS, NULL));
		CHECK_OK(rw_stop_threads(stop_fn, NULL, TIMEOUT_MS, NULL));
		take_signal(how == AFTER_RAW);
		expect_refused(-RW_ERR_SIGNAL_REPLACED);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	return 0;
}

static void run_case(enum how how, const char *name)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(child(how));
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "signal taken %s rewire's handler: failed\n",
			name);
		exit(1);
	}
}

int main(void)
{
	run_case(BEFORE, "before");
	run_case(AFTER, "after (sigaction)");
#ifdef RW_TSAN
	/* TSan's sigaction keeps a table of its own, which a raw system
	 * call does not update. */
#else
	run_case(AFTER_RAW, "after (raw rt_sigaction)");
#endif
	printf("test_threads_signal_taken: ok\n");
	return 0;
}
