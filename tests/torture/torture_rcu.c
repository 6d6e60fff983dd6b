/* SPDX-License-Identifier: MIT */
/*
 * RCU torture in the style of liburcu's rcutorture: readers, updaters and
 * grace periods of rewire/rcu.h over both read sides it covers, the floor's
 * own (rewire/readside.h, src/readside.c) and liburcu's.
 *
 * One published object, `cur`, taken from a pool. Updaters replace it and
 * retire the old one after a grace period, each its own way:
 *   - sync: rw_rcu_synchronize(), then retire;
 *   - call: rw_rcu_call(), whose callback retires;
 *   - poll: rw_rcu_get_state(), retire when rw_rcu_poll_state() says the
 *     cookie is complete, rw_rcu_cond_synchronize() on the oldest now and
 *     then.
 * Retiring poisons the object first (magic DEAD, payload scrambled), then
 * puts it back in the pool, where an updater soon reuses it with a new
 * generation.
 *
 * Readers, each section with an injected delay in the middle:
 *   - threads in sections of the floor's read side, and one in liburcu's;
 *   - signal handlers: a thread sends SIGUSR1 as fast as it can to the
 *     readers (sections nest inside theirs) and to the churning threads;
 *   - threads that come and go: each registers on its first section, runs a
 *     few, and exits (unregistering), in a loop.
 *
 * Oracle: a reader checks, at the start and at the end of its section, that
 * the object it dereferenced is alive (magic LIVE), has the generation it
 * had at the start, and a consistent payload (b == ~a). An object retired
 * while a reader still held it fails the check: "if any reader saw poison,
 * RCU is broken". Progress is an oracle too: every updater and every kind
 * of reader must have done work.
 *
 * Short by default (3 s); REWIRE_TORTURE_LONG=1 runs 60 s. Registered again
 * with REWIRE_RS_NO_MEMBARRIER=1 (torture_rcu.cmake).
 */
#include <rewire/rcu.h>
#include <rewire/readside.h>

#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <unistd.h>

#define MAGIC_LIVE 0x11fe600dul
#define MAGIC_DEAD 0xdeaddeadul
#define NOBJ 512
#define NREADERS 3 /* the last one uses liburcu's read side */

struct obj {
	atomic_ulong magic;
	atomic_ulong gen;
	atomic_ulong a, b; /* b == ~a while alive */
	struct rw_rcu_head rcu;
	rw_rcu_cookie cookie; /* poll updater only */
	struct obj *next;     /* pool: pool.lock; poll updater's list */
};

static struct obj objs[NOBJ];
static struct obj *cur; /* rw_rcu_assign_pointer / rw_rcu_dereference */

static struct {
	pthread_mutex_t lock;
	struct obj *free;
	unsigned long gen;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static atomic_int stop;
static atomic_long errors;
static atomic_long n_sections, n_handler_sections, n_urcu_sections,
	n_churn_threads, n_sync, n_call, n_poll, n_poll_cond;

/* --- Objects ---------------------------------------------------------------*/

static struct obj *obj_get(void)
{
	struct obj *o;

	for (;;) {
		pthread_mutex_lock(&pool.lock);
		o = pool.free;
		if (o) {
			pool.free = o->next;
			pool.gen++;
			atomic_store_explicit(&o->gen, pool.gen,
					      memory_order_relaxed);
			atomic_store_explicit(&o->a, pool.gen,
					      memory_order_relaxed);
			atomic_store_explicit(&o->b, ~pool.gen,
					      memory_order_relaxed);
			atomic_store_explicit(&o->magic, MAGIC_LIVE,
					      memory_order_relaxed);
		}
		pthread_mutex_unlock(&pool.lock);
		if (o)
			return o;
		usleep(100); /* callbacks have not caught up */
	}
}

/* After a grace period: poison first, then back to the pool. */
static void obj_retire(struct obj *o)
{
	atomic_store_explicit(&o->magic, MAGIC_DEAD, memory_order_relaxed);
	atomic_store_explicit(&o->a, 0xdead, memory_order_relaxed);
	atomic_store_explicit(&o->b, 0xdead, memory_order_relaxed);
	pthread_mutex_lock(&pool.lock);
	o->next = pool.free;
	pool.free = o;
	pthread_mutex_unlock(&pool.lock);
}

static struct obj *obj_replace(void)
{
	struct obj *o = obj_get();

	return __atomic_exchange_n(&cur, o, __ATOMIC_ACQ_REL);
}

/* --- Readers -------------------------------------------------------------- */

static void delay(unsigned long n)
{
	for (volatile unsigned long i = 0; i < n; i++)
		;
}

static unsigned long xorshift(unsigned long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static bool obj_ok(struct obj *p, unsigned long gen)
{
	unsigned long a = atomic_load_explicit(&p->a, memory_order_relaxed);
	unsigned long b = atomic_load_explicit(&p->b, memory_order_relaxed);

	return atomic_load_explicit(&p->magic, memory_order_relaxed) ==
		       MAGIC_LIVE &&
	       atomic_load_explicit(&p->gen, memory_order_relaxed) == gen &&
	       b == ~a;
}

/* The body of a section: dereference, check, delay, check. Async-signal-
 * safe. */
static void read_section_body(unsigned long spin)
{
	struct obj *p = rw_rcu_dereference(cur);
	unsigned long gen = atomic_load_explicit(&p->gen, memory_order_relaxed);

	if (!obj_ok(p, gen))
		atomic_fetch_add(&errors, 1);
	delay(spin);
	if (!obj_ok(p, gen))
		atomic_fetch_add(&errors, 1);
}

static void *reader_main(void *arg)
{
	unsigned long seed = 0x9e3779b97f4a7c15ul ^ (unsigned long)arg;
	bool urcu = (long)arg == NREADERS - 1;
	long n = 0;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned long spin = xorshift(&seed) % 2048;

		if (urcu) {
			rw_rcu_read_lock();
			read_section_body(spin);
			rw_rcu_read_unlock();
		} else {
			rw__rs_lock();
			if (spin & 1) { /* nested */
				rw__rs_lock();
				read_section_body(spin);
				rw__rs_unlock();
			} else {
				read_section_body(spin);
			}
			rw__rs_unlock();
		}
		/* Outside for a while too: a grace period of the floor's read
		 * side ends when it has seen each reader outside
		 * (src/readside.c, G4). */
		delay(xorshift(&seed) % 1024);
		n++;
	}
	atomic_fetch_add(urcu ? &n_urcu_sections : &n_sections, n);
	return NULL;
}

static void handler(int sig)
{
	unsigned long nest = rw__rs_self.nest;
	int saved = errno;

	(void)sig;
	rw__rs_lock();
	read_section_body(64);
	rw__rs_unlock();
	if (rw__rs_self.nest != nest)
		atomic_fetch_add(&errors, 1);
	atomic_fetch_add_explicit(&n_handler_sections, 1, memory_order_relaxed);
	errno = saved;
}

/* Threads that come and go: the first section registers (every other
 * thread from a signal handler it raises itself), exit unregisters. */
static void *churn_child(void *arg)
{
	if ((long)arg & 1)
		raise(SIGUSR1);
	for (int i = 0; i < 64; i++) {
		rw__rs_lock();
		read_section_body(256);
		if (i % 16 == 0)
			raise(SIGUSR1); /* a handler's section nested in it */
		rw__rs_unlock();
	}
	return NULL;
}

static void *churn_main(void *arg)
{
	pthread_t t;
	long n = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		CHECK(pthread_create(&t, NULL, churn_child, (void *)n) == 0);
		CHECK_EQ(pthread_join(t, NULL), 0);
		n++;
	}
	atomic_fetch_add(&n_churn_threads, n);
	return NULL;
}

static pthread_t readers[NREADERS];

static void *signaller_main(void *arg)
{
	unsigned long i = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		(void)pthread_kill(readers[i % NREADERS], SIGUSR1);
		if (i % 8 == 0)
			usleep(10);
		i++;
	}
	return NULL;
}

/* --- Updaters ------------------------------------------------------------- */

static void *sync_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct obj *old = obj_replace();

		CHECK_OK(rw_rcu_synchronize());
		obj_retire(old);
		atomic_fetch_add(&n_sync, 1);
	}
	return NULL;
}

static void call_cb(struct rw_rcu_head *head)
{
	obj_retire(caa_container_of(head, struct obj, rcu));
}

static void *call_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct obj *old = obj_replace();

		rw_rcu_call(&old->rcu, call_cb);
		atomic_fetch_add(&n_call, 1);
		usleep(50);
	}
	return NULL;
}

static void *poll_main(void *arg)
{
	struct obj *head = NULL, **tail = &head, *o;
	unsigned long i = 0;

	(void)arg;
	while (!atomic_load(&stop) || head) {
		if (!atomic_load(&stop)) {
			o = obj_replace();
			o->cookie = rw_rcu_get_state();
			o->next = NULL;
			*tail = o;
			tail = &o->next;
		}
		/* Cookies complete in order: retire the complete prefix. */
		while (head && rw_rcu_poll_state(head->cookie)) {
			o = head;
			head = o->next;
			if (!head)
				tail = &head;
			obj_retire(o);
			atomic_fetch_add(&n_poll, 1);
		}
		if (head && (++i % 16 == 0 || atomic_load(&stop))) {
			CHECK_OK(rw_rcu_cond_synchronize(head->cookie));
			atomic_fetch_add(&n_poll_cond, 1);
		} else {
			usleep(20);
		}
	}
	return NULL;
}

int main(void)
{
	void *(*updaters[])(void *) = { sync_main, call_main, poll_main };
	pthread_t upd[3], sig, churn;
	struct sigaction sa = { 0 };
	long seconds = rw_test_scale(3, 60);

#ifdef RW_TSAN
	/* TSan delivers a signal only in a function it intercepts: the main
	 * thread asleep in liburcu's raw futex wait (rw_rcu_barrier()) would
	 * never answer the fallback's cross-thread signal (test_readside
	 * skips the same case). */
	if (getenv("REWIRE_RS_NO_MEMBARRIER")) {
		puts("SKIP: the signal fallback under ThreadSanitizer");
		return 77;
	}
#endif
	for (int i = 0; i < NOBJ; i++)
		obj_retire(&objs[i]);
	rw_rcu_assign_pointer(cur, obj_get());

	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

	for (long i = 0; i < NREADERS; i++)
		CHECK(pthread_create(&readers[i], NULL, reader_main,
				     (void *)i) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&upd[i], NULL, updaters[i], NULL) == 0);
	CHECK(pthread_create(&churn, NULL, churn_main, NULL) == 0);
	CHECK(pthread_create(&sig, NULL, signaller_main, NULL) == 0);

	for (long s = 0; s < seconds && !atomic_load(&errors); s++)
		sleep(1);
	atomic_store(&stop, 1);

	CHECK_EQ(pthread_join(sig, NULL), 0);
	CHECK_EQ(pthread_join(churn, NULL), 0);
	for (int i = 0; i < NREADERS; i++)
		CHECK_EQ(pthread_join(readers[i], NULL), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(pthread_join(upd[i], NULL), 0);
	CHECK_OK(rw_rcu_barrier());

	printf("torture_rcu: %lds, sections %ld (liburcu %ld, handlers %ld), "
	       "churned threads %ld, retired after synchronize %ld, call "
	       "%ld, poll %ld (cond_synchronize %ld), errors %ld\n",
	       seconds, atomic_load(&n_sections), atomic_load(&n_urcu_sections),
	       atomic_load(&n_handler_sections), atomic_load(&n_churn_threads),
	       atomic_load(&n_sync), atomic_load(&n_call), atomic_load(&n_poll),
	       atomic_load(&n_poll_cond), atomic_load(&errors));
	CHECK_EQ(atomic_load(&errors), 0);
	CHECK(atomic_load(&n_sections) > 0);
	CHECK(atomic_load(&n_urcu_sections) > 0);
	CHECK(atomic_load(&n_handler_sections) > 0);
	CHECK(atomic_load(&n_churn_threads) > 0);
	CHECK(atomic_load(&n_sync) > 0);
	CHECK(atomic_load(&n_call) > 0);
	CHECK(atomic_load(&n_poll) > 0);
	return 0;
}
