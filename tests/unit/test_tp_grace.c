/* SPDX-License-Identifier: MIT */
/*
 * Old probe arrays and old bound stubs of a tracepoint are freed only
 * after an RCU grace period (src/tracepoint.c, step 7). Deterministic: a
 * reader is parked inside a probe, so no grace period can end, while the
 * probes change under it.
 *
 * What it proves, and the oracle of each part:
 * - Iterator path (two probes): the reader runs the first probe of the
 *   array it loaded and waits there. Meanwhile probes are removed and
 *   added (2 -> 1 -> 2 -> 3 -> 2 probes: four arrays retired, stubs made
 *   and retired). The test's own free() records every pointer freed while
 *   the reader is parked (and keeps that memory until it leaves): the
 *   reader's array and every array and stub retired meanwhile must not be
 *   among them. The reader, released, must run the second probe of its
 *   array exactly once. After rw_rcu_barrier() they must all have been
 *   freed (so the oracle sees frees at all).
 * - Bound-stub path (one probe): the reader entered through the stub of
 *   (probe, data) and waits in the probe. Meanwhile the probe is removed
 *   and another single probe added, several times: each needs a new stub.
 *   The parked reader's stub keeps its exact bytes (a stub slot freed at
 *   once is the first one reused) and its descriptor is not freed.
 * - Far probe: a probe out of a direct jump's reach from the stub is
 *   reached through a register, with its data (the stub's bytes are
 *   decoded; the probe stores its argument where the data points).
 * Under ASan the test's free() is not used: the sanitizer's own quarantine
 * and use-after-free checks take its place (the reader reads the array
 * after its probe returns).
 */
#include <rewire/rewire.h>

#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <stdatomic.h>
#include <stdint.h>

RW_DECLARE_TRACEPOINT(tg_event, (int, x));
RW_DEFINE_TRACEPOINT(tg_event, (int, x));

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define TG_WATCH_FREE 1
#endif

/* --- free() that remembers what is freed while a reader is parked --------- */

#define MAX_FREED 4096
static _Atomic int watching;
static void *_Atomic freed[MAX_FREED];
static _Atomic int nfreed;

#ifdef TG_WATCH_FREE
extern void __libc_free(void *p);

/* librewire's free() calls resolve here (the executable comes first). */
void free(void *p)
{
	if (p && atomic_load(&watching)) {
		int i = atomic_fetch_add(&nfreed, 1);

		if (i < MAX_FREED) {
			/* Keep it: if it was freed too early, the parked
			 * reader may still read it. */
			atomic_store(&freed[i], p);
			return;
		}
	}
	__libc_free(p);
}
#endif

static void watch_start(void)
{
	atomic_store(&nfreed, 0);
	atomic_store(&watching, 1);
}

static int watch_stop(void)
{
	int n = atomic_load(&nfreed);

	atomic_store(&watching, 0);
	return n < MAX_FREED ? n : MAX_FREED;
}

static bool was_freed(const void *p, int n)
{
	for (int i = 0; i < n; i++)
		if (atomic_load(&freed[i]) == p)
			return true;
	return false;
}

static void release_watched(int n)
{
#ifdef TG_WATCH_FREE
	for (int i = 0; i < n; i++)
		__libc_free(atomic_load(&freed[i]));
#else
	(void)n;
#endif
}

/* --- Probes and the reader -------------------------------------------------- */

static _Atomic int parked, release;
static _Atomic long calls_park, calls_second, calls_other;

static void park_probe(void *data, int x)
{
	(void)data;
	(void)x;
	atomic_fetch_add(&calls_park, 1);
	atomic_store(&parked, 1);
	while (!atomic_load(&release))
		sched_yield();
}

static void second_probe(void *data, int x)
{
	(void)data;
	(void)x;
	atomic_fetch_add(&calls_second, 1);
}

static void other_probe(void *data, int x)
{
	(void)data;
	(void)x;
	atomic_fetch_add(&calls_other, 1);
}

static void *reader(void *arg)
{
	(void)arg;
	rw_trace_tg_event(1);
	return NULL;
}

/* Start the reader and wait until it is parked in park_probe. */
static pthread_t park_reader(void)
{
	pthread_t t;
	uint64_t t0 = rw_test_now_ns();

	atomic_store(&parked, 0);
	atomic_store(&release, 0);
	CHECK_EQ(pthread_create(&t, NULL, reader, NULL), 0);
	while (!atomic_load(&parked)) {
		CHECK(rw_test_now_ns() - t0 < 10000000000ull);
		sched_yield();
	}
	return t;
}

static struct rw_tracepoint *tp(void)
{
	return rw_tracepoint_ptr(tg_event);
}

#ifdef RW_BACKEND_X86_64
/* The bound stub the static call jumps to now (jmp rel32 in the slot). */
static const uint8_t *stub_code(void)
{
	const uint8_t *tr = tp()->call->tramp;
	int32_t rel;

	CHECK_EQ(tr[0], 0xe9);
	memcpy(&rel, tr + 1, 4);
	return tr + 5 + rel;
}

/* The stub at @code loads @data and goes to @func: "movabs $data, %rdi",
 * then "jmp rel32" or "jmp *0(%rip)" with the address after it. */
static void check_stub(const uint8_t *code, const void *data, const void *func)
{
	CHECK(code[0] == 0x48 && code[1] == 0xbf);
	CHECK(!memcmp(code + 2, &data, 8));
	if (code[10] == 0xe9) {
		int32_t rel;

		memcpy(&rel, code + 11, 4);
		CHECK(code + 15 + rel == (const uint8_t *)func);
	} else {
		CHECK(code[10] == 0xff && code[11] == 0x25);
		CHECK(!memcmp(code + 16, &func, 8));
	}
}

/* Whether the stub at @code goes to its probe through a register. */
static bool stub_is_far(const uint8_t *code)
{
	return code[10] != 0xe9;
}

/* A probe of tg_event in machine code: *(int *)data = x; return. */
static const uint8_t far_probe_code[] = { 0x89, 0x37, 0xc3 };
#elif defined(RW_BACKEND_AARCH64)
static uint32_t insn_at(const uint8_t *p)
{
	uint32_t i;

	memcpy(&i, p, 4);
	return i;
}

/* The target of the B at @pc. */
static const uint8_t *b_target(const uint8_t *pc)
{
	uint32_t i = insn_at(pc);

	CHECK_EQ(i & 0xfc000000u, 0x14000000u);
	return pc + (intptr_t)((int32_t)(i << 6) >> 6) * 4;
}

/* The bound stub the static call jumps to now: the slot, after the
 * trampoline's BTI, is a B to it, or to the static call's far stub
 * "LDR X16, #8; BR X16; .quad target". */
static const uint8_t *stub_code(void)
{
	const uint8_t *s = b_target((const uint8_t *)tp()->call->tramp + 4);

	if (insn_at(s) == 0x58000050u && insn_at(s + 4) == 0xd61f0200u) {
		uintptr_t f;

		memcpy(&f, s + 8, 8);
		s = (const uint8_t *)f;
	}
	return s;
}

/* The stub at @code loads @data and goes to @func: "LDR X0, #16", then
 * "B func" or "LDR X16, #20; BR X16"; data at +16, func at +24. */
static void check_stub(const uint8_t *code, const void *data, const void *func)
{
	CHECK_EQ(insn_at(code), 0x58000080u);
	CHECK(!memcmp(code + 16, &data, 8));
	CHECK(!memcmp(code + 24, &func, 8));
	if ((insn_at(code + 4) & 0xfc000000u) == 0x14000000u) {
		CHECK(b_target(code + 4) == (const uint8_t *)func);
	} else {
		CHECK_EQ(insn_at(code + 4), 0x580000b0u);
		CHECK_EQ(insn_at(code + 8), 0xd61f0200u);
	}
}

static bool stub_is_far(const uint8_t *code)
{
	return (insn_at(code + 4) & 0xfc000000u) != 0x14000000u;
}

/* A probe of tg_event in machine code: STR W1, [X0]; RET. */
static const uint8_t far_probe_code[] = { 0x01, 0x00, 0x00, 0xb9,
					  0xc0, 0x03, 0x5f, 0xd6 };
#endif

#define MAX_RETIRED 16

static void test_iterator(void)
{
	const void *retired[MAX_RETIRED];
	const struct rw__tp_funcs *mine;
	int nret = 0, n, d1, d2, d3;
	pthread_t t;

	CHECK_OK(rw_tracepoint_probe_register(tg_event, park_probe, &d1, 20));
	CHECK_OK(rw_tracepoint_probe_register(tg_event, second_probe, &d1, 10));
	mine = tp()->funcs;
	CHECK_EQ(mine->count, 2);
	t = park_reader();

	watch_start();
	/* 2 -> 1 (a stub), 1 -> 2, 2 -> 3, 3 -> 2 probes. */
	retired[nret++] = tp()->funcs;
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, second_probe, &d1));
	retired[nret++] = tp()->funcs;
	retired[nret++] = tp()->stub;
	CHECK_OK(rw_tracepoint_probe_register(tg_event, other_probe, &d2, 10));
	retired[nret++] = tp()->funcs;
	CHECK_OK(rw_tracepoint_probe_register(tg_event, other_probe, &d3, 10));
	retired[nret++] = tp()->funcs;
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, other_probe, &d3));
	/* Still parked: nothing retired may be gone. */
	CHECK(atomic_load(&parked));
	CHECK_EQ(mine->count, 2);
	CHECK(mine->probes[1].func == (void *)second_probe);
	n = watch_stop();
	for (int i = 0; i < nret; i++) {
		if (was_freed(retired[i], n)) {
			fprintf(stderr,
				"iterator: %s %d (%p) freed while a reader "
				"is inside a probe\n",
				i == 2 ? "stub" : "array", i, retired[i]);
			exit(1);
		}
	}
	release_watched(n);

	/* The reader finishes its own array: the second probe, once. Frees
	 * are watched from before it leaves: liburcu's callback thread may
	 * free as soon as it does, before the barrier. */
	watch_start();
	atomic_store(&release, 1);
	pthread_join(t, NULL);
	CHECK_EQ(atomic_load(&calls_second), 1);
	CHECK_EQ(atomic_load(&calls_other), 0);

	/* After the grace period every retired thing was freed. */
	CHECK_OK(rw_rcu_barrier());
	n = watch_stop();
#ifdef TG_WATCH_FREE
	for (int i = 0; i < nret; i++)
		if (!was_freed(retired[i], n)) {
			fprintf(stderr, "iterator: %d (%p) never freed\n", i,
				retired[i]);
			exit(1);
		}
#endif
	release_watched(n);
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, park_probe, &d1));
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, other_probe, &d2));
	CHECK_EQ(rw_tracepoint_probe_count(tp()), 0);
	printf("iterator: %d arrays and stubs retired under a parked reader, "
	       "freed after it\n",
	       nret);
}

#if defined(RW_BACKEND_PATCHING)
static void test_stub(void)
{
	uint8_t mine_bytes[32];
	const uint8_t *mine_code, *codes[8];
	const void *mine_desc, *descs[8];
	int n, d1, dx[8];
	pthread_t t;

	CHECK_OK(rw_rcu_barrier());
	CHECK_OK(rw_tracepoint_probe_register(tg_event, park_probe, &d1, 10));
	mine_code = stub_code();
	mine_desc = tp()->stub;
	CHECK(mine_desc != NULL);
	memcpy(mine_bytes, mine_code, sizeof(mine_bytes));
	check_stub(mine_code, &d1, (const void *)(uintptr_t)park_probe);
	t = park_reader();

	watch_start();
	/* 1 -> 0 -> 1 with another probe, several times: a new stub each. */
	CHECK_OK(rw_tracepoint_probe_unregister(tg_event, park_probe, &d1));
	for (int i = 0; i < 8; i++) {
		CHECK_OK(rw_tracepoint_probe_register(tg_event, other_probe,
						      &dx[i], 10));
		codes[i] = stub_code();
		descs[i] = tp()->stub;
		CHECK_OK(rw_tracepoint_probe_unregister(tg_event, other_probe,
							&dx[i]));
	}
	CHECK(atomic_load(&parked));
	n = watch_stop();
	for (int i = 0; i < 8; i++)
		if (codes[i] == mine_code || was_freed(descs[i], n)) {
			fprintf(stderr,
				"stub: retired stub reused or freed while a "
				"reader is inside its probe\n");
			exit(1);
		}
	if (memcmp(mine_bytes, mine_code, sizeof(mine_bytes)) ||
	    was_freed(mine_desc, n)) {
		fprintf(stderr,
			"stub: the parked reader's stub %p was "
			"rewritten or freed before a grace period\n",
			(const void *)mine_code);
		exit(1);
	}
	release_watched(n);
	/* Watching before the reader leaves: liburcu's callback thread may
	 * free the stub as soon as it does, before the barrier. */
	watch_start();
	atomic_store(&release, 1);
	pthread_join(t, NULL);
	CHECK_EQ(atomic_load(&calls_other), 0);
	CHECK_OK(rw_rcu_barrier());
	n = watch_stop();
#ifdef TG_WATCH_FREE
	CHECK(was_freed(mine_desc, n));
#endif
	release_watched(n);
	printf("stub: the parked reader's stub kept its bytes; 8 new stubs "
	       "elsewhere\n");
}

/*
 * A probe beyond the reach of a direct jump from the stub (x86-64: rel32,
 * +-2 GiB; aarch64: B, +-128 MiB): a copy of a tiny probe in a page mapped
 * 8 GiB away from the trampoline. The stub must go there through a
 * register, with the data loaded, and the probe must store the argument
 * where the data points.
 */
static void test_far(void)
{
	uintptr_t tramp = (uintptr_t)tp()->call->tramp;
	const uintptr_t dist = 8ull << 30;
	const uint8_t *code;
	void *page = MAP_FAILED;
	int got = 0;

	/* Above the trampoline if there is room in the address space, else
	 * below. */
	for (int i = 0; i < 64 && page == MAP_FAILED; i++) {
		uintptr_t at = (tramp + dist + (uintptr_t)i * (1u << 24)) &
			       ~(uintptr_t)0xfff;

		if (tramp > (1ull << 46))
			at = (tramp - dist - (uintptr_t)i * (1u << 24)) &
			     ~(uintptr_t)0xfff;
		page = mmap((void *)at, 4096, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			    -1, 0);
		/* A kernel that ignores the flag takes the address as a
		 * hint. */
		if (page != MAP_FAILED && page != (void *)at) {
			munmap(page, 4096);
			page = MAP_FAILED;
		}
	}
	CHECK(page != MAP_FAILED);
	memcpy(page, far_probe_code, sizeof(far_probe_code));
	__builtin___clear_cache((char *)page,
				(char *)page + sizeof(far_probe_code));
	CHECK_EQ(mprotect(page, 4096, PROT_READ | PROT_EXEC), 0);

	CHECK_OK(rw_tracepoint_probe_register_raw(tp(), page, &got, 10));
	code = stub_code();
	check_stub(code, &got, page);
	CHECK(stub_is_far(code));
	rw_trace_tg_event(4242);
	CHECK_EQ(got, 4242);
	rw_trace_tg_event(-7);
	CHECK_EQ(got, -7);
	CHECK_OK(rw_tracepoint_probe_unregister_raw(tp(), page, &got));
	CHECK_OK(rw_tracepoint_synchronize_unregister());
	CHECK_OK(rw_rcu_barrier());
	munmap(page, 4096);
	printf("far: a probe 8 GiB away, reached through a register\n");
}
#endif /* RW_BACKEND_PATCHING */

int main(void)
{
#if !defined(RW_BACKEND_PATCHING)
	SKIP("bound stubs need code patching");
#endif
	test_iterator();
#if defined(RW_BACKEND_PATCHING)
	test_stub();
	test_far();
#endif
	printf("tracepoint grace periods: ok\n");
	return 0;
}
