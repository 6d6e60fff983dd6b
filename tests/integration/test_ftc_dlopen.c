/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 13, point 4): dlopen and dlclose of a library with
 * patchable functions while tracing. ftc_dl.so (ftc/dl.c, built as Debian
 * builds a package, with patchable entries: ftc/ftc.cmake) has ftc_dl_fn
 * (5x) and ftc_dl_caller (5x + 1, calls ftc_dl_fn).
 *
 *   1. dlopen while tracing. A graph set L traces ftc_leaf of
 *      libftc_lib.so. "ftc_dl_*" matches nothing yet: attaching it is
 *      -ENOENT and changes nothing. dlopen(ftc_dl.so) while L is
 *      attached: L still traces ftc_leaf (exactly), its set did not grow,
 *      the new library's entries hold their NOPs. Attaching "ftc_dl_*"
 *      now traces both functions of it (exact entries and returns, their
 *      object ftc_dl.so); "ftc_dl_fn@ftc_dl.so" selects one,
 *      "ftc_dl_fn@libnothing*" none (-ENOENT, the message names the
 *      object pattern).
 *   2. dlclose while tracing. The program's dlclose() drops its only
 *      reference while the set is attached: the library stays mapped
 *      (/proc/self/maps and dl_iterate_phdr), its functions keep running
 *      through the saved pointers and the probe keeps counting them.
 *      Detach: the library is unloaded (gone from both, RTLD_NOLOAD finds
 *      nothing). dlopen again: a fresh mapping whose entries hold their
 *      NOPs, traceable again; detach then dlclose unloads it at once.
 * L counts exactly all along and is detached last: ftc_leaf's NOPs.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("function tracing needs a backend that patches code (x86_64, "
	     "aarch64)");
}
#else

#include "ftc.h"
#include "ftc_test.h"

#include <link.h>

#define DL FTC_DIR "/ftc_dl.so"
#define CALLS 100

static struct ftc_set L;

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *base = strrchr(info->dlpi_name, '/');

	(void)size;
	if (!strcmp(base ? base + 1 : info->dlpi_name, "ftc_dl.so"))
		*(bool *)arg = true;
	return 0;
}

/* ftc_dl.so is loaded: dl_iterate_phdr lists it and it is mapped; both
 * must agree. */
static bool dl_loaded(void)
{
	bool listed = false, mapped = lp_file_mapped("ftc_dl.so");

	dl_iterate_phdr(phdr_cb, &listed);
	if (listed != mapped) {
		fprintf(stderr,
			"ftc_dl.so is %s by dl_iterate_phdr but %s in "
			"/proc/self/maps\n",
			listed ? "listed" : "not listed",
			mapped ? "mapped" : "not mapped");
		exit(1);
	}
	return listed;
}

static bool dl_noload(void)
{
	void *h = dlopen(DL, RTLD_NOW | RTLD_NOLOAD);

	if (h)
		dlclose(h);
	return h != NULL;
}

/* ftc_leaf is still traced by L, exactly. */
static void leaf_calls(const char *what)
{
	long e = ftc_entries(&L, 0), r = ftc_returns(&L, 0);

	for (int i = 0; i < CALLS; i++)
		CHECK_EQ(ftc_leaf(i), 3 * i + 1);
	if (ftc_entries(&L, 0) - e != CALLS ||
	    ftc_returns(&L, 0) - r != FTC_RET(CALLS)) {
		fprintf(stderr,
			"%s: L counted %ld entries, %ld returns of "
			"%d calls of ftc_leaf\n",
			what, ftc_entries(&L, 0) - e, ftc_returns(&L, 0) - r,
			CALLS);
		exit(1);
	}
}

struct dl_fns {
	void *h;
	int (*fn)(int);
	int (*caller)(int);
};

static void dl_open(struct dl_fns *d)
{
	CHECK(!dl_loaded());
	d->h = dlopen(DL, RTLD_NOW | RTLD_LOCAL);
	if (!d->h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		exit(1);
	}
	d->fn = (int (*)(int))dlsym(d->h, "ftc_dl_fn");
	d->caller = (int (*)(int))dlsym(d->h, "ftc_dl_caller");
	CHECK(d->fn && d->caller);
	CHECK(dl_loaded());
	CHECK(ftc_entry_is_nops((uintptr_t)d->fn));
	CHECK(ftc_entry_is_nops((uintptr_t)d->caller));
}

/* @s (fn, caller) counted each of CALLS calls of ftc_dl_caller. */
static void dl_calls(const struct dl_fns *d, struct ftc_set *s,
		     const char *what)
{
	long e0 = ftc_entries(s, 0), e1 = ftc_entries(s, 1);
	long r0 = ftc_returns(s, 0), r1 = ftc_returns(s, 1);

	for (int i = 0; i < CALLS; i++)
		CHECK_EQ(d->caller(i), 5 * i + 1);
	if (ftc_entries(s, 0) - e0 != CALLS ||
	    ftc_entries(s, 1) - e1 != CALLS ||
	    ftc_returns(s, 0) - r0 != FTC_RET(CALLS) ||
	    ftc_returns(s, 1) - r1 != FTC_RET(CALLS)) {
		fprintf(stderr,
			"%s: %d calls: ftc_dl_fn %ld/%ld, ftc_dl_caller "
			"%ld/%ld entries/returns\n",
			what, CALLS, ftc_entries(s, 0) - e0,
			ftc_returns(s, 0) - r0, ftc_entries(s, 1) - e1,
			ftc_returns(s, 1) - r1);
		exit(1);
	}
	ftc_check_clean(s, what);
	printf("  %s: ok\n", what);
}

/* A set counting the two functions of ftc_dl.so as loaded now. */
static void dl_set(struct ftc_set *s, const struct dl_fns *d)
{
	memset(s, 0, sizeof(*s));
	s->graph = FTC_GRAPH;
	s->n = 2;
	s->name[0] = "ftc_dl_fn";
	s->fn[0] = (uintptr_t)d->fn;
	s->name[1] = "ftc_dl_caller";
	s->fn[1] = (uintptr_t)d->caller;
}

/* Attaching @pat is -ENOENT, with a message that holds @says. */
static void expect_enoent(const char *pat, const char *says)
{
	struct ftc_set s;
	const char *pats[] = { pat };
	int err;

	memset(&s, 0, sizeof(s));
	err = ftc_try_attach(&s, pats, 1);
	printf("  attach %s: %s: %s\n", pat, rw_strerror(err),
	       rw_ftrace_last_error());
	CHECK_EQ(err, -ENOENT);
	CHECK(s.t == NULL);
	lp_has_all(rw_ftrace_last_error(), says);
}

int main(void)
{
	static const char *const pat_leaf[] = { "ftc_leaf" };
	static const char *const pat_dl[] = { "ftc_dl_*" };
	static const char *const pat_one[] = { "ftc_dl_fn@ftc_dl.so" };
	struct ftc_set D, one;
	struct dl_fns d;
	uintptr_t first;

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("test_ftc_dlopen:\n");
	ftc_set_init(&L, true, "ftc_leaf", NULL);
	ftc_attach(&L, pat_leaf, 1);
	leaf_calls("L attached");

	/* 1. dlopen while tracing. */
	expect_enoent("ftc_dl_*", "ftc_dl_*");
	dl_open(&d);
	first = (uintptr_t)d.fn;
	CHECK_EQ(rw_ftrace_nfuncs(L.t), 1);
	leaf_calls("1. after dlopen");
	for (int i = 0; i < CALLS; i++)
		CHECK_EQ(d.caller(i), 5 * i + 1);
	CHECK(ftc_entry_is_nops((uintptr_t)d.fn));

	dl_set(&D, &d);
	ftc_attach(&D, pat_dl, 1);
	ftc_check_funcs(&D);
	CHECK(!ftc_entry_is_nops((uintptr_t)d.fn));
	for (size_t i = 0; i < 2; i++)
		CHECK(strstr(rw_ftrace_func_at(D.t, i)->object, "ftc_dl.so"));
	dl_calls(&d, &D, "1. ftc_dl_* traced after dlopen");
	CHECK_EQ(d.fn(3), 15);

	dl_set(&one, &d);
	one.n = 1;
	ftc_attach(&one, pat_one, 1);
	CHECK_EQ(rw_ftrace_nfuncs(one.t), 1);
	CHECK_EQ(rw_ftrace_func_at(one.t, 0)->addr, (uintptr_t)d.fn);
	ftc_detach(&one);
	expect_enoent("ftc_dl_fn@libnothing*", "libnothing*");

	/* 2. dlclose while tracing: the set keeps the library. */
	CHECK_OK(dlclose(d.h));
	CHECK(dl_loaded());
	dl_calls(&d, &D, "2. after the program's dlclose");
	leaf_calls("2. after dlclose");
	ftc_detach(&D);
	if (dl_loaded() || dl_noload()) {
		fprintf(stderr, "ftc_dl.so still loaded after the detach\n");
		return 1;
	}
	printf("  2. unloaded by the detach\n");
	leaf_calls("2. after the unload");

	dl_open(&d);
	printf("  2. loaded again at %#lx (first time %#lx)\n",
	       (unsigned long)d.fn, (unsigned long)first);
	dl_set(&D, &d);
	ftc_attach(&D, pat_dl, 1);
	dl_calls(&d, &D, "2. traced again");
	ftc_detach(&D);
	CHECK(ftc_entry_is_nops((uintptr_t)d.fn));
	CHECK(ftc_entry_is_nops((uintptr_t)d.caller));
	CHECK_OK(dlclose(d.h));
	CHECK(!dl_loaded());

	leaf_calls("the end");
	ftc_detach(&L);
	CHECK(ftc_entry_is_nops((uintptr_t)ftc_leaf));
	ftc_check_clean(&L, "L");
	printf("test_ftc_dlopen: ok\n");
	return 0;
}

#endif /* RW_BACKEND_X86_64 */
