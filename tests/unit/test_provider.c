/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of providers: registration, rating order, pinning, hooks, the
 * errors (each leaving the state as it was), and the property the API
 * exists for: rw_provider_unregister() returns only after a reader delayed
 * inside the provider's read function has left it, so the provider can be
 * freed at once (ASan checks the "at once" in the asan preset).
 */
#include <rewire/provider.h>

#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- A simple provider ---------------------------------------------------- */

struct tprov {
	struct rw_provider p;
	int id;
	int enable_ret;		 /* what the enable hook returns */
	atomic_int enable_calls; /* enable hook calls */
	atomic_int enables;	 /* ... that succeeded */
	atomic_int disables;	 /* disable hook calls */
	atomic_int reads;	 /* read function calls */
	int nested_ret;		 /* a writer call made from a hook or read */
	struct rw_provider_set *nest_set;
};

static int tprov_read(const struct rw_provider *p, void *out)
{
	struct tprov *t = p->priv;

	atomic_fetch_add(&t->reads, 1);
	*(int *)out = t->id;
	return 0;
}

static int tprov_enable(struct rw_provider *p)
{
	struct tprov *t = p->priv;

	atomic_fetch_add(&t->enable_calls, 1);
	if (t->nest_set)
		t->nested_ret = rw_provider_select(t->nest_set, NULL);
	if (!t->enable_ret)
		atomic_fetch_add(&t->enables, 1);
	return t->enable_ret;
}

static void tprov_disable(struct rw_provider *p)
{
	struct tprov *t = p->priv;

	atomic_fetch_add(&t->disables, 1);
}

static void tprov_init(struct tprov *t, const char *name, int rating, int id,
		       bool hooks)
{
	memset(t, 0, sizeof(*t));
	t->p.name = name;
	t->p.rating = rating;
	t->p.read = tprov_read;
	t->p.priv = t;
	if (hooks) {
		t->p.enable = tprov_enable;
		t->p.disable = tprov_disable;
	}
	t->id = id;
}

/* The id of the current provider as a reader sees it, 0 for none. */
static int current_id(struct rw_provider_set *set, unsigned *gen)
{
	int id = -1;
	int err = rw_provider_read(set, &id, gen);

	if (err == -ENODEV)
		return 0;
	CHECK_OK(err);
	return id;
}

static void check_name(struct rw_provider_set *set, const char *want)
{
	char buf[32];
	unsigned g1, g2;
	int err = rw_provider_current_name(set, buf, sizeof(buf), &g1);

	if (!want) {
		CHECK_EQ(err, -ENODEV);
		CHECK_EQ(buf[0], '\0');
	} else {
		CHECK_OK(err);
		CHECK(strcmp(buf, want) == 0);
	}
	current_id(set, &g2);
	CHECK_EQ(g1, g2);
}

/* --- API semantics and errors --------------------------------------------- */

static void test_errors(void)
{
	struct rw_provider_set set = RW_PROVIDER_SET_INIT;
	struct rw_provider_set other = RW_PROVIDER_SET_INIT;
	struct tprov a, a2, b;
	char buf[4];
	int out;
	unsigned gen = 123;

	tprov_init(&a, "a", 10, 1, false);
	tprov_init(&a2, "a", 20, 2, false);
	tprov_init(&b, "b", 5, 3, false);

	CHECK_EQ(rw_provider_read(&set, &out, &gen), -ENODEV);
	CHECK_EQ(gen, 0);
	CHECK_EQ(rw_provider_read(NULL, &out, NULL), -EINVAL);
	check_name(&set, NULL);
	CHECK_EQ(rw_provider_current_name(&set, NULL, 4, NULL), -EINVAL);
	CHECK_EQ(rw_provider_current_name(&set, buf, 0, NULL), -EINVAL);

	CHECK_EQ(rw_provider_register(NULL, &a.p), -EINVAL);
	CHECK_EQ(rw_provider_register(&set, NULL), -EINVAL);
	a.p.name = NULL;
	CHECK_EQ(rw_provider_register(&set, &a.p), -EINVAL);
	a.p.name = "a";
	a.p.read = NULL;
	CHECK_EQ(rw_provider_register(&set, &a.p), -EINVAL);
	a.p.read = tprov_read;
	CHECK_EQ(current_id(&set, NULL), 0);

	CHECK_EQ(rw_provider_unregister(&set, &a.p), -ENOENT);
	CHECK_EQ(rw_provider_unregister(NULL, &a.p), -EINVAL);
	CHECK_EQ(rw_provider_unregister(&set, NULL), -EINVAL);
	CHECK_EQ(rw_provider_select(&set, "a"), -ENOENT);
	CHECK_EQ(rw_provider_select(NULL, "a"), -EINVAL);
	CHECK_OK(rw_provider_select(&set, NULL));
	CHECK_EQ(current_id(&set, &gen), 0);
	CHECK_EQ(gen, 0);

	CHECK_OK(rw_provider_register(&set, &a.p));
	CHECK_EQ(current_id(&set, &gen), 1);
	CHECK_EQ(gen, 1);
	/* Twice, in this set or another; a name taken. None changes a thing. */
	CHECK_EQ(rw_provider_register(&set, &a.p), -EEXIST);
	CHECK_EQ(rw_provider_register(&other, &a.p), -EEXIST);
	CHECK_EQ(rw_provider_register(&set, &a2.p), -EEXIST);
	CHECK_EQ(rw_provider_unregister(&other, &a.p), -ENOENT);
	CHECK_EQ(rw_provider_unregister(&set, &a2.p), -ENOENT);
	CHECK_EQ(current_id(&set, &gen), 1);
	CHECK_EQ(gen, 1);
	CHECK_EQ(current_id(&other, NULL), 0);

	/* The name of a provider in one set is free in another. */
	CHECK_OK(rw_provider_register(&other, &a2.p));
	CHECK_EQ(current_id(&other, NULL), 2);

	/* Names that fit exactly, and truncated ones. */
	CHECK_OK(rw_provider_register(&set, &b.p));
	CHECK_OK(rw_provider_select(&set, "b"));
	CHECK_EQ(rw_provider_current_name(&set, buf, 2, NULL), 0);
	CHECK(strcmp(buf, "b") == 0);
	CHECK_OK(rw_provider_select(&set, "a"));
	CHECK_EQ(rw_provider_current_name(&set, buf, 1, NULL), -ERANGE);
	CHECK_EQ(buf[0], '\0');

	CHECK_OK(rw_provider_unregister(&set, &a.p));
	CHECK_OK(rw_provider_unregister(&set, &b.p));
	CHECK_OK(rw_provider_unregister(&other, &a2.p));
	CHECK_EQ(rw_provider_unregister(&set, &a.p), -ENOENT);
	CHECK_EQ(current_id(&set, NULL), 0);
	CHECK_EQ(current_id(&other, NULL), 0);
	/* Unregistered providers may join another set. */
	CHECK_OK(rw_provider_register(&other, &a.p));
	CHECK_OK(rw_provider_unregister(&other, &a.p));
}

static void test_rating_order(void)
{
	static struct rw_provider_set set = RW_PROVIDER_SET_INIT;
	struct tprov lo, mid, hi, hi2, top;
	unsigned gen, g0;

	tprov_init(&lo, "lo", 10, 1, false);
	tprov_init(&mid, "mid", 20, 2, false);
	tprov_init(&hi, "hi", 30, 3, false);
	tprov_init(&hi2, "hi2", 30, 4, false);
	tprov_init(&top, "top", 40, 5, false);

	CHECK_OK(rw_provider_register(&set, &lo.p));
	CHECK_EQ(current_id(&set, &g0), 1); /* the only one */
	CHECK_OK(rw_provider_register(&set, &hi.p));
	CHECK_EQ(current_id(&set, &gen), 3); /* better */
	CHECK_EQ(gen, g0 + 1);
	CHECK_OK(rw_provider_register(&set, &mid.p));
	CHECK_OK(rw_provider_register(&set, &hi2.p));
	CHECK_EQ(current_id(&set, &gen), 3); /* neither is better */
	CHECK_EQ(gen, g0 + 1);
	check_name(&set, "hi");

	/* Pinned: a better provider does not take over. */
	CHECK_OK(rw_provider_select(&set, "lo"));
	CHECK_EQ(current_id(&set, &gen), 1);
	CHECK_EQ(gen, g0 + 2);
	CHECK_OK(rw_provider_select(&set, "lo")); /* idempotent */
	CHECK_EQ(current_id(&set, &gen), 1);
	CHECK_EQ(gen, g0 + 2);
	CHECK_OK(rw_provider_register(&set, &top.p));
	CHECK_EQ(current_id(&set, NULL), 1);
	/* Unpinned: the best. */
	CHECK_OK(rw_provider_select(&set, NULL));
	CHECK_EQ(current_id(&set, &gen), 5);
	CHECK_EQ(gen, g0 + 3);

	/* Unregistering the current one: the best remaining, the earliest
	 * registered among equals. */
	CHECK_OK(rw_provider_unregister(&set, &top.p));
	CHECK_EQ(current_id(&set, NULL), 3);
	CHECK_OK(rw_provider_unregister(&set, &hi.p));
	CHECK_EQ(current_id(&set, NULL), 4);
	/* Unregistering another: no change. */
	CHECK_OK(rw_provider_unregister(&set, &lo.p));
	CHECK_EQ(current_id(&set, &gen), 4);
	CHECK_EQ(gen, g0 + 5);
	/* Unregistering the pinned one unpins. */
	CHECK_OK(rw_provider_register(&set, &lo.p));
	CHECK_OK(rw_provider_select(&set, "mid"));
	CHECK_OK(rw_provider_unregister(&set, &mid.p));
	CHECK_EQ(current_id(&set, NULL), 4);
	CHECK_OK(rw_provider_register(&set, &top.p));
	CHECK_EQ(current_id(&set, NULL), 5);

	CHECK_OK(rw_provider_unregister(&set, &hi2.p));
	CHECK_OK(rw_provider_unregister(&set, &top.p));
	CHECK_EQ(current_id(&set, NULL), 1);
	CHECK_OK(rw_provider_unregister(&set, &lo.p));
	CHECK_EQ(current_id(&set, &gen), 0);
	check_name(&set, NULL);
	CHECK_EQ(gen, g0 + 10);
}

static void test_hooks(void)
{
	struct rw_provider_set set = RW_PROVIDER_SET_INIT;
	struct rw_provider_set other = RW_PROVIDER_SET_INIT;
	struct tprov a, b, c;
	unsigned gen;

	tprov_init(&a, "a", 10, 1, true);
	tprov_init(&b, "b", 20, 2, true);
	tprov_init(&c, "c", 30, 3, true);

	CHECK_OK(rw_provider_register(&set, &a.p));
	CHECK_EQ(atomic_load(&a.enables), 1);
	/* A failing enable: not registered, nothing changed. */
	b.enable_ret = -EIO;
	CHECK_EQ(rw_provider_register(&set, &b.p), -EIO);
	CHECK_EQ(atomic_load(&b.enable_calls), 1);
	CHECK_EQ(atomic_load(&b.enables), 0);
	CHECK_EQ(atomic_load(&a.disables), 0);
	CHECK_EQ(current_id(&set, &gen), 1);
	CHECK_EQ(gen, 1);
	CHECK_EQ(rw_provider_unregister(&set, &b.p), -ENOENT);
	/* Fixed, it registers and takes over; a is disabled after a grace
	 * period. */
	b.enable_ret = 0;
	CHECK_OK(rw_provider_register(&set, &b.p));
	CHECK_EQ(current_id(&set, NULL), 2);
	CHECK_EQ(atomic_load(&a.disables), 1);

	/* select() to a provider that fails: error, not pinned, no change. */
	a.enable_ret = -EBUSY;
	CHECK_EQ(rw_provider_select(&set, "a"), -EBUSY);
	CHECK_EQ(current_id(&set, &gen), 2);
	CHECK_EQ(gen, 2);
	CHECK_EQ(atomic_load(&b.disables), 0);
	c.enable_ret = -EBUSY;
	CHECK_EQ(rw_provider_register(&set, &c.p), -EBUSY); /* not pinned */
	c.enable_ret = 0;
	CHECK_EQ(current_id(&set, &gen), 2);
	CHECK_EQ(gen, 2);

	/* Unregistering the current one skips providers that fail to
	 * enable; with none left, none is current. */
	int calls = atomic_load(&a.enable_calls);

	CHECK_OK(rw_provider_unregister(&set, &b.p));
	CHECK_EQ(atomic_load(&b.disables), 1);
	CHECK_EQ(atomic_load(&a.enable_calls), calls + 1);
	CHECK_EQ(current_id(&set, &gen), 0);
	CHECK_EQ(gen, 3);
	/* select(NULL) tries again. */
	a.enable_ret = 0;
	CHECK_OK(rw_provider_select(&set, NULL));
	CHECK_EQ(current_id(&set, NULL), 1);
	/* Unregistering a provider that is not current calls no hook. */
	CHECK_OK(rw_provider_register(&set, &b.p));
	CHECK_EQ(current_id(&set, NULL), 2);
	int en = atomic_load(&a.enables), dis = atomic_load(&a.disables);
	CHECK_OK(rw_provider_unregister(&set, &a.p));
	CHECK_EQ(atomic_load(&a.enables), en);
	CHECK_EQ(atomic_load(&a.disables), dis);
	CHECK_EQ(atomic_load(&a.enables), atomic_load(&a.disables));

	/* A hook calling a writer function (of any set) gets -EDEADLK. */
	c.nest_set = &other;
	c.nested_ret = 1;
	CHECK_OK(rw_provider_register(&set, &c.p));
	CHECK_EQ(c.nested_ret, -EDEADLK);
	c.nest_set = NULL;
	CHECK_OK(rw_provider_unregister(&set, &c.p));
	CHECK_OK(rw_provider_unregister(&set, &b.p));
	CHECK_EQ(atomic_load(&b.enables), atomic_load(&b.disables));
	CHECK_EQ(atomic_load(&c.enables), atomic_load(&c.disables));
}

/* A read function that calls a writer function: -EDEADLK, not a hang. */
static struct rw_provider_set nested_set = RW_PROVIDER_SET_INIT;

static int nesting_read(const struct rw_provider *p, void *out)
{
	(void)p;
	*(int *)out =
		rw_provider_unregister(&nested_set, (struct rw_provider *)p);
	return 0;
}

static void test_edeadlk(void)
{
	struct rw_provider_set set = RW_PROVIDER_SET_INIT;
	struct tprov a, b, c;
	struct rw_provider n = { .name = "n", .read = nesting_read };
	unsigned gen, gen2;
	int out = 0;

	tprov_init(&a, "a", 10, 1, true);
	tprov_init(&b, "b", 20, 2, true);
	tprov_init(&c, "c", 30, 3, true);
	CHECK_OK(rw_provider_register(&set, &a.p));
	CHECK_OK(rw_provider_register(&set, &b.p));
	CHECK_EQ(current_id(&set, &gen), 2);

	/* Inside a read-side critical section, every writer function refuses
	 * before changing anything. */
	rw_rcu_read_lock();
	CHECK_EQ(rw_provider_register(&set, &c.p), -EDEADLK);
	CHECK_EQ(rw_provider_select(&set, "a"), -EDEADLK);
	CHECK_EQ(rw_provider_select(&set, NULL), -EDEADLK);
	CHECK_EQ(rw_provider_unregister(&set, &b.p), -EDEADLK);
	CHECK_EQ(rw_provider_unregister(&set, &a.p), -EDEADLK);
	/* Reading nests. */
	CHECK_EQ(current_id(&set, &gen2), 2);
	CHECK_EQ(gen2, gen);
	rw_rcu_read_unlock();
	check_name(&set, "b");
	CHECK_EQ(atomic_load(&c.enables), 0);
	CHECK_EQ(atomic_load(&b.disables), 0);
	/* Both still registered: the calls now succeed. */
	CHECK_EQ(rw_provider_register(&set, &b.p), -EEXIST);
	CHECK_OK(rw_provider_unregister(&set, &b.p));
	CHECK_OK(rw_provider_unregister(&set, &a.p));
	CHECK_EQ(current_id(&set, NULL), 0);

	/* From a read function. */
	CHECK_OK(rw_provider_register(&nested_set, &n));
	CHECK_OK(rw_provider_read(&nested_set, &out, NULL));
	CHECK_EQ(out, -EDEADLK);
	CHECK_OK(rw_provider_unregister(&nested_set, &n));
}

/* --- Unregister waits for a delayed reader -------------------------------- */

/* Provider A lives on the heap, struct and priv, and is freed right after
 * rw_provider_unregister() returns. */
struct apriv {
	int id;
	atomic_long touches; /* written by every read: ASan sees a late one */
};

static atomic_int arm;	     /* 1: the next read of A takes the delay */
static atomic_int inside;    /* the delayed reader is inside A's read */
static atomic_int left;	     /* ... and has left it (set on its way out) */
static atomic_int stop;	     /* readers: stop */
static atomic_long bad;	     /* readers: values that are neither A nor B */
static atomic_int wrong_gen; /* readers: A's value in a generation not A's */
static atomic_uint a_gen_lo, a_gen_hi; /* A was current in [lo, hi] */

#define DELAY_NS 200000000L

static int a_read(const struct rw_provider *p, void *out)
{
	struct apriv *priv = p->priv;
	int expect = 1;

	if (atomic_compare_exchange_strong(&arm, &expect, 0)) {
		struct timespec ts = { 0, DELAY_NS };

		atomic_store(&inside, 1);
		nanosleep(&ts, NULL);
		/* After the delay: the provider must still be there. */
		atomic_fetch_add(&priv->touches, 1);
		*(int *)out = priv->id;
		atomic_store(&left, 1);
		return 0;
	}
	atomic_fetch_add(&priv->touches, 1);
	*(int *)out = priv->id;
	return 0;
}

static int b_read(const struct rw_provider *p, void *out)
{
	(void)p;
	*(int *)out = 2;
	return 0;
}

static struct rw_provider_set dset = RW_PROVIDER_SET_INIT;

static void *reader_main(void *arg)
{
	long n = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		int v = 0;
		unsigned gen;
		int err = rw_provider_read(&dset, &v, &gen);

		if (err || (v != 1 && v != 2))
			atomic_fetch_add(&bad, 1);
		/* A's values only in A's generations (B's are the others). */
		if (v == 1 && (gen < atomic_load(&a_gen_lo) ||
			       gen > atomic_load(&a_gen_hi)))
			atomic_fetch_add(&wrong_gen, 1);
		n++;
	}
	return (void *)n;
}

/*
 * @switch_first: switch to B before unregistering A, so that A is not
 * current when unregistered and unregister must rely on the grace period
 * recorded when A stopped being current.
 */
static void run_delayed_reader(bool switch_first)
{
	enum { NREADERS = 3 };
	pthread_t t[NREADERS];
	struct rw_provider b = { .name = "b", .rating = 1, .read = b_read };
	struct rw_provider *a = malloc(sizeof(*a));
	struct apriv *priv = malloc(sizeof(*priv));
	unsigned gen;

	CHECK(a && priv);
	memset(a, 0, sizeof(*a));
	priv->id = 1;
	atomic_init(&priv->touches, 0);
	a->name = "a";
	a->rating = 100;
	a->read = a_read;
	a->priv = priv;
	atomic_store(&arm, 0);
	atomic_store(&inside, 0);
	atomic_store(&left, 0);
	atomic_store(&stop, 0);

	CHECK_OK(rw_provider_register(&dset, &b));
	CHECK_OK(rw_provider_register(&dset, a));
	CHECK_EQ(current_id(&dset, &gen), 1);
	atomic_store(&a_gen_lo, gen);
	atomic_store(&a_gen_hi, gen);
	for (int i = 0; i < NREADERS; i++)
		CHECK(pthread_create(&t[i], NULL, reader_main, NULL) == 0);

	/* One reader enters A's read and stays 200 ms. */
	usleep(10000);
	atomic_store(&arm, 1);
	while (!atomic_load(&inside))
		usleep(100);
	if (switch_first) {
		CHECK_OK(rw_provider_select(&dset, "b"));
		/* The others now read B; the delayed one is still in A. */
		CHECK(!atomic_load(&left));
	}

	uint64_t t0 = rw_test_now_ns();

	CHECK_OK(rw_provider_unregister(&dset, a));
	/* The oracle: the delayed reader is out of A's read function. */
	CHECK_EQ(atomic_load(&left), 1);
	uint64_t waited = rw_test_now_ns() - t0;

	/* Free at once: a later touch is a use after free under ASan. */
	memset(priv, 0x5a, sizeof(*priv));
	free(priv);
	free(a);
	printf("unregister%s waited %.1f ms for the delayed reader\n",
	       switch_first ? " (after a switch)" : "", waited / 1e6);
	CHECK(waited > 10 * 1000000ull);

	/* Readers go on with B. */
	CHECK_EQ(current_id(&dset, &gen), 2);
	CHECK(gen > atomic_load(&a_gen_hi));
	usleep(20000);
	atomic_store(&stop, 1);
	long reads = 0;

	for (int i = 0; i < NREADERS; i++) {
		void *n;

		CHECK(pthread_join(t[i], &n) == 0);
		reads += (long)n;
	}
	CHECK_EQ(atomic_load(&bad), 0);
	CHECK_EQ(atomic_load(&wrong_gen), 0);
	CHECK(reads > NREADERS);
	CHECK_OK(rw_provider_unregister(&dset, &b));
}

/* A switch away from a provider with a disable hook waits for its readers
 * before calling the hook. */
static atomic_int disabled_while_inside;

static void a_disable(struct rw_provider *p)
{
	(void)p;
	if (atomic_load(&inside) && !atomic_load(&left))
		atomic_store(&disabled_while_inside, 1);
}

static void *one_read(void *arg)
{
	int v = 0;

	(void)arg;
	CHECK_OK(rw_provider_read(&dset, &v, NULL));
	return NULL;
}

static void test_disable_waits(void)
{
	struct apriv priv = { .id = 1 };
	struct rw_provider a = { .name = "a",
				 .rating = 100,
				 .read = a_read,
				 .disable = a_disable,
				 .priv = &priv };
	struct rw_provider b = { .name = "b", .rating = 1, .read = b_read };
	pthread_t t;

	atomic_store(&inside, 0);
	atomic_store(&left, 0);
	atomic_store(&arm, 1);
	CHECK_OK(rw_provider_register(&dset, &a));
	CHECK_OK(rw_provider_register(&dset, &b));
	CHECK(pthread_create(&t, NULL, one_read, NULL) == 0);
	while (!atomic_load(&inside))
		usleep(100);
	CHECK_OK(rw_provider_select(&dset, "b"));
	CHECK_EQ(atomic_load(&left), 1);
	CHECK_EQ(atomic_load(&disabled_while_inside), 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK_OK(rw_provider_unregister(&dset, &a));
	CHECK_OK(rw_provider_unregister(&dset, &b));
}

/* The child of fork() can use the set and its writers. */
static void test_fork(void)
{
	struct rw_provider_set set = RW_PROVIDER_SET_INIT;
	struct tprov a, b;
	int st = 0;

	tprov_init(&a, "a", 10, 1, true);
	tprov_init(&b, "b", 20, 2, true);
	CHECK_OK(rw_provider_register(&set, &a.p));
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		if (rw_provider_register(&set, &b.p) != 0 ||
		    current_id(&set, NULL) != 2 ||
		    rw_provider_unregister(&set, &b.p) != 0 ||
		    current_id(&set, NULL) != 1)
			_exit(1);
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(current_id(&set, NULL), 1);
	CHECK_OK(rw_provider_unregister(&set, &a.p));
}

int main(void)
{
	test_errors();
	test_rating_order();
	test_hooks();
	test_edeadlk();
	run_delayed_reader(false);
	run_delayed_reader(true);
	test_disable_waits();
	test_fork();
	puts("PASS");
	return 0;
}
