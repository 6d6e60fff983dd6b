/* SPDX-License-Identifier: MIT */
/*
 * Provider torture: readers (and a signal handler on the writer's thread)
 * call rw_provider_read() while the writer switches among three providers
 * and replaces them: unregister, poison, free, allocate, register.
 *
 * Read functions take injected delays in the middle of their work. Oracles,
 * each able to fail:
 *
 *  1. Lifetime. Every read function checks its state's magic on entry and
 *     after its delay; the writer poisons the state (magic DEAD) as soon as
 *     rw_provider_unregister() returns, keeps it a while, then frees it
 *     (ASan reports a later touch). It also checks that no reader is inside
 *     (a per-provider count of readers inside the read function) when
 *     unregister returns or the disable hook runs.
 *  2. No mixing. A read writes out->a, delays, writes out->b, both from its
 *     state's id; a returned value with a != b came from a provider whose
 *     state changed under it.
 *  3. Current for the whole read. Before each operation the writer marks
 *     every provider that may become current "current"; afterwards it
 *     unmarks all but the one rw_provider_current_name() reports. A read
 *     function that sees its provider unmarked ran after a switch away from
 *     it, so rw_provider_read() must have retried: a returned value with
 *     the mark clear is a failure.
 *  4. Generations. After each operation the writer logs generation ->
 *     provider id. Readers record the (generation, id) pairs they got; at
 *     the end each must match the log.
 *
 * Short by default (about 2 s); REWIRE_TORTURE_LONG=1 runs 60 s.
 */
#include <rewire/provider.h>

#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#define MAGIC_LIVE 0x11feu
#define MAGIC_DEAD 0xdeadu
#define NSLOTS 3
#define GRAVE 8
#define MAX_READERS 8
#define MAX_SAMPLES (1 << 18)

struct state {
	atomic_uint magic;
	unsigned id;
	atomic_int current; /* oracle 3 */
	atomic_int inside;  /* readers inside the read function */
	atomic_int enabled;
	int fail_enable; /* writer only: the next enable fails */
};

struct prov {
	struct rw_provider p;
	struct state *st;
	char name[16];
};

struct out {
	unsigned a, b;
	int was_current;
	int dead;
};

static struct rw_provider_set set = RW_PROVIDER_SET_INIT;
static atomic_int stop;
static atomic_long failures[8];
enum {
	F_DEAD,	    /* oracle 1: read a poisoned state */
	F_INSIDE,   /* oracle 1: reader inside after unregister/disable */
	F_MIX,	    /* oracle 2 */
	F_STALE,    /* oracle 3 */
	F_ERR,	    /* unexpected error from rw_provider_read */
	F_DISABLED, /* a read function ran while its provider was disabled */
	F_SIG_ERR,  /* a read in the signal handler failed an oracle */
	F_GEN_JUMP, /* the generation moved by more than one per operation */
};
static const char *const failure_names[] = {
	"read of a poisoned provider", "reader inside after unregister/disable",
	"a != b (mixed state)",	       "stale provider value returned",
	"unexpected read error",       "read while disabled",
	"signal-handler read failed",  "generation jumped",
};

static __thread unsigned rng_state;
static __thread bool in_handler;

static unsigned rnd(void)
{
	unsigned x = rng_state ? rng_state : 2463534242u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	rng_state = x;
	return x;
}

static void fail(int what)
{
	atomic_fetch_add(&failures[what], 1);
}

/* Delay injection: mostly none, sometimes a spin, rarely a sleep. */
static void delay(void)
{
	unsigned r;

	if (in_handler)
		return;
	r = rnd();
	if ((r & 63) == 0) {
		for (volatile int i = 0; i < (int)(r >> 20) % 2000; i++)
			;
	} else if ((r & 8191) == 1) {
		struct timespec ts = { 0, 20000 + (long)(r >> 13) % 200000 };

		nanosleep(&ts, NULL);
	}
}

static int prov_read(const struct rw_provider *p, void *arg)
{
	struct state *st = p->priv;
	struct out *o = arg;

	atomic_fetch_add(&st->inside, 1);
	if (atomic_load(&st->magic) != MAGIC_LIVE)
		o->dead = 1;
	if (!atomic_load(&st->enabled) && p->enable)
		fail(F_DISABLED);
	o->a = st->id;
	delay();
	if (atomic_load(&st->magic) != MAGIC_LIVE)
		o->dead = 1;
	o->b = st->id;
	o->was_current = atomic_load(&st->current);
	atomic_fetch_sub(&st->inside, 1);
	return 0;
}

static int prov_enable(struct rw_provider *p)
{
	struct state *st = p->priv;

	if (st->fail_enable) {
		st->fail_enable = 0;
		return -EAGAIN;
	}
	atomic_store(&st->enabled, 1);
	return 0;
}

static void prov_disable(struct rw_provider *p)
{
	struct state *st = p->priv;

	if (atomic_load(&st->inside))
		fail(F_INSIDE);
	atomic_store(&st->enabled, 0);
}

/* --- Readers ---------------------------------------------------------- */

struct sample {
	unsigned gen, id;
};

struct reader {
	pthread_t thread;
	struct sample *samples;
	size_t n;
	long reads, nodev;
};

/* Oracles 1-3 on one returned value; true if it is good. */
static bool check_out(int err, const struct out *o)
{
	bool ok = true;

	if (err)
		return err == -ENODEV;
	if (o->dead) {
		fail(F_DEAD);
		ok = false;
	}
	if (o->a != o->b) {
		fail(F_MIX);
		ok = false;
	}
	if (!o->was_current) {
		fail(F_STALE);
		ok = false;
	}
	return ok;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct sample last = { ~0u, ~0u };

	rng_state = (unsigned)(uintptr_t)r * 2654435761u;
	while (!atomic_load(&stop)) {
		struct out o = { 0 };
		unsigned gen = 0;
		int err = rw_provider_read(&set, &o, &gen);

		r->reads++;
		if (err == -ENODEV) {
			r->nodev++;
			o.a = 0;
		} else if (err) {
			fail(F_ERR);
			continue;
		}
		check_out(err, &o);
		/* Oracle 4: record each new pair. */
		if ((gen != last.gen || o.a != last.id) && r->n < MAX_SAMPLES) {
			last.gen = gen;
			last.id = o.a;
			r->samples[r->n++] = last;
		}
	}
	return NULL;
}

/* A read from a signal handler on the writer's thread, which may be in the
 * middle of a switch: it must complete, and pass oracles 1-3. */
static void on_signal(int sig)
{
	struct out o = { 0 };
	int saved = errno;

	(void)sig;
	in_handler = true;
	if (!check_out(rw_provider_read(&set, &o, NULL), &o))
		fail(F_SIG_ERR);
	in_handler = false;
	errno = saved;
}

static void *signaller_main(void *arg)
{
	pthread_t writer = *(pthread_t *)arg;
	struct timespec ts = { 0, 100000 };

	while (!atomic_load(&stop)) {
		pthread_kill(writer, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* --- Writer ----------------------------------------------------------- */

static struct prov *slots[NSLOTS];
static struct prov *grave[GRAVE];
static unsigned grave_next;
static unsigned next_id = 1;
static unsigned *gen_log; /* generation -> id (0: none) */
static size_t gen_log_cap;

static struct prov *prov_new(void)
{
	static const int ratings[] = { 100, 200, 300 };
	struct prov *v = calloc(1, sizeof(*v));
	struct state *st = calloc(1, sizeof(*st));

	CHECK(v && st);
	atomic_init(&st->magic, MAGIC_LIVE);
	st->id = next_id++;
	snprintf(v->name, sizeof(v->name), "p%u", st->id);
	v->st = st;
	v->p.name = v->name;
	v->p.rating = ratings[rnd() % 3];
	v->p.read = prov_read;
	v->p.priv = st;
	if (rnd() % 4 == 0) {
		v->p.enable = prov_enable;
		v->p.disable = prov_disable;
		st->fail_enable = (rnd() % 8) == 0;
	}
	return v;
}

/* Poisoned at once, freed GRAVE replacements later. */
static void prov_bury(struct prov *v)
{
	struct prov *old = grave[grave_next];

	atomic_store(&v->st->magic, MAGIC_DEAD);
	v->st->id = 0xdead;
	grave[grave_next] = v;
	grave_next = (grave_next + 1) % GRAVE;
	if (old) {
		free(old->st);
		free(old);
	}
}

static void mark_all_current(void)
{
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i])
			atomic_store(&slots[i]->st->current, 1);
}

/* After an operation: unmark all but the current one, log its generation. */
static unsigned settle(unsigned prev_gen)
{
	char name[16];
	unsigned gen;
	unsigned id = 0;
	int err = rw_provider_current_name(&set, name, sizeof(name), &gen);

	if (err == 0)
		CHECK(sscanf(name, "p%u", &id) == 1);
	else
		CHECK_EQ(err, -ENODEV);
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i] && slots[i]->st->id != id)
			atomic_store(&slots[i]->st->current, 0);
	if (gen != prev_gen && gen != prev_gen + 1)
		fail(F_GEN_JUMP);
	if (gen >= gen_log_cap) {
		size_t cap = gen_log_cap ? gen_log_cap * 2 : 4096;

		gen_log = realloc(gen_log, cap * sizeof(*gen_log));
		CHECK(gen_log);
		memset(gen_log + gen_log_cap, 0,
		       (cap - gen_log_cap) * sizeof(*gen_log));
		gen_log_cap = cap;
	}
	gen_log[gen] = id;
	return gen;
}

static void register_slot(int i)
{
	struct prov *v = prov_new();
	int err;

	slots[i] = v;
	mark_all_current();
	err = rw_provider_register(&set, &v->p);
	if (err == -EAGAIN) {
		/* The enable hook failed once; nothing changed. Again. */
		CHECK_EQ(v->st->fail_enable, 0);
		err = rw_provider_register(&set, &v->p);
	}
	CHECK_OK(err);
}

static void replace_slot(int i, unsigned *gen)
{
	struct prov *v = slots[i];

	CHECK_OK(rw_provider_unregister(&set, &v->p));
	if (atomic_load(&v->st->inside))
		fail(F_INSIDE);
	slots[i] = NULL;
	prov_bury(v);
	/* Two operations: log the first (it may have switched) on its own. */
	*gen = settle(*gen);
	register_slot(i);
}

int main(void)
{
	int nreaders = (int)rw_test_scale(4, MAX_READERS);
	uint64_t run_ns = (uint64_t)rw_test_scale(2, 60) * 1000000000ull;
	struct reader readers[MAX_READERS] = { 0 };
	pthread_t self = pthread_self(), signaller;
	struct sigaction sa = { .sa_handler = on_signal,
				.sa_flags = SA_RESTART };
	unsigned gen = 0;
	long ops = 0, selects = 0, replaces = 0;

	rng_state = 12345;
	/* The handler's first read must not be the thread's first. */
	rw_rcu_register_thread();
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

	for (int i = 0; i < NSLOTS; i++) {
		register_slot(i);
		gen = settle(gen);
	}
	for (int i = 0; i < nreaders; i++) {
		readers[i].samples =
			malloc(MAX_SAMPLES * sizeof(*readers[i].samples));
		CHECK(readers[i].samples);
		CHECK(pthread_create(&readers[i].thread, NULL, reader_main,
				     &readers[i]) == 0);
	}
	CHECK(pthread_create(&signaller, NULL, signaller_main, &self) == 0);

	uint64_t t0 = rw_test_now_ns();

	while (rw_test_now_ns() - t0 < run_ns) {
		unsigned r = rnd() % 16;
		int i = (int)(rnd() % NSLOTS);

		mark_all_current();
		if (r < 14) {
			int err = rw_provider_select(&set, slots[i]->name);

			if (err == -EAGAIN) {
				/* Its enable hook failed once: no change. */
				unsigned g;

				CHECK_EQ(slots[i]->st->fail_enable, 0);
				rw_provider_current_name(&set, (char[16]){ 0 },
							 16, &g);
				CHECK_EQ(g, gen);
			} else {
				CHECK_OK(err);
			}
			selects++;
		} else if (r < 15) {
			CHECK_OK(rw_provider_select(&set, NULL));
			selects++;
		} else {
			replace_slot(i, &gen);
			replaces++;
		}
		gen = settle(gen);
		ops++;
	}
	atomic_store(&stop, 1);
	CHECK(pthread_join(signaller, NULL) == 0);

	long reads = 0, nodev = 0;
	size_t samples = 0, unchecked = 0, mismatches = 0;

	for (int i = 0; i < nreaders; i++) {
		struct reader *r = &readers[i];

		CHECK(pthread_join(r->thread, NULL) == 0);
		reads += r->reads;
		nodev += r->nodev;
		/* Oracle 4. */
		for (size_t k = 0; k < r->n; k++) {
			struct sample s = r->samples[k];

			if (s.gen > gen) {
				unchecked++;
				continue;
			}
			if (gen_log[s.gen] != s.id) {
				if (mismatches++ < 5)
					fprintf(stderr,
						"generation %u: read p%u, "
						"log p%u\n",
						s.gen, s.id, gen_log[s.gen]);
			}
		}
		samples += r->n;
		free(r->samples);
	}
	for (int i = 0; i < NSLOTS; i++) {
		CHECK_OK(rw_provider_unregister(&set, &slots[i]->p));
		prov_bury(slots[i]);
	}
	for (int i = 0; i < GRAVE; i++)
		prov_bury(prov_new()); /* flushes the grave */
	for (int i = 0; i < GRAVE; i++) {
		free(grave[i]->st);
		free(grave[i]);
	}
	free(gen_log);

	printf("%d readers: %ld reads (%ld -ENODEV), %zu generation samples "
	       "(%zu unchecked); writer: %ld ops (%ld selects, %ld replaces), "
	       "%u generations\n",
	       nreaders, reads, nodev, samples, unchecked, ops, selects,
	       replaces, gen);
	long total = 0;

	for (size_t k = 0; k < sizeof(failures) / sizeof(failures[0]); k++) {
		long n = atomic_load(&failures[k]);

		if (n)
			fprintf(stderr, "FAIL: %s: %ld\n", failure_names[k], n);
		total += n;
	}
	if (mismatches)
		fprintf(stderr, "FAIL: generation/provider mismatches: %zu\n",
			mismatches);
	CHECK_EQ(total, 0);
	CHECK_EQ(mismatches, 0);
	CHECK(reads > 0 && replaces > 0);
	puts("PASS");
	return 0;
}
