/* SPDX-License-Identifier: MIT */
/*
 * Tracepoints: sites, probes, priorities, errors, generic probes, lookup and
 * concurrent registration.
 */
#include <rewire/tracepoint.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

RW_DECLARE_TRACEPOINT(tp_two, (int, status), (const char *, path));
RW_DEFINE_TRACEPOINT(tp_two, (int, status), (const char *, path));

RW_DECLARE_TRACEPOINT(tp_none);
RW_DEFINE_TRACEPOINT(tp_none);

enum color { RED = -1, GREEN = 7 };
RW_DECLARE_TRACEPOINT(tp_eight, (char, c), (unsigned short, us), (long, l),
		      (bool, b), (double, d), (const char *, s), (void *, p),
		      (enum color, col));
RW_DEFINE_TRACEPOINT(tp_eight, (char, c), (unsigned short, us), (long, l),
		     (bool, b), (double, d), (const char *, s), (void *, p),
		     (enum color, col));

/* Eight integers: with the data pointer first, the last ones are passed on
 * the stack (x86-64: from the sixth on; aarch64: the eighth). */
RW_DECLARE_TRACEPOINT(tp_ints, (long, a1), (long, a2), (long, a3), (long, a4),
		      (long, a5), (long, a6), (long, a7), (long, a8));
RW_DEFINE_TRACEPOINT(tp_ints, (long, a1), (long, a2), (long, a3), (long, a4),
		     (long, a5), (long, a6), (long, a7), (long, a8));

/* Fire through non-inlined functions so that each is one site. */
__attribute__((noinline)) static void fire_two(int s, const char *p)
{
	rw_trace_tp_two(s, p);
}

__attribute__((noinline)) static void fire_none(void)
{
	rw_trace_tp_none();
}

/* Probes record (id, data, arguments) in call order. */
struct rec {
	int id;
	void *data;
	int status;
	const char *path;
};
static struct rec log_[64];
static int nlog;

static void log_reset(void)
{
	nlog = 0;
	memset(log_, 0, sizeof(log_));
}

#define PROBE(n)                                                              \
	static void probe##n(void *data, int status, const char *path)        \
	{                                                                     \
		if (nlog < 64)                                                \
			log_[nlog++] = (struct rec){ n, data, status, path }; \
	}
PROBE(1)
PROBE(2)
PROBE(3)
PROBE(4)

static int d1, d2, d3, d4;

static void test_disabled_is_nop(void)
{
	CHECK(!rw_tracepoint_enabled(tp_two));
	CHECK(!rw_trace_tp_two_enabled());
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(tp_two)), 0);
	/* fire_two()'s site and the two rw_trace_tp_two_enabled() here. */
	CHECK(rw_static_key_sites(rw_tracepoint_ptr(tp_two)->key) >=
	      RW_TEST_SITES(3));
#ifdef RW_BACKEND_X86_64
	/* The site in fire_two() is a 5-byte NOP (0f 1f 44 00 00). */
	static const uint8_t nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	const uint8_t *code = (const uint8_t *)(uintptr_t)&fire_two;
	bool found = false;

	for (int i = 0; i < 64 && !found; i++)
		found = memcmp(code + i, nop5, 5) == 0;
	CHECK(found);
#elif defined(RW_BACKEND_AARCH64)
	/* The site in fire_two() is a NOP (d503201f), 4-byte aligned. */
	const uint32_t *code = (const uint32_t *)(uintptr_t)&fire_two;
	bool found = false;

	for (int i = 0; i < 32 && !found; i++)
		found = code[i] == 0xd503201fu;
	CHECK(found);
#endif
	log_reset();
	fire_two(1, "x");
	CHECK_EQ(nlog, 0);
}

static void test_one_probe(void)
{
	log_reset();
	CHECK_OK(rw_tracepoint_probe_register(tp_two, probe1, &d1, 10));
	CHECK(rw_tracepoint_enabled(tp_two));
	CHECK(rw_trace_tp_two_enabled());
	fire_two(200, "/a");
	CHECK_EQ(nlog, 1);
	CHECK_EQ(log_[0].id, 1);
	CHECK(log_[0].data == &d1);
	CHECK_EQ(log_[0].status, 200);
	CHECK(strcmp(log_[0].path, "/a") == 0);
#if defined(RW_BACKEND_X86_64) || defined(RW_BACKEND_AARCH64)
	/* One probe: the static call targets a bound stub, not the probe
	 * (the probe could not know its data) and not the iterator. */
	void *t = rw__static_call_query(rw_tracepoint_ptr(tp_two)->call);
	CHECK(t != (void *)&probe1);
	CHECK(t != rw_tracepoint_ptr(tp_two)->iterator);
	CHECK(t != NULL);
#endif
	CHECK_OK(rw_tracepoint_probe_unregister(tp_two, probe1, &d1));
	CHECK(!rw_tracepoint_enabled(tp_two));
	CHECK(rw__static_call_query(rw_tracepoint_ptr(tp_two)->call) == NULL);
	log_reset();
	fire_two(1, "x");
	CHECK_EQ(nlog, 0);
}

static void test_priorities(void)
{
	log_reset();
	CHECK_OK(rw_tracepoint_probe_register(tp_two, probe1, &d1, 10));
	CHECK_OK(rw_tracepoint_probe_register(tp_two, probe2, &d2, 20));
	CHECK_OK(rw_tracepoint_probe_register(tp_two, probe3, &d3, 10));
	CHECK_OK(rw_tracepoint_probe_register(tp_two, probe4, &d4, 20));
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(tp_two)), 4);
	fire_two(5, "p");
	CHECK_EQ(nlog, 4);
	/* Higher first; equal priorities in registration order. */
	CHECK_EQ(log_[0].id, 2);
	CHECK_EQ(log_[1].id, 4);
	CHECK_EQ(log_[2].id, 1);
	CHECK_EQ(log_[3].id, 3);
	CHECK(log_[0].data == &d2 && log_[1].data == &d4);
	CHECK(log_[2].data == &d1 && log_[3].data == &d3);
	/* N -> 2 -> 1, and each probe keeps its data. */
	CHECK_OK(rw_tracepoint_probe_unregister(tp_two, probe2, &d2));
	CHECK_OK(rw_tracepoint_probe_unregister(tp_two, probe1, &d1));
	log_reset();
	fire_two(6, "q");
	CHECK_EQ(nlog, 2);
	CHECK(log_[0].id == 4 && log_[0].data == &d4);
	CHECK(log_[1].id == 3 && log_[1].data == &d3);
	CHECK_OK(rw_tracepoint_probe_unregister(tp_two, probe4, &d4));
	log_reset();
	fire_two(7, "r");
	CHECK_EQ(nlog, 1);
	CHECK(log_[0].id == 3 && log_[0].data == &d3);
	CHECK_OK(rw_tracepoint_probe_unregister(tp_two, probe3, &d3));
	CHECK(!rw_tracepoint_enabled(tp_two));
}

static void test_errors(void)
{
	struct rw_tracepoint *tp = rw_tracepoint_ptr(tp_two);

	CHECK_OK(rw_tracepoint_probe_register(tp_two, probe1, &d1, 10));
	/* Duplicate probe and data, whatever the priority. */
	CHECK_EQ(rw_tracepoint_probe_register(tp_two, probe1, &d1, 10),
		 -EEXIST);
	CHECK_EQ(rw_tracepoint_probe_register(tp_two, probe1, &d1, 99),
		 -EEXIST);
	/* Same probe, other data: a different registration. */
	CHECK_OK(rw_tracepoint_probe_register(tp_two, probe1, &d2, 10));
	CHECK_EQ(rw_tracepoint_probe_count(tp), 2);
	CHECK_EQ(rw_tracepoint_probe_unregister(tp_two, probe2, &d1), -ENOENT);
	CHECK_EQ(rw_tracepoint_probe_unregister(tp_two, probe1, &d3), -ENOENT);
	CHECK_EQ(rw_tracepoint_probe_register_raw(NULL, (void *)probe1, &d1,
						  10),
		 -EINVAL);
	CHECK_EQ(rw_tracepoint_probe_register_raw(tp, NULL, &d1, 10), -EINVAL);
	CHECK_EQ(rw_tracepoint_probe_unregister_raw(NULL, (void *)probe1, &d1),
		 -EINVAL);
	CHECK_EQ(rw_tracepoint_probe_count(tp), 2);
	CHECK_OK(rw_tracepoint_probe_unregister(tp_two, probe1, &d2));
	CHECK_OK(rw_tracepoint_probe_unregister(tp_two, probe1, &d1));
	CHECK_EQ(rw_tracepoint_probe_count(tp), 0);
	CHECK_EQ(rw_tracepoint_probe_unregister(tp_two, probe1, &d1), -ENOENT);
}

/* Zero arguments. */
static int none_calls;
static void probe_none(void *data)
{
	CHECK(data == &d3);
	none_calls++;
}

static void test_no_arguments(void)
{
	CHECK_EQ(rw_tracepoint_ptr(tp_none)->nargs, 0);
	fire_none();
	CHECK_EQ(none_calls, 0);
	CHECK_OK(rw_tracepoint_probe_register(tp_none, probe_none, &d3, 0));
	fire_none();
	CHECK_EQ(none_calls, 1);
	CHECK_OK(rw_tracepoint_probe_unregister(tp_none, probe_none, &d3));
	fire_none();
	CHECK_EQ(none_calls, 1);
}

/*
 * A typed probe of eight integers, alone (a bound stub: it must load the
 * data and leave every argument register and the stack as the site made
 * them) and then with a second probe (the iterator).
 */
static long ints_seen[2][9];
static int ints_calls[2];

#define INTS_PROBE(n)                                                          \
	static void ints_probe##n(void *data, long a1, long a2, long a3,       \
				  long a4, long a5, long a6, long a7, long a8) \
	{                                                                      \
		const long v[9] = {                                            \
			(long)(intptr_t)data, a1, a2, a3, a4, a5, a6, a7, a8   \
		};                                                             \
		memcpy(ints_seen[n], v, sizeof(v));                            \
		ints_calls[n]++;                                               \
	}
INTS_PROBE(0)
INTS_PROBE(1)

__attribute__((noinline)) static void fire_ints(long base)
{
	rw_trace_tp_ints(base + 1, base + 2, base + 3, base + 4, base + 5,
			 base + 6, base + 7, base + 8);
}

static void check_ints(int n, void *data, long base)
{
	CHECK(ints_seen[n][0] == (long)(intptr_t)data);
	for (int i = 1; i <= 8; i++)
		CHECK_EQ(ints_seen[n][i], base + i);
}

static void test_many_args(void)
{
	CHECK_OK(rw_tracepoint_probe_register(tp_ints, ints_probe0, &d1, 10));
	fire_ints(100);
	CHECK_EQ(ints_calls[0], 1);
	check_ints(0, &d1, 100);
	fire_ints(-1000);
	check_ints(0, &d1, -1000);
	CHECK_OK(rw_tracepoint_probe_register(tp_ints, ints_probe1, &d2, 5));
	fire_ints(7);
	CHECK_EQ(ints_calls[0], 3);
	CHECK_EQ(ints_calls[1], 1);
	check_ints(0, &d1, 7);
	check_ints(1, &d2, 7);
	CHECK_OK(rw_tracepoint_probe_unregister(tp_ints, ints_probe0, &d1));
	/* Back to one probe: a stub again, now with the other data. */
	fire_ints(1L << 40);
	CHECK_EQ(ints_calls[0], 3);
	check_ints(1, &d2, 1L << 40);
	CHECK_OK(rw_tracepoint_probe_unregister(tp_ints, ints_probe1, &d2));
	fire_ints(0);
	CHECK_EQ(ints_calls[1], 2);
}

/* Generic probes see names, types and values, and print events. */
static char last_event[256];
static int generic_calls;

static void generic_probe(void *data, const struct rw_tracepoint *tp,
			  const union rw_tp_value *args)
{
	CHECK(data == &d4);
	generic_calls++;
	rw_tracepoint_format(tp, args, last_event, sizeof(last_event));
}

static void test_generic(void)
{
	struct rw_tracepoint *tp = rw_tracepoint_ptr(tp_eight);
	static const char *const names[] = { "c", "us", "l", "b",
					     "d", "s",	"p", "col" };
	/* char: signed on x86-64, unsigned on aarch64 (the ABIs say so). */
	static const enum rw_tp_kind kinds[] = {
		(char)-1 < 0 ? RW_TP_SIGNED : RW_TP_UNSIGNED,
		RW_TP_UNSIGNED,
		RW_TP_SIGNED,
		RW_TP_BOOL,
		RW_TP_FLOAT,
		RW_TP_STRING,
		RW_TP_POINTER,
		RW_TP_UNSIGNED,
	};

	CHECK_EQ(tp->nargs, 8);
	CHECK(strcmp(tp->name, "tp_eight") == 0);
	for (unsigned i = 0; i < 8; i++) {
		CHECK(strcmp(tp->fields[i].name, names[i]) == 0);
		if (i == 7) /* enum: int or unsigned int, compiler's choice */
			CHECK(tp->fields[i].kind == RW_TP_SIGNED ||
			      tp->fields[i].kind == RW_TP_UNSIGNED);
		else
			CHECK_EQ(tp->fields[i].kind, kinds[i]);
	}
	CHECK(strcmp(tp->fields[5].type, "const char *") == 0);
	CHECK_OK(rw_tracepoint_probe_register_generic(tp, generic_probe, &d4,
						      5));
	CHECK_EQ(rw_tracepoint_probe_register_generic(tp, generic_probe, &d4,
						      5),
		 -EEXIST);
	rw_trace_tp_eight('A', 65535, -12, true, 2.5, "a\"b\n", NULL, GREEN);
	CHECK_EQ(generic_calls, 1);
	CHECK(strcmp(last_event, "tp_eight: c=65 us=65535 l=-12 b=true d=2.5 "
				 "s=\"a\\\"b\\n\" p=(nil) col=7") == 0);
	rw_trace_tp_eight('B', 1, 1, false, -0.5, NULL, &d1, RED);
	CHECK(strstr(last_event, " b=false d=-0.5 s=(null) p=0x") != NULL);

	/* Truncation: snprintf's contract. */
	char small[10];
	union rw_tp_value v[2] = { { .s = 1 }, { .str = "long text" } };
	int n = rw_tracepoint_format(rw_tracepoint_ptr(tp_two), v, small,
				     sizeof(small));

	CHECK_EQ(n, (int)strlen("tp_two: status=1 path=\"long text\""));
	CHECK(strcmp(small, "tp_two: s") == 0);
	CHECK_EQ(rw_tracepoint_format(NULL, v, small, sizeof(small)), -EINVAL);

	CHECK_OK(
		rw_tracepoint_probe_unregister_generic(tp, generic_probe, &d4));
	CHECK_EQ(rw_tracepoint_probe_unregister_generic(tp, generic_probe, &d4),
		 -ENOENT);
	rw_trace_tp_eight('C', 1, 1, false, 0, "", NULL, RED);
	CHECK_EQ(generic_calls, 2);
}

static int count_tp(struct rw_tracepoint *tp, void *arg)
{
	(void)tp;
	++*(int *)arg;
	return 0;
}

static void test_lookup(void)
{
	int n = 0;

	CHECK(rw_tracepoint_find("tp_two") == rw_tracepoint_ptr(tp_two));
	CHECK(rw_tracepoint_find("tp_eight") == rw_tracepoint_ptr(tp_eight));
	CHECK(rw_tracepoint_find("no_such_tracepoint") == NULL);
	CHECK(rw_tracepoint_find(NULL) == NULL);
	CHECK_OK(rw_tracepoint_for_each(count_tp, &n));
	CHECK_EQ(n, 4);
	CHECK_EQ(rw_tracepoint_for_each(NULL, NULL), -EINVAL);
}

/* From inside a probe: registering works, waiting for readers does not. */
static int inner_result = 1, sync_result = 1;
static void probe_inner(void *data, int status, const char *path)
{
	(void)data;
	(void)path;
	if (status == 1) {
		sync_result = rw_tracepoint_synchronize_unregister();
		inner_result =
			rw_tracepoint_probe_register(tp_two, probe2, &d2, 0);
	}
}

static void test_from_probe(void)
{
	log_reset();
	CHECK_OK(rw_tracepoint_probe_register(tp_two, probe_inner, NULL, 50));
	fire_two(1, "in");
	CHECK_EQ(sync_result, -EDEADLK);
	CHECK_EQ(inner_result, 0);
	fire_two(2, "in");
	CHECK_EQ(nlog, 1);
	CHECK(log_[0].id == 2 && log_[0].data == &d2);
	CHECK_OK(rw_tracepoint_probe_unregister(tp_two, probe_inner, NULL));
	CHECK_OK(rw_tracepoint_probe_unregister(tp_two, probe2, &d2));
	CHECK_OK(rw_tracepoint_synchronize_unregister());
}

/* Many threads register and unregister their own probes while others fire;
 * every registration succeeds, and every call gets its own data. */
#define REG_THREADS 6
static atomic_int stop_firing;
static atomic_long bad_data, fired;
static int slot_data[REG_THREADS][4];

static void probe_check(void *data, int status, const char *path)
{
	(void)path;
	/* status carries nothing; data must point into slot_data, and the
	 * slot must hold its own address tag. */
	int *d = data;

	(void)status;
	if (*d != (int)((d - &slot_data[0][0]) + 1))
		atomic_fetch_add(&bad_data, 1);
	atomic_fetch_add(&fired, 1);
}

static void *firer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_firing))
		fire_two(0, "f");
	return NULL;
}

static void *registrar(void *arg)
{
	int t = (int)(intptr_t)arg;
	long rounds = rw_test_scale(300, 5000);

	for (long r = 0; r < rounds; r++) {
		int k = (int)(r % 4);

		CHECK_OK(rw_tracepoint_probe_register(
			tp_two, probe_check, &slot_data[t][k], (int)(r % 3)));
		if (r % 2)
			CHECK_OK(rw_tracepoint_probe_unregister(
				tp_two, probe_check, &slot_data[t][k]));
		else
			CHECK_EQ(rw_tracepoint_probe_register(
					 tp_two, probe_check, &slot_data[t][k],
					 0),
				 -EEXIST);
		if (r % 2 == 0)
			CHECK_OK(rw_tracepoint_probe_unregister(
				tp_two, probe_check, &slot_data[t][k]));
	}
	return NULL;
}

static void test_concurrent(void)
{
	pthread_t reg[REG_THREADS], fire[2];

	for (int t = 0; t < REG_THREADS; t++)
		for (int k = 0; k < 4; k++)
			slot_data[t][k] = t * 4 + k + 1;
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&fire[i], NULL, firer, NULL) == 0);
	for (int t = 0; t < REG_THREADS; t++)
		CHECK(pthread_create(&reg[t], NULL, registrar,
				     (void *)(intptr_t)t) == 0);
	for (int t = 0; t < REG_THREADS; t++)
		CHECK_EQ(pthread_join(reg[t], NULL), 0);
	atomic_store(&stop_firing, 1);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_join(fire[i], NULL), 0);
	CHECK_EQ(atomic_load(&bad_data), 0);
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(tp_two)), 0);
	CHECK(!rw_tracepoint_enabled(tp_two));
	printf("concurrent: %ld probe calls checked\n", atomic_load(&fired));
	CHECK_OK(rw_rcu_barrier());
}

/* A tracepoint in a dlopen()ed object: found by name, probed, gone after
 * dlclose(). */
static int dso_sum;
static void dso_probe(void *data, int value, const char *where)
{
	CHECK(data == &d2);
	CHECK(strcmp(where, "dso") == 0);
	dso_sum += value;
}

static void test_dso(void)
{
	char path[512];
	void *h;
	void (*fire)(int);
	struct rw_tracepoint *tp;

	snprintf(path, sizeof(path), "%s/dso_tp.so", RW_TEST_DSO_DIR);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CHECK(h);
	fire = (void (*)(int))dlsym(h, "dso_tp_fire");
	CHECK(fire);
	tp = rw_tracepoint_find("dso_event");
	CHECK(tp);
	CHECK_EQ(tp->nargs, 2);
	fire(1);
	CHECK_EQ(dso_sum, 0);
	CHECK_OK(rw_tracepoint_probe_register_raw(tp, (void *)dso_probe, &d2,
						  10));
	fire(2);
	fire(3);
	CHECK_EQ(dso_sum, 5);
	CHECK_OK(rw_tracepoint_probe_register_generic(tp, generic_probe, &d4,
						      0));
	fire(4);
	CHECK_EQ(dso_sum, 9);
	CHECK(strcmp(last_event, "dso_event: value=4 where=\"dso\"") == 0);
	CHECK_OK(
		rw_tracepoint_probe_unregister_generic(tp, generic_probe, &d4));
	CHECK_OK(
		rw_tracepoint_probe_unregister_raw(tp, (void *)dso_probe, &d2));
	fire(5);
	CHECK_EQ(dso_sum, 9);
	CHECK_OK(rw_tracepoint_synchronize_unregister());
	CHECK_OK(rw_rcu_barrier());
	CHECK_EQ(dlclose(h), 0);
	CHECK(rw_tracepoint_find("dso_event") == NULL);
}

int main(void)
{
	test_disabled_is_nop();
	test_one_probe();
	test_priorities();
	test_errors();
	test_no_arguments();
	test_many_args();
	test_generic();
	test_lookup();
	test_dso();
	test_from_probe();
	test_concurrent();
	puts("PASS");
	return 0;
}
