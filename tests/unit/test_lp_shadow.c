/* SPDX-License-Identifier: MIT */
/*
 * Shadow variables (rewire/livepatch.h): the klp_shadow semantics, the
 * get_or_alloc race (one constructor per key, one pointer for everyone),
 * and lock-free readers against a writer that allocates and frees (the
 * memory must outlive every reader: ASan, and a magic/owner oracle that
 * catches early reuse in plain builds).
 *
 * Runs on every backend; no code is patched.
 */
#include <rewire/livepatch.h>
#include <rewire/rcu.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

/* Ids of the cases, so that each case owns its variables. */
enum {
	ID_BASIC = 0x100,
	ID_OTHER,
	ID_CTOR,
	ID_DTOR,
	ID_ALL_A,
	ID_ALL_B,
	ID_RACE,
	ID_STRESS,
	ID_HOLD,
};

/* --- Basics ------------------------------------------------------------- */

static void test_basic(void)
{
	int obj1, obj2;
	unsigned char *p;

	CHECK(rw_shadow_get(&obj1, ID_BASIC) == NULL);
	p = rw_shadow_alloc(&obj1, ID_BASIC, 32, NULL, NULL);
	CHECK(p != NULL);
	CHECK((uintptr_t)p % _Alignof(max_align_t) == 0);
	for (int i = 0; i < 32; i++)
		CHECK_EQ(p[i], 0);
	memset(p, 0xab, 32);
	CHECK(rw_shadow_get(&obj1, ID_BASIC) == p);
	/* Keyed by both parts. */
	CHECK(rw_shadow_get(&obj2, ID_BASIC) == NULL);
	CHECK(rw_shadow_get(&obj1, ID_OTHER) == NULL);

	/* A second alloc of the key fails and leaves the first alone. */
	CHECK(rw_shadow_alloc(&obj1, ID_BASIC, 32, NULL, NULL) == NULL);
	CHECK(rw_shadow_get(&obj1, ID_BASIC) == p);
	CHECK_EQ(p[31], 0xab);
	/* get_or_alloc returns the existing one. */
	CHECK(rw_shadow_get_or_alloc(&obj1, ID_BASIC, 32, NULL, NULL) == p);

	/* Another object, another id: other variables. */
	unsigned char *q = rw_shadow_alloc(&obj2, ID_BASIC, 8, NULL, NULL);
	unsigned char *r = rw_shadow_alloc(&obj1, ID_OTHER, 0, NULL, NULL);
	CHECK(q && r && q != p && r != p && r != q);
	CHECK(rw_shadow_get(&obj2, ID_BASIC) == q);
	CHECK(rw_shadow_get(&obj1, ID_OTHER) == r);

	rw_shadow_free(&obj1, ID_BASIC, NULL);
	CHECK(rw_shadow_get(&obj1, ID_BASIC) == NULL);
	CHECK(rw_shadow_get(&obj2, ID_BASIC) == q);
	CHECK(rw_shadow_get(&obj1, ID_OTHER) == r);
	/* Freeing what does not exist is a no-op. */
	rw_shadow_free(&obj1, ID_BASIC, NULL);
	/* The key can be allocated again, zeroed again. */
	p = rw_shadow_alloc(&obj1, ID_BASIC, 32, NULL, NULL);
	CHECK(p != NULL);
	for (int i = 0; i < 32; i++)
		CHECK_EQ(p[i], 0);

	rw_shadow_free(&obj1, ID_BASIC, NULL);
	rw_shadow_free(&obj2, ID_BASIC, NULL);
	rw_shadow_free(&obj1, ID_OTHER, NULL);
	CHECK(rw_shadow_get(&obj2, ID_BASIC) == NULL);
	CHECK(rw_shadow_get(&obj1, ID_OTHER) == NULL);
}

/* --- Constructor -------------------------------------------------------- */

struct ctor_arg {
	int calls;
	void *obj;
	void *data;
	int fail; /* return this */
	bool saw_zeroes;
};

struct rec {
	uint64_t a, b;
	char pad[48];
};

static int rec_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	struct ctor_arg *arg = ctor_data;
	const unsigned char *c = shadow_data;

	arg->calls++;
	arg->obj = obj;
	arg->data = shadow_data;
	arg->saw_zeroes = true;
	for (size_t i = 0; i < sizeof(struct rec); i++)
		if (c[i])
			arg->saw_zeroes = false;
	if (arg->fail)
		return arg->fail;
	/* Visible to a lookup from now on? It must not be. */
	CHECK(rw_shadow_get(obj, ID_CTOR) == NULL);
	((struct rec *)shadow_data)->a = 0x1122334455667788ull;
	((struct rec *)shadow_data)->b = (uintptr_t)obj;
	/* Re-entry into an updating shadow function fails instead of
	 * deadlocking. */
	CHECK(rw_shadow_alloc(obj, ID_OTHER, 8, NULL, NULL) == NULL);
	rw_shadow_free(obj, ID_OTHER, NULL);
	return 0;
}

static void test_ctor(void)
{
	int obj;
	struct ctor_arg arg = { 0 };
	struct rec *r;

	r = rw_shadow_alloc(&obj, ID_CTOR, sizeof(*r), rec_ctor, &arg);
	CHECK(r != NULL);
	CHECK_EQ(arg.calls, 1);
	CHECK(arg.obj == &obj);
	CHECK(arg.data == r);
	CHECK(arg.saw_zeroes);
	CHECK(rw_shadow_get(&obj, ID_CTOR) == r);
	CHECK(r->a == 0x1122334455667788ull);
	CHECK(r->b == (uintptr_t)&obj);
	CHECK(rw_shadow_get(&obj, ID_OTHER) == NULL);

	/* get_or_alloc of an existing variable does not construct again. */
	CHECK(rw_shadow_get_or_alloc(&obj, ID_CTOR, sizeof(*r), rec_ctor,
				     &arg) == r);
	CHECK_EQ(arg.calls, 1);
	/* Neither does a failed alloc. */
	CHECK(rw_shadow_alloc(&obj, ID_CTOR, sizeof(*r), rec_ctor, &arg) ==
	      NULL);
	CHECK_EQ(arg.calls, 1);
	rw_shadow_free(&obj, ID_CTOR, NULL);

	/* A failing constructor: NULL, and nothing published. */
	memset(&arg, 0, sizeof(arg));
	arg.fail = -EIO;
	CHECK(rw_shadow_alloc(&obj, ID_CTOR, sizeof(*r), rec_ctor, &arg) ==
	      NULL);
	CHECK_EQ(arg.calls, 1);
	CHECK(rw_shadow_get(&obj, ID_CTOR) == NULL);
	CHECK(rw_shadow_get_or_alloc(&obj, ID_CTOR, sizeof(*r), rec_ctor,
				     &arg) == NULL);
	CHECK_EQ(arg.calls, 2);
	CHECK(rw_shadow_get(&obj, ID_CTOR) == NULL);

	/* The key is free for a constructor that succeeds. */
	arg.fail = 0;
	r = rw_shadow_get_or_alloc(&obj, ID_CTOR, sizeof(*r), rec_ctor, &arg);
	CHECK(r != NULL);
	CHECK_EQ(arg.calls, 3);
	CHECK(rw_shadow_get(&obj, ID_CTOR) == r);
	rw_shadow_free(&obj, ID_CTOR, NULL);
	CHECK(rw_shadow_get(&obj, ID_CTOR) == NULL);
}

/* --- Destructor and free_all ---------------------------------------------- */

#define NDTOR 64
static struct {
	int calls;
	void *obj[NDTOR];
	void *data[NDTOR];
} dtor_log;

static void log_dtor(void *obj, void *shadow_data)
{
	CHECK(dtor_log.calls < NDTOR);
	dtor_log.obj[dtor_log.calls] = obj;
	dtor_log.data[dtor_log.calls] = shadow_data;
	dtor_log.calls++;
	/* Unpublished before the destructor runs. */
	CHECK(rw_shadow_get(obj, ID_DTOR) != shadow_data);
}

static void test_dtor(void)
{
	int obj1, obj2;
	void *p1, *p2;

	memset(&dtor_log, 0, sizeof(dtor_log));
	p1 = rw_shadow_alloc(&obj1, ID_DTOR, 16, NULL, NULL);
	p2 = rw_shadow_alloc(&obj2, ID_DTOR, 16, NULL, NULL);
	CHECK(p1 && p2);

	rw_shadow_free(&obj1, ID_DTOR, log_dtor);
	CHECK_EQ(dtor_log.calls, 1);
	CHECK(dtor_log.obj[0] == &obj1);
	CHECK(dtor_log.data[0] == p1);
	CHECK(rw_shadow_get(&obj1, ID_DTOR) == NULL);
	CHECK(rw_shadow_get(&obj2, ID_DTOR) == p2);

	/* Once: freeing again calls nothing. */
	rw_shadow_free(&obj1, ID_DTOR, log_dtor);
	CHECK_EQ(dtor_log.calls, 1);
	/* Not for another id of the same object. */
	rw_shadow_free(&obj2, ID_OTHER, log_dtor);
	CHECK_EQ(dtor_log.calls, 1);

	rw_shadow_free(&obj2, ID_DTOR, log_dtor);
	CHECK_EQ(dtor_log.calls, 2);
	CHECK(dtor_log.obj[1] == &obj2);
	CHECK(dtor_log.data[1] == p2);
	CHECK(rw_shadow_get(&obj2, ID_DTOR) == NULL);
}

static void test_free_all(void)
{
	enum { N = 20 };
	static int objs[N];
	void *a[N], *b[N];
	bool seen[N] = { false };

	for (int i = 0; i < N; i++) {
		a[i] = rw_shadow_alloc(&objs[i], ID_ALL_A, 8, NULL, NULL);
		CHECK(a[i] != NULL);
		if (i % 2 == 0) {
			b[i] = rw_shadow_alloc(&objs[i], ID_ALL_B, 8, NULL,
					       NULL);
			CHECK(b[i] != NULL);
		}
	}

	memset(&dtor_log, 0, sizeof(dtor_log));
	rw_shadow_free_all(ID_ALL_A, log_dtor);
	CHECK_EQ(dtor_log.calls, N);
	/* Each variable of the id once, with its own object and data. */
	for (int k = 0; k < N; k++) {
		int i = (int *)dtor_log.obj[k] - objs;

		CHECK(i >= 0 && i < N);
		CHECK(!seen[i]);
		seen[i] = true;
		CHECK(dtor_log.data[k] == a[i]);
	}
	for (int i = 0; i < N; i++) {
		CHECK(rw_shadow_get(&objs[i], ID_ALL_A) == NULL);
		CHECK(rw_shadow_get(&objs[i], ID_ALL_B) ==
		      (i % 2 == 0 ? b[i] : NULL));
	}

	/* Nothing left with that id. */
	rw_shadow_free_all(ID_ALL_A, log_dtor);
	CHECK_EQ(dtor_log.calls, N);

	rw_shadow_free_all(ID_ALL_B, log_dtor);
	CHECK_EQ(dtor_log.calls, N + N / 2);
	for (int i = 0; i < N; i++)
		CHECK(rw_shadow_get(&objs[i], ID_ALL_B) == NULL);
}

/* --- get_or_alloc race ------------------------------------------------------ */

#define RACE_THREADS 8
#define RACE_OBJS 512

static struct {
	pthread_barrier_t start;
	int rounds;
	atomic_int ctors[RACE_OBJS];
	char objs[RACE_OBJS];
	void *got[RACE_THREADS][RACE_OBJS];
	atomic_int losers_saw_ctor; /* a loser saw an unconstructed value */
} race;

struct race_data {
	uint64_t ctor_count; /* which constructor call made it */
	void *obj;
};

static int race_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	struct race_data *d = shadow_data;
	int i = (char *)obj - race.objs;

	(void)ctor_data;
	d->obj = obj;
	d->ctor_count = (uint64_t)atomic_fetch_add(&race.ctors[i], 1) + 1;
	return 0;
}

static void *race_main(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int round = 0; round < race.rounds; round++) {
		pthread_barrier_wait(&race.start);
		for (int i = 0; i < RACE_OBJS; i++) {
			struct race_data *d = rw_shadow_get_or_alloc(
				&race.objs[i], ID_RACE, sizeof(*d), race_ctor,
				NULL);

			CHECK(d != NULL);
			/* Constructed before anyone could see it. */
			if (d->obj != &race.objs[i] || d->ctor_count == 0)
				atomic_store(&race.losers_saw_ctor, 1);
			race.got[t][i] = d;
		}
		pthread_barrier_wait(&race.start);
		/* Main checks and frees here. */
		pthread_barrier_wait(&race.start);
	}
	return NULL;
}

static void test_race(void)
{
	pthread_t th[RACE_THREADS];

	race.rounds = (int)rw_test_scale(10, 200);
	CHECK(pthread_barrier_init(&race.start, NULL, RACE_THREADS + 1) == 0);
	for (int t = 0; t < RACE_THREADS; t++)
		CHECK(pthread_create(&th[t], NULL, race_main,
				     (void *)(intptr_t)t) == 0);
	for (int round = 0; round < race.rounds; round++) {
		for (int i = 0; i < RACE_OBJS; i++)
			atomic_store(&race.ctors[i], 0);
		pthread_barrier_wait(&race.start);
		/* The threads race on the same keys in the same order. */
		pthread_barrier_wait(&race.start);
		for (int i = 0; i < RACE_OBJS; i++) {
			void *p = rw_shadow_get(&race.objs[i], ID_RACE);

			CHECK_EQ(atomic_load(&race.ctors[i]), 1);
			CHECK(p != NULL);
			for (int t = 0; t < RACE_THREADS; t++)
				CHECK(race.got[t][i] == p);
		}
		CHECK(!atomic_load(&race.losers_saw_ctor));
		rw_shadow_free_all(ID_RACE, NULL);
		for (int i = 0; i < RACE_OBJS; i++)
			CHECK(rw_shadow_get(&race.objs[i], ID_RACE) == NULL);
		pthread_barrier_wait(&race.start);
	}
	for (int t = 0; t < RACE_THREADS; t++)
		CHECK(pthread_join(th[t], NULL) == 0);
	pthread_barrier_destroy(&race.start);
}

/* --- Readers against a writer --------------------------------------------- */

#define STRESS_READERS 4
#define STRESS_OBJS 16
#define STRESS_MAGIC 0x5ead0fdeadbeef01ull

struct stress_data {
	uint64_t magic;
	void *obj;
	uint64_t words[6];
};

static struct {
	char objs[STRESS_OBJS];
	atomic_int stop;
	atomic_long hits, misses;
	atomic_long ctors, dtors;
} stress;

static int stress_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	struct stress_data *d = shadow_data;

	(void)ctor_data;
	d->magic = STRESS_MAGIC;
	d->obj = obj;
	for (int i = 0; i < 6; i++)
		d->words[i] = (uintptr_t)obj + (uint64_t)i;
	atomic_fetch_add(&stress.ctors, 1);
	return 0;
}

/* Reads only: readers may still be reading the data. */
static void stress_dtor(void *obj, void *shadow_data)
{
	struct stress_data *d = shadow_data;

	CHECK(d->magic == STRESS_MAGIC);
	CHECK(d->obj == obj);
	atomic_fetch_add(&stress.dtors, 1);
}

static void *stress_reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
	long hits = 0, misses = 0;

	while (!atomic_load_explicit(&stress.stop, memory_order_relaxed)) {
		seed = seed * 1103515245u + 12345u;
		void *obj = &stress.objs[(seed >> 16) % STRESS_OBJS];
		struct stress_data *d;

		rw_rcu_read_lock();
		d = rw_shadow_get(obj, ID_STRESS);
		if (d) {
			/* Freed too early, the memory would be poisoned
			 * (ASan) or reused for another object or zeroed
			 * (calloc by the writer). */
			CHECK(d->magic == STRESS_MAGIC);
			CHECK(d->obj == obj);
			for (int i = 0; i < 6; i++)
				CHECK(d->words[i] ==
				      (uintptr_t)obj + (uint64_t)i);
			hits++;
		} else {
			misses++;
		}
		rw_rcu_read_unlock();
	}
	atomic_fetch_add(&stress.hits, hits);
	atomic_fetch_add(&stress.misses, misses);
	return NULL;
}

static void test_readers_vs_writer(void)
{
	pthread_t th[STRESS_READERS];
	uint64_t end = rw_test_now_ns() +
		       (uint64_t)rw_test_scale(700, 30000) * 1000000ull;
	long allocs = 0;

	for (int t = 0; t < STRESS_READERS; t++)
		CHECK(pthread_create(&th[t], NULL, stress_reader,
				     (void *)(intptr_t)t) == 0);
	while (rw_test_now_ns() < end) {
		for (int i = 0; i < STRESS_OBJS; i++) {
			void *obj = &stress.objs[i];

			/* Free then allocate at once: without a grace period
			 * the allocator would hand the same memory back. */
			rw_shadow_free(obj, ID_STRESS, stress_dtor);
			CHECK(rw_shadow_alloc(obj, ID_STRESS,
					      sizeof(struct stress_data),
					      stress_ctor, NULL) != NULL);
			allocs++;
			if (allocs % 7 == 0)
				rw_shadow_free(
					&stress.objs[(i * 5) % STRESS_OBJS],
					ID_STRESS, stress_dtor);
		}
	}
	atomic_store(&stress.stop, 1);
	for (int t = 0; t < STRESS_READERS; t++)
		CHECK(pthread_join(th[t], NULL) == 0);
	rw_shadow_free_all(ID_STRESS, stress_dtor);
	CHECK_EQ(atomic_load(&stress.ctors), allocs);
	CHECK_EQ(atomic_load(&stress.dtors), allocs);
	/* Both outcomes happened: the readers did race with the writer. */
	CHECK(atomic_load(&stress.hits) > 0);
	CHECK(atomic_load(&stress.misses) > 0);
	fprintf(stderr, "readers vs writer: %ld allocs, %ld hits, %ld misses\n",
		allocs, atomic_load(&stress.hits), atomic_load(&stress.misses));
}

/* --- A reader holds a variable across its free ------------------------------ */

static struct {
	char obj;
	atomic_int step;
	struct stress_data *seen;
} hold;

static void *hold_reader(void *arg)
{
	(void)arg;
	rw_rcu_read_lock();
	hold.seen = rw_shadow_get(&hold.obj, ID_HOLD);
	atomic_store(&hold.step, 1);
	while (atomic_load(&hold.step) != 2)
		usleep(100);
	/* Freed and a grace period was not allowed to end: still valid. */
	CHECK(hold.seen->magic == STRESS_MAGIC);
	CHECK(hold.seen->obj == &hold.obj);
	rw_rcu_read_unlock();
	return NULL;
}

static void test_free_waits_for_reader(void)
{
	pthread_t th;
	void *p;
	long dtors;

	p = rw_shadow_alloc(&hold.obj, ID_HOLD, sizeof(struct stress_data),
			    stress_ctor, NULL);
	CHECK(p != NULL);
	CHECK(pthread_create(&th, NULL, hold_reader, NULL) == 0);
	while (atomic_load(&hold.step) != 1)
		usleep(100);
	CHECK(hold.seen == p);
	dtors = atomic_load(&stress.dtors);
	rw_shadow_free(&hold.obj, ID_HOLD, stress_dtor);
	/* The destructor ran at once, in this thread, as in the kernel. */
	CHECK_EQ(atomic_load(&stress.dtors), dtors + 1);
	CHECK(rw_shadow_get(&hold.obj, ID_HOLD) == NULL);
	/* Give an early free every chance to happen. */
	usleep(20000);
	atomic_store(&hold.step, 2);
	CHECK(pthread_join(th, NULL) == 0);
}

int main(void)
{
	/* Before any variable exists: no table, and nothing breaks. */
	CHECK(rw_shadow_get(&dtor_log, 1) == NULL);
	rw_shadow_free(&dtor_log, 1, log_dtor);
	rw_shadow_free_all(1, log_dtor);
	CHECK_EQ(dtor_log.calls, 0);

	test_basic();
	test_ctor();
	test_dtor();
	test_free_all();
	test_race();
	test_readers_vs_writer();
	test_free_waits_for_reader();

	/* Let the deferred frees run (leak checkers). */
	CHECK_OK(rw_rcu_barrier());
	fprintf(stderr, "test_lp_shadow: ok\n");
	return 0;
}
