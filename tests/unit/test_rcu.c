/* SPDX-License-Identifier: MIT */
/*
 * RCU: synchronize, call, barrier, and the polled grace-period API.
 *
 * Registered twice (test_rcu.cmake): once with the implementation the build
 * picked, once with REWIRE_RCU_POLL=counter, so both polled paths run where
 * liburcu has its own.
 */
#include <rewire/rcu.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* A reader that enters its critical section and stays until told. */
struct reader {
	pthread_t thread;
	atomic_int inside; /* 1 while in the critical section */
	atomic_int left;   /* set by the reader after rw_rcu_read_unlock() */
	atomic_int go;	   /* set by the test: leave now */
};

static void *reader_main(void *p)
{
	struct reader *r = p;

	rw_rcu_read_lock();
	atomic_store(&r->inside, 1);
	while (!atomic_load(&r->go))
		usleep(1000);
	atomic_store(&r->inside, 0);
	rw_rcu_read_unlock();
	atomic_store(&r->left, 1);
	return NULL;
}

static void reader_start(struct reader *r)
{
	memset(r, 0, sizeof(*r));
	CHECK(pthread_create(&r->thread, NULL, reader_main, r) == 0);
	while (!atomic_load(&r->inside))
		usleep(100);
}

static void reader_stop(struct reader *r)
{
	atomic_store(&r->go, 1);
	CHECK(pthread_join(r->thread, NULL) == 0);
}

/* Wait up to 10 s for a cookie to complete without anyone synchronizing. */
static bool poll_until(rw_rcu_cookie c)
{
	for (int i = 0; i < 10000; i++) {
		if (rw_rcu_poll_state(c))
			return true;
		usleep(1000);
	}
	return false;
}

/* A reader inside its section holds back a cookie taken meanwhile. */
static void test_poll_waits_for_reader(void)
{
	struct reader r;

	reader_start(&r);
	rw_rcu_cookie c = rw_rcu_get_state();
	for (int i = 0; i < 100; i++) {
		CHECK(!rw_rcu_poll_state(c));
		usleep(1000);
	}
	CHECK(atomic_load(&r.inside));
	atomic_store(&r.go, 1);
	CHECK(poll_until(c));
	/* Completion implies the reader had left: its unlock happened first. */
	CHECK(!atomic_load(&r.inside));
	CHECK_EQ(pthread_join(r.thread, NULL), 0);
}

/* cond_synchronize waits exactly when it must. */
static void *release_later(void *p)
{
	struct reader *r = p;

	usleep(50000);
	atomic_store(&r->go, 1);
	return NULL;
}

static void test_cond_synchronize(void)
{
	struct reader r;
	pthread_t t;

	reader_start(&r);
	rw_rcu_cookie c = rw_rcu_get_state();
	CHECK(pthread_create(&t, NULL, release_later, &r) == 0);
	CHECK_OK(rw_rcu_cond_synchronize(c));
	CHECK(!atomic_load(&r.inside));
	/* rewire's counter knows at once; liburcu's may answer a little
	 * late ("a false answer may be stale"), never wrong. */
	if (strcmp(rw_rcu_poll_impl(), "counter") == 0)
		CHECK(rw_rcu_poll_state(c));
	CHECK(poll_until(c));
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_join(r.thread, NULL), 0);

	/* Already complete: returns at once, even with a reader inside. */
	reader_start(&r);
	CHECK_OK(rw_rcu_cond_synchronize(c));
	CHECK(atomic_load(&r.inside));
	reader_stop(&r);
}

static void test_cookie_order(void)
{
	rw_rcu_cookie zero = { 0 };

	CHECK(rw_rcu_poll_state(zero));
	rw_rcu_cookie a = rw_rcu_get_state();
	rw_rcu_cookie b = rw_rcu_get_state();
	CHECK(b.seq >= a.seq);
	CHECK_OK(rw_rcu_synchronize());
	/* synchronize() is a full grace period after both. */
	CHECK(poll_until(a));
	CHECK(poll_until(b));
	/* A fresh cookie is not complete yet with a reader inside. */
	struct reader r;

	reader_start(&r);
	rw_rcu_cookie d = rw_rcu_get_state();
	CHECK(d.seq > a.seq);
	if (rw_rcu_poll_state(d))
		fprintf(stderr, "a=%lu b=%lu d=%lu inside=%d\n", a.seq, b.seq,
			d.seq, atomic_load(&r.inside));
	CHECK(!rw_rcu_poll_state(d));
	reader_stop(&r);
	CHECK(poll_until(d));
}

/* Inside a read-side critical section, waiting would deadlock. */
static void test_edeadlk(void)
{
	struct reader r;

	rw_rcu_read_lock();
	CHECK_EQ(rw_rcu_synchronize(), -EDEADLK);
	CHECK_EQ(rw_rcu_barrier(), -EDEADLK);
	reader_start(&r);
	rw_rcu_cookie c = rw_rcu_get_state();
	CHECK_EQ(rw_rcu_cond_synchronize(c), -EDEADLK);
	rw_rcu_read_unlock();
	reader_stop(&r);
	CHECK_OK(rw_rcu_cond_synchronize(c));
	/* Nesting: still inside after one unlock of two. */
	rw_rcu_read_lock();
	rw_rcu_read_lock();
	rw_rcu_read_unlock();
	CHECK_EQ(rw_rcu_synchronize(), -EDEADLK);
	rw_rcu_read_unlock();
	CHECK_OK(rw_rcu_synchronize());
}

/* synchronize waits for a reader inside. */
static void test_synchronize_waits(void)
{
	struct reader r;
	pthread_t t;

	reader_start(&r);
	CHECK(pthread_create(&t, NULL, release_later, &r) == 0);
	CHECK_OK(rw_rcu_synchronize());
	CHECK(!atomic_load(&r.inside));
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(pthread_join(r.thread, NULL), 0);
}

struct obj {
	struct rw_rcu_head rcu;
	struct reader *r;
	atomic_int *ran;
	int inside_at_callback;
};

static void obj_free(struct rw_rcu_head *head)
{
	struct obj *o = caa_container_of(head, struct obj, rcu);

	o->inside_at_callback = atomic_load(&o->r->inside);
	atomic_store(o->ran, o->inside_at_callback ? -1 : 1);
	free(o);
}

/* call_rcu callbacks run after the readers of their time, and barrier waits
 * for them. */
static void test_call_and_barrier(void)
{
	struct reader r;
	atomic_int ran = 0;
	struct obj *o = calloc(1, sizeof(*o));

	CHECK(o);
	reader_start(&r);
	o->r = &r;
	o->ran = &ran;
	rw_rcu_call(&o->rcu, obj_free);
	usleep(50000);
	CHECK_EQ(atomic_load(&ran), 0);
	atomic_store(&r.go, 1);
	CHECK_OK(rw_rcu_barrier());
	CHECK_EQ(atomic_load(&ran), 1);
	CHECK_EQ(pthread_join(r.thread, NULL), 0);
}

/* Many threads take cookies at once; each completes. */
static void *cookie_thread(void *p)
{
	(void)p;
	for (int i = 0; i < 200; i++) {
		rw_rcu_cookie c = rw_rcu_get_state();

		rw_rcu_read_lock();
		rw_rcu_read_unlock();
		if (i % 50 == 0)
			CHECK_OK(rw_rcu_cond_synchronize(c));
	}
	CHECK(poll_until(rw_rcu_get_state()));
	return NULL;
}

static void test_concurrent_cookies(void)
{
	pthread_t t[8];

	for (int i = 0; i < 8; i++)
		CHECK(pthread_create(&t[i], NULL, cookie_thread, NULL) == 0);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
}

/* The child of fork() can go on using RCU, callbacks in flight or not. */
static void test_fork(void)
{
#ifdef RW_TSAN
	/* TSan cannot start threads in the child of a multithreaded fork
	 * (liburcu starts its call_rcu thread there); the other presets run
	 * this. */
	puts("fork: skipped under ThreadSanitizer");
	return;
#endif
	rw_rcu_cookie c = rw_rcu_get_state();
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		rw_rcu_cookie d = rw_rcu_get_state();

		if (rw_rcu_synchronize() != 0 || !poll_until(d) ||
		    !poll_until(c))
			_exit(1);
		_exit(0);
	}
	int st = 0;

	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(poll_until(c));
}

int main(void)
{
	const char *env = getenv("REWIRE_RCU_POLL");

	printf("polled grace periods: %s%s\n", rw_rcu_poll_impl(),
	       env ? " (REWIRE_RCU_POLL set)" : "");
	if (env && strcmp(env, "counter") == 0)
		CHECK(strcmp(rw_rcu_poll_impl(), "counter") == 0);
	test_cookie_order();
	test_poll_waits_for_reader();
	test_cond_synchronize();
	test_edeadlk();
	test_synchronize_waits();
	test_call_and_barrier();
	test_concurrent_cookies();
	test_fork();
	puts("PASS");
	return 0;
}
