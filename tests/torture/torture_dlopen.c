/* SPDX-License-Identifier: MIT */
/*
 * Torture: dlopen()/dlclose() of an object with sites while its keys and
 * static calls are being patched.
 *
 * The main thread loads and unloads tests/dso/dso_churn.so again and
 * again. The object holds 64 sites of dl_exe_key (a key defined in this
 * executable), a key and a static call of its own, and calls this
 * executable's static call. A flipper thread enables and disables
 * dl_exe_key and retargets dl_exe_call all the time, so registrations and
 * unregistrations race with batches. Reader threads call into the object
 * while it is loaded (a rwlock keeps them out of it around dlclose: the
 * point is patching during dlopen/dlclose, not use after unload).
 *
 * Oracle (any violation fails the test):
 * - after every dlopen, at a stable moment (the flipper held off by
 *   flip_mutex), the object's 64 sites agree with dl_exe_key's state, and
 *   so do the executable's own sites;
 * - rw_static_key_sites(&dl_exe_key) is the executable's sites plus the
 *   object's while it is loaded, the executable's alone after dlclose (if
 *   the object really went away; RTLD_NOLOAD tells);
 * - the object's own key disables and enables; its static call retargets;
 * - every update returns 0 (a write into unmapped text would fail or
 *   crash); readers only ever see values some state allows.
 *
 * Short run: 1,000 load/unload cycles or about 5 s; REWIRE_TORTURE_LONG=1:
 * 20,000 cycles or 120 s.
 */
#include <rewire/rewire.h>

#include "check.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define NREADERS 2
#define EXE_SITES 4
#define DSO_SITES 64 /* 63 unlikely + 1 likely */

RW_DEFINE_STATIC_KEY_FALSE(dl_exe_key);

static int exe_f1(int x)
{
	return x + 1;
}

static int exe_f2(int x)
{
	return x + 2;
}

RW_DEFINE_STATIC_CALL(dl_exe_call, exe_f1);

__attribute__((noinline)) static int exe_sum(void)
{
	int s = 0;

	s += rw_static_branch_unlikely(dl_exe_key) ? 1 : 0;
	s += rw_static_branch_unlikely(dl_exe_key) ? 1 : 0;
	s += rw_static_branch_unlikely(dl_exe_key) ? 1 : 0;
	s += rw_static_branch_likely(dl_exe_key) ? 1 : 0;
	return s;
}

/* The object's functions; valid while `loaded` (obj_lock). */
struct churn {
	int (*exe_sum)(void);
	int (*exe_likely)(void);
	long (*exe_sites)(void);
	int (*key_on)(void);
	struct rw_static_key *(*key_ptr)(void);
	int (*call_it)(int);
	int (*call_set)(int);
	int (*call_exe)(int);
};

/* The sites of dl_exe_key in the executable and in the object (from its
 * first load): EXE_SITES and DSO_SITES, or more where the compiler
 * duplicated some (RW_TEST_SITES_OK). */
static long exe_sites, dso_sites;

static long all_sites(void)
{
	return exe_sites + dso_sites;
}

static pthread_rwlock_t obj_lock;
static bool loaded;	 /* obj_lock */
static struct churn obj; /* obj_lock */
static pthread_mutex_t flip_mutex = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int stop;
static _Atomic long flips, retargets, reads, bad_reads, bad_value;

static void *flipper(void *arg)
{
	unsigned n = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		pthread_mutex_lock(&flip_mutex);
		if (n % 3 == 2) {
			/* A reference pair: 0 -> 1 -> 0 through inc/dec. */
			CHECK_OK(rw_static_key_inc(&dl_exe_key));
			CHECK_OK(rw_static_key_dec(&dl_exe_key));
		} else if (rw_static_key_enabled(&dl_exe_key)) {
			CHECK_OK(rw_static_key_disable(&dl_exe_key));
		} else {
			CHECK_OK(rw_static_key_enable(&dl_exe_key));
		}
		pthread_mutex_unlock(&flip_mutex);
		CHECK_OK(rw_static_call_update(dl_exe_call,
					       n & 1 ? exe_f1 : exe_f2));
		atomic_fetch_add(&flips, 1);
		atomic_fetch_add(&retargets, 1);
		n++;
	}
	return NULL;
}

static void bad(long what)
{
	atomic_fetch_add(&bad_reads, 1);
	atomic_store(&bad_value, what);
}

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		int v;

		pthread_rwlock_rdlock(&obj_lock);
		if (loaded) {
			v = obj.exe_sum();
			if (v < 0 || v > DSO_SITES - 1)
				bad(1000 + v);
			v = obj.exe_likely();
			if (v != 0 && v != 1)
				bad(2000 + v);
			v = obj.key_on();
			if (v != 0 && v != 1)
				bad(3000 + v);
			v = obj.call_it(1);
			if (v != 101 && v != 201)
				bad(4000 + v);
			v = obj.call_exe(1);
			if (v != 2 && v != 3)
				bad(5000 + v);
			atomic_fetch_add(&reads, 1);
		}
		v = exe_sum();
		if (v < 0 || v > EXE_SITES)
			bad(6000 + v);
		pthread_rwlock_unlock(&obj_lock);
	}
	return NULL;
}

static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	if (!p) {
		fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
		exit(1);
	}
	return p;
}

static void resolve(void *h, struct churn *c)
{
	c->exe_sum = (int (*)(void))sym(h, "churn_exe_sum");
	c->exe_likely = (int (*)(void))sym(h, "churn_exe_likely");
	c->exe_sites = (long (*)(void))sym(h, "churn_exe_sites");
	c->key_on = (int (*)(void))sym(h, "churn_key_on");
	c->key_ptr = (struct rw_static_key * (*)(void)) sym(h, "churn_key_ptr");
	c->call_it = (int (*)(int))sym(h, "churn_call_it");
	c->call_set = (int (*)(int))sym(h, "churn_call_set");
	c->call_exe = (int (*)(int))sym(h, "churn_call_exe");
}

/* At a stable moment: every site of dl_exe_key agrees with the key. */
static void check_stable(const struct churn *c, bool with_obj)
{
	bool on;

	pthread_mutex_lock(&flip_mutex);
	on = rw_static_key_enabled(&dl_exe_key);
	CHECK_EQ(exe_sum(), on ? EXE_SITES : 0);
	if (with_obj) {
		CHECK_EQ(c->exe_sum(), on ? DSO_SITES - 1 : 0);
		CHECK_EQ(c->exe_likely(), on);
		CHECK_EQ(rw_static_key_sites(&dl_exe_key), all_sites());
	}
	pthread_mutex_unlock(&flip_mutex);
}

static void sleep_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

int main(void)
{
	pthread_t tf, tr[NREADERS];
	pthread_rwlockattr_t ra;
	char path[512];
	long max_cycles = rw_test_scale(1000, 20000);
	uint64_t limit = (uint64_t)rw_test_scale(5, 120) * 1000000000ull;
	uint64_t t0 = rw_test_now_ns();
	long cycles = 0, stayed = 0;
	unsigned seed = 12345;
	struct churn c;

#ifndef RW_BACKEND_PATCHING
	SKIP("no code patching on this backend");
#endif
	snprintf(path, sizeof(path), "%s/dso_churn.so", RW_TEST_DSO_DIR);
	exe_sites = rw_static_key_sites(&dl_exe_key);
	CHECK(RW_TEST_SITES_OK(exe_sites, EXE_SITES));
	CHECK_EQ(exe_sum(), 0);

	/* Writers first: the loader must not starve behind the readers. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(
		&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&obj_lock, &ra);

	CHECK_EQ(pthread_create(&tf, NULL, flipper, NULL), 0);
	for (int i = 0; i < NREADERS; i++)
		CHECK_EQ(pthread_create(&tr[i], NULL, reader, NULL), 0);

	while (cycles < max_cycles && rw_test_now_ns() - t0 < limit) {
		void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		struct rw_static_key *k;
		long n;

		if (!h)
			SKIP("dlopen %s: %s", path, dlerror());
		resolve(h, &c);
		if (!dso_sites)
			dso_sites = c.exe_sites();
		CHECK(RW_TEST_SITES_OK(dso_sites, DSO_SITES));
		CHECK_EQ(c.exe_sites(), dso_sites);
		check_stable(&c, true);

		/* The object's own key and static call. */
		k = c.key_ptr();
		CHECK_EQ(rw_static_key_sites(k), 1);
		CHECK(rw_static_key_enabled(k));
		CHECK_EQ(c.key_on(), 1);
		CHECK_EQ(c.call_it(1), 101);
		CHECK_EQ(c.call_exe(1) == 2 || c.call_exe(1) == 3, 1);

		pthread_rwlock_wrlock(&obj_lock);
		obj = c;
		loaded = true;
		pthread_rwlock_unlock(&obj_lock);

		CHECK_OK(rw_static_key_disable(k));
		CHECK_EQ(c.key_on(), 0);
		CHECK_OK(c.call_set(1));
		CHECK_EQ(c.call_it(1), 201);
		sleep_us((long)(seed = seed * 1103515245u + 12345u) % 500);
		CHECK_OK(rw_static_key_enable(k));
		CHECK_EQ(c.key_on(), 1);
		CHECK_OK(c.call_set(0));
		CHECK_EQ(c.call_it(1), 101);
		check_stable(&c, true);

		pthread_rwlock_wrlock(&obj_lock);
		loaded = false;
		pthread_rwlock_unlock(&obj_lock);
		CHECK_EQ(dlclose(h), 0);

		/* Gone from the registry, unless the object stayed loaded. */
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
		n = rw_static_key_sites(&dl_exe_key);
		if (h) {
			stayed++;
			CHECK_EQ(n, all_sites());
			dlclose(h);
		} else {
			CHECK_EQ(n, exe_sites);
		}
		check_stable(&c, false);
		cycles++;
	}
	atomic_store(&stop, 1);
	pthread_join(tf, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(tr[i], NULL);

	if (atomic_load(&bad_reads)) {
		fprintf(stderr, "%ld bad reads, last code %ld\n",
			atomic_load(&bad_reads), atomic_load(&bad_value));
		exit(1);
	}
	CHECK_EQ(rw_static_key_sites(&dl_exe_key), exe_sites);
	check_stable(&c, false);
	printf("torture_dlopen: %ld load/unload cycles (%ld stayed loaded), "
	       "%ld flips, %ld retargets, %ld reads in the object, %.1f s: "
	       "ok\n",
	       cycles, stayed, atomic_load(&flips), atomic_load(&retargets),
	       atomic_load(&reads), (double)(rw_test_now_ns() - t0) / 1e9);
	return 0;
}
