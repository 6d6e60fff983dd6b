/* SPDX-License-Identifier: MIT */
/*
 * Tracepoints and providers on the floor's own read side (issue 17):
 *
 *  1. A probe (bound stub: one probe; iterator: two; generic) and a
 *     provider's read function run inside rewire's own read-side section
 *     (rewire/readside.h: the thread's count is above zero) and not inside
 *     liburcu's, and waiting for a grace period from there is refused
 *     (-EDEADLK). Before issue 17 both ran under liburcu-bp's read lock.
 *  2. A thread whose first read-side section is a signal handler that
 *     fires a tracepoint or reads a provider: it registers there, and the
 *     probe and the read run.
 *  3. Grace periods wait for these sections: rw_tracepoint_synchronize_
 *     unregister() does not return while a probe is still running, and
 *     rw_provider_unregister() does not return while a read function of
 *     the provider runs.
 */
#include <rewire/provider.h>
#include <rewire/readside.h>
#include <rewire/tracepoint.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

RW_DECLARE_TRACEPOINT(tprs_ev, (int, x));
RW_DEFINE_TRACEPOINT(tprs_ev, (int, x));

__attribute__((noinline)) static void fire(int x)
{
	rw_trace_tprs_ev(x);
}

/* --- 1. Which read side ----------------------------------------------- */

struct seen {
	atomic_int calls;
	atomic_int bad; /* outside our read side, or inside liburcu's */
	atomic_int no_edeadlk;
};

static void look(struct seen *s)
{
	atomic_fetch_add(&s->calls, 1);
	if (rw__rs_self.nest == 0 || !rw__rs_self.registered ||
	    urcu_bp_read_ongoing())
		atomic_fetch_add(&s->bad, 1);
	if (rw_rcu_synchronize() != -EDEADLK)
		atomic_fetch_add(&s->no_edeadlk, 1);
}

static void probe_look(void *data, int x)
{
	(void)x;
	look(data);
}

static void generic_look(void *data, const struct rw_tracepoint *tp,
			 const union rw_tp_value *args)
{
	(void)tp;
	(void)args;
	look(data);
}

static int read_look(const struct rw_provider *p, void *out)
{
	look(p->priv);
	*(int *)out = 1;
	return 0;
}

static void check_seen(struct seen *s, int calls)
{
	CHECK_EQ(atomic_load(&s->calls), calls);
	CHECK_EQ(atomic_load(&s->bad), 0);
	CHECK_EQ(atomic_load(&s->no_edeadlk), 0);
}

static void test_which_read_side(void)
{
	struct seen a = { 0 }, b = { 0 }, g = { 0 }, pv = { 0 };
	struct rw_provider_set set = RW_PROVIDER_SET_INIT;
	struct rw_provider p = { .name = "p", .read = read_look, .priv = &pv };
	int out = 0;

	/* One probe: the bound stub. */
	CHECK_OK(rw_tracepoint_probe_register(tprs_ev, probe_look, &a, 10));
	fire(1);
	check_seen(&a, 1);
	/* Two: the iterator. */
	CHECK_OK(rw_tracepoint_probe_register(tprs_ev, probe_look, &b, 5));
	fire(2);
	check_seen(&a, 2);
	check_seen(&b, 1);
	CHECK_OK(rw_tracepoint_probe_unregister(tprs_ev, probe_look, &a));
	CHECK_OK(rw_tracepoint_probe_unregister(tprs_ev, probe_look, &b));
	/* A generic probe, alone. */
	CHECK_OK(rw_tracepoint_probe_register_generic(
		rw_tracepoint_ptr(tprs_ev), generic_look, &g, 10));
	fire(3);
	check_seen(&g, 1);
	CHECK_OK(rw_tracepoint_probe_unregister_generic(
		rw_tracepoint_ptr(tprs_ev), generic_look, &g));
	CHECK_OK(rw_tracepoint_synchronize_unregister());
	CHECK_EQ(rw__rs_self.nest, 0);

	/* A provider's read function, inline and exported. */
	CHECK_OK(rw_provider_register(&set, &p));
	CHECK_OK(rw_provider_read(&set, &out, NULL));
	CHECK_OK((rw_provider_read)(&set, &out, NULL));
	CHECK_EQ(out, 1);
	check_seen(&pv, 2);
	CHECK_OK(rw_provider_unregister(&set, &p));
	CHECK_EQ(rw__rs_self.nest, 0);
}

/* --- 2. First section in a signal handler ------------------------------ */

static struct seen sig_tp, sig_pv;
static struct rw_provider_set sig_set = RW_PROVIDER_SET_INIT;
static struct rw_provider sig_p = { .name = "sig",
				    .read = read_look,
				    .priv = &sig_pv };
static atomic_int handler_out;

static void on_usr1(int sig)
{
	int out = 0;

	(void)sig;
	fire(4);
	if (rw_provider_read(&sig_set, &out, NULL) == 0)
		atomic_store(&handler_out, out);
}

static void *first_in_handler(void *arg)
{
	int *registered_before = arg;

	*registered_before = rw__rs_self.registered;
	raise(SIGUSR1);
	return (void *)(uintptr_t)rw__rs_self.registered;
}

static void test_first_in_handler(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	int before = -1;
	void *after;
	pthread_t t;

	sigemptyset(&sa.sa_mask);
	CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
	CHECK_OK(
		rw_tracepoint_probe_register(tprs_ev, probe_look, &sig_tp, 10));
	CHECK_OK(rw_provider_register(&sig_set, &sig_p));
	CHECK_OK(pthread_create(&t, NULL, first_in_handler, &before));
	CHECK_OK(pthread_join(t, &after));
	CHECK_EQ(before, 0);
	CHECK_EQ((uintptr_t)after, 1);
	check_seen(&sig_tp, 1);
	check_seen(&sig_pv, 1);
	CHECK_EQ(atomic_load(&handler_out), 1);
	CHECK_OK(rw_tracepoint_probe_unregister(tprs_ev, probe_look, &sig_tp));
	CHECK_OK(rw_provider_unregister(&sig_set, &sig_p));
	signal(SIGUSR1, SIG_DFL);
}

/* --- 3. Grace periods wait for probes and read functions ----------------- */

static atomic_int inside, release_, waiter_done;

/* Holds the section open until released (at most 10 s). */
static void hold(void)
{
	atomic_store(&inside, 1);
	for (int i = 0; i < 10000 && !atomic_load(&release_); i++)
		usleep(1000);
}

static void probe_hold(void *data, int x)
{
	(void)data;
	(void)x;
	hold();
}

static int read_hold(const struct rw_provider *p, void *out)
{
	(void)p;
	hold();
	*(int *)out = 2;
	return 0;
}

static void *fire_thread(void *arg)
{
	(void)arg;
	fire(5);
	return NULL;
}

static struct rw_provider_set hold_set = RW_PROVIDER_SET_INIT;
static struct rw_provider hold_p = { .name = "hold", .read = read_hold };

static void *read_thread(void *arg)
{
	int out = 0;

	(void)arg;
	/* The provider stopped being current while its read function ran
	 * (unregister switched away from it, then waited): the read retries
	 * and finds none. */
	CHECK_EQ(rw_provider_read(&hold_set, &out, NULL), -ENODEV);
	CHECK_EQ(out, 2);
	return NULL;
}

static void *sync_thread(void *arg)
{
	(void)arg;
	CHECK_OK(rw_tracepoint_synchronize_unregister());
	atomic_store(&waiter_done, 1);
	return NULL;
}

static void *unregister_thread(void *arg)
{
	(void)arg;
	CHECK_OK(rw_provider_unregister(&hold_set, &hold_p));
	atomic_store(&waiter_done, 1);
	return NULL;
}

/* @reader enters the section and holds it; @waiter must not finish until
 * the reader has been released. */
static void check_waits(void *(*reader)(void *), void *(*waiter)(void *))
{
	pthread_t r, w;

	atomic_store(&inside, 0);
	atomic_store(&release_, 0);
	atomic_store(&waiter_done, 0);
	CHECK_OK(pthread_create(&r, NULL, reader, NULL));
	while (!atomic_load(&inside))
		usleep(1000);
	CHECK_OK(pthread_create(&w, NULL, waiter, NULL));
	usleep(100 * 1000);
	CHECK_EQ(atomic_load(&waiter_done), 0);
	atomic_store(&release_, 1);
	CHECK_OK(pthread_join(r, NULL));
	CHECK_OK(pthread_join(w, NULL));
	CHECK_EQ(atomic_load(&waiter_done), 1);
}

static void test_grace_periods_wait(void)
{
	CHECK_OK(rw_tracepoint_probe_register(tprs_ev, probe_hold, NULL, 10));
	check_waits(fire_thread, sync_thread);
	CHECK_OK(rw_tracepoint_probe_unregister(tprs_ev, probe_hold, NULL));

	CHECK_OK(rw_provider_register(&hold_set, &hold_p));
	check_waits(read_thread, unregister_thread);
}

int main(void)
{
	test_which_read_side();
	test_first_in_handler();
	test_grace_periods_wait();
	printf("test_tp_readside: ok\n");
	return 0;
}
