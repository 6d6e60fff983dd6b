/* SPDX-License-Identifier: MIT */
/*
 * demo - flip static keys and static calls while a multithreaded "service"
 * runs, and check what every thread saw.
 *
 * The service: N worker threads serve synthetic requests in a tight loop.
 * Each request checksums a buffer through the static call `checksum`
 * (sum_bytes, fnv1a or a bitwise crc32), takes an audit path when the
 * static key `audit` is on (off by default, rw_static_branch_unlikely) and
 * refills its buffer cheaply when the static key `fast_path` is on (on by
 * default, rw_static_branch_likely), or completely when it is off.
 *
 * The main thread runs phases and changes the configuration at the start of
 * each one, while the workers keep running:
 *
 *	phase	change
 *	1	none (baseline: sum_bytes, audit off, fast_path on)
 *	2	checksum -> fnv1a
 *	3	audit on
 *	4	checksum -> crc32, fast_path off
 *	5	audit off
 *	6	checksum -> sum_bytes, fast_path on (back to the baseline)
 *
 * More phases repeat 2..6.
 *
 * The oracle. Every change is one generation of the configuration, kept in
 * hist[]. Around each change the main thread does:
 *
 *	1. hist[g] = the new configuration; started = g (release);
 *	2. rw_static_call_update / rw_static_key_enable / _disable;
 *	3. settled = g (release).
 *
 * A worker loads settled (S) before a request and started (E) after it.
 * Each implementation records itself in a thread-local variable when it
 * runs, and the worker checks, for every request:
 *
 *	- the checksum equals a reference computation of the implementation
 *	  that claims to have run (a call that reached the wrong code, or ran
 *	  half-patched code, does not pass this);
 *	- the implementation, the audit branch and the fast_path branch it
 *	  observed are those of some generation g with S <= g <= E. Once an
 *	  update has returned (settled = g), no thread may run the old target
 *	  or take the old branch any more: that is rewire's guarantee, and a
 *	  violation is counted as an error.
 *
 * Requests that overlap an update (S < E) may legitimately see the old or
 * the new configuration; the demo counts them and how many saw the old one.
 */
#include <rewire/rewire.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64
#define MAX_PHASES 100
/* At most two changes per phase, plus the initial generation. */
#define MAX_GENS (2 * MAX_PHASES + 1)
#define BUF_MIN 64
#define BUF_MAX 256

/* ---- The checksum implementations, reached through a static call ------ */

enum impl { IMPL_SUM, IMPL_FNV, IMPL_CRC, NR_IMPLS, IMPL_NONE = -1 };

static const char *const impl_name[NR_IMPLS] = { "sum_bytes", "fnv1a",
						 "crc32" };

/*
 * Which implementation ran last on this thread. Written by the
 * implementation itself, read by the same thread after the call: no
 * sharing, so no synchronization.
 */
static _Thread_local int ran_impl = IMPL_NONE;

__attribute__((noinline)) static uint32_t sum_bytes(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	ran_impl = IMPL_SUM;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

__attribute__((noinline)) static uint32_t fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	ran_impl = IMPL_FNV;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* CRC-32 (IEEE, reflected), one bit at a time: slow on purpose. */
__attribute__((noinline)) static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	ran_impl = IMPL_CRC;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

RW_DEFINE_STATIC_CALL(checksum, sum_bytes);

/*
 * Reference computations, used only by the oracle: separate code (CRC-32
 * through a table), so that a wrong answer from the static call is not
 * repeated by its check.
 */
static uint32_t crc_table[256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

__attribute__((noinline)) static uint32_t reference(int impl, const uint8_t *p,
						    size_t n)
{
	uint32_t v;

	switch (impl) {
	case IMPL_SUM:
		v = 0;
		while (n--)
			v += *p++;
		return v;
	case IMPL_FNV:
		v = 2166136261u;
		while (n--)
			v = (v ^ *p++) * 16777619u;
		return v;
	case IMPL_CRC:
		v = 0xffffffffu;
		while (n--)
			v = crc_table[(v ^ *p++) & 0xff] ^ (v >> 8);
		return ~v;
	}
	return 0;
}

/* ---- The static keys -------------------------------------------------- */

RW_DEFINE_STATIC_KEY_FALSE(audit);
RW_DEFINE_STATIC_KEY_TRUE(fast_path);

/* ---- The configuration history (the oracle's memory) ------------------ */

struct config {
	int impl;
	bool audit;
	bool fast_path;
};

/*
 * hist[g] is written by the main thread before it publishes g in `started`
 * (release) and never changes afterwards; workers read only entries up to
 * the `started` they loaded (acquire).
 */
static struct config hist[MAX_GENS];
/* Generation whose update has begun / has returned. Written by main. */
static _Atomic unsigned started_gen;
static _Atomic unsigned settled_gen;
/* The phase that requests are counted in. Written by main. */
static _Atomic int cur_phase;
static _Atomic bool stop;
static _Atomic int ready;

/* ---- Workers ----------------------------------------------------------- */

/*
 * Counters are written by their worker only and read by the main thread
 * while the worker runs, so they are atomics with relaxed order (on x86-64
 * a plain load and store).
 */
typedef _Atomic uint64_t counter_t;

static inline void bump(counter_t *c)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static inline uint64_t get(counter_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

struct phase_stats {
	counter_t requests;
	counter_t by_impl[NR_IMPLS];
	counter_t audited;
	counter_t fast;
};

struct bad_request {
	int phase;
	unsigned settled, started;
	int ran;
	bool audit, fast;
	uint32_t got, want;
	const char *what;
};

struct worker {
	pthread_t thread;
	int id;
	uint64_t rng;
	struct phase_stats *phases;
	counter_t errors;
	counter_t overlapped;	      /* requests that overlapped an update */
	counter_t saw_old;	      /* ... and saw the older configuration */
	struct bad_request first_bad; /* valid if errors > 0 */
	uint8_t buf[BUF_MAX];
} __attribute__((aligned(64)));

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static bool field_ok(unsigned s, unsigned e, int which, int value)
{
	for (unsigned g = s; g <= e; g++) {
		int v = which == 0   ? hist[g].impl
			: which == 1 ? hist[g].audit
				     : hist[g].fast_path;
		if (v == value)
			return true;
	}
	return false;
}

static void record_bad(struct worker *w, const struct bad_request *b)
{
	if (get(&w->errors) == 0)
		w->first_bad = *b;
	bump(&w->errors);
}

static void serve_one(struct worker *w)
{
	struct bad_request b = { 0 };
	size_t len;
	uint32_t sum;

	b.phase = atomic_load_explicit(&cur_phase, memory_order_acquire);
	b.settled = atomic_load_explicit(&settled_gen, memory_order_acquire);
	/* Keep the compiler from hoisting the patched sites above the load. */
	atomic_signal_fence(memory_order_seq_cst);

	len = BUF_MIN + xorshift(&w->rng) % (BUF_MAX - BUF_MIN + 1);
	if (rw_static_branch_likely(fast_path)) {
		/* Fast path: the buffer is mostly cached; refresh 8 bytes. */
		uint64_t r = xorshift(&w->rng);

		memcpy(w->buf + r % (BUF_MAX - 8), &r, 8);
		b.fast = true;
	} else {
		/* Slow path: refill the whole buffer. */
		for (size_t i = 0; i < BUF_MAX; i += 8) {
			uint64_t r = xorshift(&w->rng);

			memcpy(w->buf + i, &r, 8);
		}
	}
	if (rw_static_branch_unlikely(audit))
		b.audit = true;

	ran_impl = IMPL_NONE;
	sum = rw_static_call(checksum)(w->buf, len);
	b.ran = ran_impl;

	atomic_signal_fence(memory_order_seq_cst);
	b.started = atomic_load_explicit(&started_gen, memory_order_acquire);

	if (b.ran < 0 || b.ran >= NR_IMPLS) {
		b.what = "no implementation ran";
		record_bad(w, &b);
		return;
	}
	b.got = sum;
	b.want = reference(b.ran, w->buf, len);
	if (b.got != b.want) {
		b.what = "wrong checksum for the implementation that ran";
		record_bad(w, &b);
	} else if (!field_ok(b.settled, b.started, 0, b.ran)) {
		b.what = "ran a checksum the update had already replaced";
		record_bad(w, &b);
	} else if (!field_ok(b.settled, b.started, 1, b.audit)) {
		b.what = "took an audit branch of a finished update";
		record_bad(w, &b);
	} else if (!field_ok(b.settled, b.started, 2, b.fast)) {
		b.what = "took a fast_path branch of a finished update";
		record_bad(w, &b);
	}
	if (b.settled != b.started) {
		const struct config *now = &hist[b.started];

		bump(&w->overlapped);
		if (b.ran != now->impl || b.audit != now->audit ||
		    b.fast != now->fast_path)
			bump(&w->saw_old);
	}

	struct phase_stats *ps = &w->phases[b.phase];

	bump(&ps->requests);
	bump(&ps->by_impl[b.ran]);
	if (b.audit)
		bump(&ps->audited);
	if (b.fast)
		bump(&ps->fast);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	atomic_fetch_add(&ready, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		serve_one(w);
	return NULL;
}

/* ---- The main thread: phases and changes ------------------------------- */

enum change_kind { CHG_NONE, CHG_CALL, CHG_AUDIT, CHG_FAST };

struct change {
	enum change_kind kind;
	int value; /* an impl for CHG_CALL, on/off for the keys */
};

struct step {
	const char *title;
	struct change chg[2];
};

static const struct step script[] = {
	{ "baseline", { { CHG_NONE, 0 } } },
	{ "switch checksum to fnv1a", { { CHG_CALL, IMPL_FNV } } },
	{ "enable audit", { { CHG_AUDIT, 1 } } },
	{ "crc32, disable fast_path",
	  { { CHG_CALL, IMPL_CRC }, { CHG_FAST, 0 } } },
	{ "disable audit", { { CHG_AUDIT, 0 } } },
	{ "back to sum_bytes, enable fast_path",
	  { { CHG_CALL, IMPL_SUM }, { CHG_FAST, 1 } } },
};

#define NR_STEPS (sizeof(script) / sizeof(script[0]))

static const struct step *step_of(int phase)
{
	if (phase == 0)
		return &script[0];
	return &script[1 + (phase - 1) % (NR_STEPS - 1)];
}

static unsigned nr_gens;
static unsigned nr_updates;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static void config_str(const struct config *c, char *out, size_t n)
{
	snprintf(out, n, "%-9s %caudit %cfast", impl_name[c->impl],
		 c->audit ? '+' : '-', c->fast_path ? '+' : '-');
}

static int apply(const struct change *c)
{
	static uint32_t (*const impls[NR_IMPLS])(
		const uint8_t *, size_t) = { sum_bytes, fnv1a, crc32 };
	struct rw_text_stats a, b;
	struct config next = hist[nr_gens - 1];
	char what[64];
	double t0, t1;
	int err;

	switch (c->kind) {
	case CHG_CALL:
		next.impl = c->value;
		snprintf(what, sizeof(what), "checksum -> %s",
			 impl_name[c->value]);
		break;
	case CHG_AUDIT:
		next.audit = c->value;
		snprintf(what, sizeof(what), "audit -> %s",
			 c->value ? "on" : "off");
		break;
	case CHG_FAST:
		next.fast_path = c->value;
		snprintf(what, sizeof(what), "fast_path -> %s",
			 c->value ? "on" : "off");
		break;
	default:
		return 0;
	}

	/* Step 1: publish the generation that is about to start. */
	hist[nr_gens] = next;
	atomic_store_explicit(&started_gen, nr_gens, memory_order_release);

	/* Step 2: the update itself. */
	rw_text_get_stats(&a);
	t0 = now_us();
	switch (c->kind) {
	case CHG_CALL:
		err = rw_static_call_update(checksum, impls[c->value]);
		break;
	case CHG_AUDIT:
		err = c->value ? rw_static_key_enable(&audit)
			       : rw_static_key_disable(&audit);
		break;
	default:
		err = c->value ? rw_static_key_enable(&fast_path)
			       : rw_static_key_disable(&fast_path);
		break;
	}
	t1 = now_us();
	rw_text_get_stats(&b);
	if (err) {
		fprintf(stderr, "demo: %s: %s\n", what, rw_strerror(err));
		return err;
	}

	/* Step 3: from now on no thread may see the old configuration. */
	atomic_store_explicit(&settled_gen, nr_gens, memory_order_release);
	nr_gens++;
	nr_updates++;

	printf("    %-24s %8.1f us  %2" PRIu64 " site(s)  %" PRIu64
	       " syncs  %3" PRIu64 " trap(s) emulated\n",
	       what, t1 - t0, b.sites_patched - a.sites_patched,
	       b.syncs - a.syncs, b.traps_emulated - a.traps_emulated);
	return 0;
}

/* ---- Options and output ------------------------------------------------ */

static void usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"usage: %s [--threads N] [--phases N] [--duration-ms MS]\n"
		"\n"
		"A small multithreaded service whose code is changed while it\n"
		"runs. N worker threads checksum synthetic requests through the\n"
		"static call `checksum` (sum_bytes, fnv1a or crc32) and test\n"
		"two static keys on every request: `audit` (off by default)\n"
		"and `fast_path` (on by default). The main thread retargets the\n"
		"static call and flips the keys at the start of each phase and\n"
		"prints each update: its latency, the sites it rewrote, the\n"
		"membarrier syncs it took and the threads that hit a site in\n"
		"the middle of the patch (their int3 trap was emulated).\n"
		"\n"
		"  phase 1  baseline: sum_bytes, audit off, fast_path on\n"
		"  phase 2  checksum -> fnv1a\n"
		"  phase 3  audit on\n"
		"  phase 4  checksum -> crc32, fast_path off\n"
		"  phase 5  audit off\n"
		"  phase 6  checksum -> sum_bytes, fast_path on\n"
		"  (further phases repeat 2 to 6)\n"
		"\n"
		"Every request is checked: its checksum must match a reference\n"
		"computation of the implementation that ran, and once an\n"
		"update has returned no thread may run the old target or take\n"
		"the old branch. At the end a table shows what each thread\n"
		"saw in each phase. The exit status is 0 only if no request\n"
		"failed its check and every thread served requests in every\n"
		"phase.\n"
		"\n"
		"options:\n"
		"  -t, --threads N       worker threads (1-%d, default 4)\n"
		"  -p, --phases N        phases (1-%d, default 6)\n"
		"  -d, --duration-ms MS  length of a phase (1-60000, default "
		"300)\n"
		"  -h, --help            this text\n",
		argv0, MAX_THREADS, MAX_PHASES);
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

static void print_phase_line(struct worker *ws, int nthreads, int p)
{
	uint64_t req = 0, impl[NR_IMPLS] = { 0 }, aud = 0, fast = 0;

	for (int t = 0; t < nthreads; t++) {
		struct phase_stats *ps = &ws[t].phases[p];

		req += get(&ps->requests);
		for (int i = 0; i < NR_IMPLS; i++)
			impl[i] += get(&ps->by_impl[i]);
		aud += get(&ps->audited);
		fast += get(&ps->fast);
	}
	printf("    served %" PRIu64 " requests: sum_bytes %" PRIu64
	       ", fnv1a %" PRIu64 ", crc32 %" PRIu64 "; audited %" PRIu64
	       "; fast path %" PRIu64 "\n",
	       req, impl[IMPL_SUM], impl[IMPL_FNV], impl[IMPL_CRC], aud, fast);
}

/*
 * A thread that the scheduler left out for a whole phase is not a failure
 * of rewire, but a thread stuck in a patched site is. Extend the phase
 * until every worker has served a request in it, for at most GRACE_MS;
 * past that, the table reports the thread as having made no progress.
 * Returns the extension in milliseconds.
 */
#define GRACE_MS 5000

static long wait_for_progress(struct worker *ws, int nthreads, int p)
{
	long waited = 0;

	for (int t = 0; t < nthreads && waited < GRACE_MS; t++) {
		while (!get(&ws[t].phases[p].requests) && waited < GRACE_MS) {
			sleep_ms(10);
			waited += 10;
		}
	}
	return waited;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "phases", required_argument, NULL, 'p' },
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int nthreads = 4, nphases = 6, duration_ms = 300;
	struct rw_text_stats st0, st1;
	struct worker *ws;
	uint64_t total = 0, errors = 0, overlapped = 0, saw_old = 0;
	int idle = 0, phase_end[MAX_PHASES];
	char cfg[48];
	long waited;
	int c, err;

	while ((c = getopt_long(argc, argv, "t:p:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!parse_int(optarg, 1, MAX_THREADS, &nthreads))
				goto bad_usage;
			break;
		case 'p':
			if (!parse_int(optarg, 1, MAX_PHASES, &nphases))
				goto bad_usage;
			break;
		case 'd':
			if (!parse_int(optarg, 1, 60000, &duration_ms))
				goto bad_usage;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			goto bad_usage;
		}
	}
	if (optind != argc)
		goto bad_usage;

	crc_table_init();
	hist[0] = (struct config){ IMPL_SUM, false, true };
	nr_gens = 1;

	ws = aligned_alloc(64, sizeof(*ws) * nthreads);
	if (!ws) {
		perror("demo: aligned_alloc");
		return 1;
	}
	memset(ws, 0, sizeof(*ws) * nthreads);

	printf("rewire %s demo (%s backend): %d worker threads, %d phases of "
	       "%d ms\n",
	       rw_version(),
#ifdef RW_BACKEND_X86_64
	       "x86_64",
#else
	       "generic",
#endif
	       nthreads, nphases, duration_ms);
	printf("  static call checksum -> %s; static keys: audit off "
	       "(%ld site(s)), fast_path on (%ld site(s))\n",
	       impl_name[IMPL_SUM], rw_static_key_sites(&audit),
	       rw_static_key_sites(&fast_path));

	for (int t = 0; t < nthreads; t++) {
		ws[t].id = t;
		ws[t].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1);
		ws[t].phases = calloc(nphases, sizeof(*ws[t].phases));
		if (!ws[t].phases) {
			perror("demo: calloc");
			return 1;
		}
		err = pthread_create(&ws[t].thread, NULL, worker_main, &ws[t]);
		if (err) {
			fprintf(stderr, "demo: pthread_create: %s\n",
				strerror(err));
			return 1;
		}
	}
	while (atomic_load(&ready) < nthreads)
		sleep_ms(1);

	rw_text_get_stats(&st0);
	for (int p = 0; p < nphases; p++) {
		const struct step *s = step_of(p);

		atomic_store_explicit(&cur_phase, p, memory_order_release);
		printf("\nphase %d/%d: %s\n", p + 1, nphases, s->title);
		for (int i = 0; i < 2 && s->chg[i].kind != CHG_NONE; i++) {
			if (apply(&s->chg[i]))
				return 1;
		}
		phase_end[p] = (int)nr_gens - 1;
		sleep_ms(duration_ms);
		waited = wait_for_progress(ws, nthreads, p);
		if (waited)
			printf("    (phase extended by %ld ms until every thread "
			       "had served a request: busy machine?)\n",
			       waited);
		print_phase_line(ws, nthreads, p);
	}
	atomic_store(&stop, true);
	for (int t = 0; t < nthreads; t++)
		pthread_join(ws[t].thread, NULL);
	rw_text_get_stats(&st1);

	/* What each thread saw in each phase. */
	printf("\n%6s %5s  %-22s %10s %10s %10s %10s %10s %10s\n", "thread",
	       "phase", "config (at phase end)", "requests", "sum_bytes",
	       "fnv1a", "crc32", "audited", "fast");
	for (int t = 0; t < nthreads; t++) {
		struct worker *w = &ws[t];

		for (int p = 0; p < nphases; p++) {
			struct phase_stats *ps = &w->phases[p];

			config_str(&hist[phase_end[p]], cfg, sizeof(cfg));
			printf("%6d %5d  %-22s %10" PRIu64 " %10" PRIu64
			       " %10" PRIu64 " %10" PRIu64 " %10" PRIu64
			       " %10" PRIu64 "%s\n",
			       t, p + 1, cfg, get(&ps->requests),
			       get(&ps->by_impl[IMPL_SUM]),
			       get(&ps->by_impl[IMPL_FNV]),
			       get(&ps->by_impl[IMPL_CRC]), get(&ps->audited),
			       get(&ps->fast),
			       get(&ps->requests) ? "" : "  <- no progress");
			total += get(&ps->requests);
			if (!get(&ps->requests))
				idle++;
		}
		errors += get(&w->errors);
		overlapped += get(&w->overlapped);
		saw_old += get(&w->saw_old);
		if (get(&w->errors)) {
			struct bad_request *b = &w->first_bad;

			printf("       first error of thread %d: %s (phase %d, "
			       "settled gen %u, started gen %u, ran %s, "
			       "audit %d, fast %d, checksum %08" PRIx32
			       ", expected %08" PRIx32 ")\n",
			       t, b->what, b->phase + 1, b->settled, b->started,
			       b->ran >= 0 ? impl_name[b->ran] : "none",
			       b->audit, b->fast, b->got, b->want);
		}
	}

	printf("\nsummary\n");
	printf("  requests served             %" PRIu64 "\n", total);
	printf("  errors                      %" PRIu64 "\n", errors);
	printf("  updates                     %u\n", nr_updates);
	printf("  sites patched               %" PRIu64 "\n",
	       st1.sites_patched - st0.sites_patched);
	printf("  membarrier syncs            %" PRIu64 "\n",
	       st1.syncs - st0.syncs);
	printf("  traps emulated              %" PRIu64
	       " (threads that hit a site mid-patch)\n",
	       st1.traps_emulated - st0.traps_emulated);
	printf("  requests during an update   %" PRIu64 " (%" PRIu64
	       " saw the old configuration, which is allowed)\n",
	       overlapped, saw_old);
	if (idle)
		printf("  thread-phases with no progress: %d\n", idle);

	for (int t = 0; t < nthreads; t++)
		free(ws[t].phases);
	free(ws);

	if (errors || idle) {
		printf("FAIL\n");
		return 1;
	}
	printf("PASS: every request ran the code its generation allowed\n");
	return 0;

bad_usage:
	usage(stderr, argv[0]);
	return 2;
}
