/* SPDX-License-Identifier: MIT */
/*
 * Integration: bad input to function tracing (rewire/ftrace.h, issue 13):
 * clear errors, and the program exactly as it was.
 *
 * The program is built patchable like a distribution builds it
 * (test_ftrace_badinput.cmake); next to it:
 *	ftb_fn1, ftb_fn2	traceable functions of the program
 *	ftb_nopatch		a function of the program without a patchable
 *				entry (patchable_function_entry(0))
 *	ftb_variable		a global variable (a symbol, not a function)
 *	libftb_plain.so		linked, built without patchable entries:
 *				ftb_plain_fn
 *	ftb_unloaded.so		built, never loaded: ftb_unloaded_fn
 *
 * Each bad call must return the documented error with a message in
 * rw_ftrace_last_error() that names what was asked (and, for a name that
 * matches nothing, the names that come close), and leave the code of the
 * program and of libftb_plain.so byte for byte as it was, and the
 * functions behaving as before. An attach that selects a traceable
 * function and an untraceable one changes nothing (no half-attached set),
 * also while another set traces the traceable one. rw_ftrace_detach()
 * and rw_ftrace_attach() from inside a probe are refused (-EDEADLK) and
 * the set keeps working. NULL sets and callbacks are errors, not crashes
 * (a set cannot be detached twice: detach frees it).
 * rw_ftrace_list() reports the untraceable functions with the reason.
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

/* Graph mode is x86-64's only so far (src/arch/entry_arch.h). */
#if defined(RW_BACKEND_AARCH64)
#define FTB_GRAPH 0
#else
#define FTB_GRAPH 1
#endif

#include "ft_test.h"
#include "ftb_plain.h"

#include <pthread.h>

int ftb_fn1(int x);
int ftb_fn2(int x);
int ftb_nopatch(int x);
extern int ftb_variable;

int ftb_variable = 42;

int ftb_fn1(int x)
{
	return x * 7 + 3;
}

int ftb_fn2(int x)
{
	return ftb_fn1(x) ^ 0x55;
}

__attribute__((patchable_function_entry(0, 0))) int ftb_nopatch(int x)
{
	return x - 11;
}

static struct ft_snap snap_exe, snap_plain;
static int failures; /* wrong errors or messages: reported at the end */
static struct ft_table tab;
static struct ft_ctx ctx;

static void unchanged(const char *what)
{
	uintptr_t at;

	if ((at = ft_text_diff(&snap_exe)) ||
	    (at = ft_text_diff(&snap_plain))) {
		fprintf(stderr, "%s: the code changed at %#lx\n", what,
			(unsigned long)at);
		exit(1);
	}
	/* And behaves the same. */
	CHECK_EQ(ftb_fn1(5), 38);
	CHECK_EQ(ftb_fn2(5), 38 ^ 0x55);
	CHECK_EQ(ftb_nopatch(20), 9);
	CHECK_EQ(ftb_plain_fn(4), 4 * 4 + 1);
	CHECK_EQ(ftb_variable, 42);
}

/* Attach must fail with @want and a message holding each of the
 * '|'-separated strings of @needles, and change nothing. */
static void expect_fail(const char *const *pats, size_t n,
			const struct rw_ftrace_probe *probe, unsigned flags,
			int want, const char *needles, const char *what)
{
	struct rw_ftrace *t = (struct rw_ftrace *)0x1;
	const char *msg;
	int err;

	err = rw_ftrace_attach(pats, n, probe, flags, &t);
	msg = rw_ftrace_last_error();
	fprintf(stderr, "%-34s %d (%s): %.300s\n", what, err, rw_strerror(err),
		msg ? msg : "(null)");
	if (err != want) {
		fprintf(stderr, "  FAIL: %s: expected %d (%s)\n", what, want,
			rw_strerror(want));
		failures++;
	}
	if (!msg || !*msg) {
		fprintf(stderr, "  FAIL: %s: no message\n", what);
		failures++;
		needles = NULL;
	}
	if (needles) {
		char buf[256], *tok, *save;

		snprintf(buf, sizeof(buf), "%s", needles);
		for (tok = strtok_r(buf, "|", &save); tok;
		     tok = strtok_r(NULL, "|", &save)) {
			if (!strstr(msg, tok)) {
				fprintf(stderr,
					"  FAIL: %s: the message does not "
					"say \"%s\"\n",
					what, tok);
				failures++;
			}
		}
	}
	/* Nothing handed back on failure (a success is undone, so that the
	 * other cases still start from an unchanged program). */
	if (!err)
		ft_detach(t);
	else
		CHECK(t == (struct rw_ftrace *)0x1 || t == NULL);
	unchanged(what);
}

struct list_seen {
	int fn1, nopatch, plain, variable;
};

static int list_cb(void *arg, const struct rw_ftrace_func *f)
{
	struct list_seen *s = (struct list_seen *)arg;

	if (!strcmp(f->name, "ftb_fn1")) {
		CHECK_EQ(f->status, 0);
		CHECK(f->addr == (uintptr_t)ftb_fn1);
		s->fn1++;
	} else if (!strcmp(f->name, "ftb_nopatch")) {
		CHECK_EQ(f->status, -RW_ERR_NOT_PATCHABLE);
		s->nopatch++;
	} else if (!strcmp(f->name, "ftb_plain_fn")) {
		CHECK_EQ(f->status, -RW_ERR_NOT_PATCHABLE);
		CHECK(strstr(f->object, "libftb_plain.so"));
		s->plain++;
	} else if (!strcmp(f->name, "ftb_variable")) {
		s->variable++;
	}
	return 0;
}

static int list_stop(void *arg, const struct rw_ftrace_func *f)
{
	(void)f;
	return ++*(int *)arg == 2 ? 12345 : 0;
}

/* Detaching, and attaching, from inside a probe. */
static struct rw_ftrace *self_t;
static int self_err = 1, self_attach_err = 1;

static void self_detach(void *data, const struct rw_ftrace_func *f,
			uintptr_t caller, unsigned depth)
{
	static const char *const p[] = { "ftb_fn1" };
	struct rw_ftrace_probe probe = { self_detach, NULL, NULL };
	struct rw_ftrace *t = NULL;

	(void)data;
	(void)f;
	(void)caller;
	(void)depth;
	if (self_err == 1)
		self_err = rw_ftrace_detach(self_t);
	if (self_attach_err == 1) {
		self_attach_err = rw_ftrace_attach(p, 1, &probe, 0, &t);
		if (!self_attach_err)
			self_attach_err = 0x7fff; /* reported by the caller */
	}
}

int main(void)
{
	static const char *const ok1[] = { "ftb_fn1" };
	struct rw_ftrace_probe probe = { ft_on_entry,
					 FTB_GRAPH ? ft_on_return : NULL,
					 &ctx };
	struct rw_ftrace_probe none = { NULL, NULL, &ctx };
	struct rw_ftrace *t;
	unsigned fn1;

	fn1 = ft_table_put(&tab, "ftb_fn1", (uintptr_t)ftb_fn1);
	ft_table_put(&tab, "ftb_fn2", (uintptr_t)ftb_fn2);
	ctx.tab = &tab;
	ft_text_snap((uintptr_t)ftb_fn1, &snap_exe);
	ft_text_snap((uintptr_t)ftb_plain_fn, &snap_plain);
	unchanged("before");

	/* Names that match nothing. */
	{
		const char *p[] = { "ftb_no_such_function_*" };
		expect_fail(p, 1, &probe, 0, -ENOENT, "ftb_no_such_function_*",
			    "glob matching nothing");
	}
	{
		/* A typo: the message suggests the name that comes close. */
		const char *p[] = { "ftb_fnl" };
		expect_fail(p, 1, &probe, 0, -ENOENT, "ftb_fnl|ftb_fn1",
			    "misspelt name");
	}
	{
		const char *p[] = { "ftb_variable" };
		expect_fail(p, 1, &probe, 0, -ENOENT, "ftb_variable",
			    "a variable");
	}
	{
		const char *p[] = { "ftb_unloaded_fn" };
		expect_fail(p, 1, &probe, 0, -ENOENT, "ftb_unloaded_fn",
			    "a function of an unloaded object");
	}
	{
		const char *p[] = { "ftb_fn1@ftb_unloaded.so" };
		expect_fail(p, 1, &probe, 0, -ENOENT, "ftb_unloaded.so",
			    "an object not loaded");
	}
	{
		const char *p[] = { "rw_*" };
		expect_fail(p, 1, &probe, 0, -ENOENT, NULL,
			    "rewire's own code");
	}
	{
		const char *p[] = { "ftb_fn*", "!ftb_fn*" };
		expect_fail(p, 2, &probe, 0, -ENOENT, NULL,
			    "everything excluded");
	}

	/* No patchable entry. */
	{
		const char *p[] = { "ftb_nopatch" };
		expect_fail(p, 1, &probe, 0, -RW_ERR_NOT_PATCHABLE,
			    "ftb_nopatch", "no patchable entry");
	}
	{
		const char *p[] = { "ftb_plain_fn" };
		expect_fail(p, 1, &probe, 0, -RW_ERR_NOT_PATCHABLE,
			    "ftb_plain_fn", "a library built without");
	}
	{
		/* A glob: the untraceable matches are named, with why. */
		const char *p[] = { "ftb_plain_*" };
		expect_fail(p, 1, &probe, 0, -ENOENT, "ftb_plain_fn",
			    "glob matching only those");
	}
	{
		/* All or nothing: ftb_fn1 is not traced either. */
		const char *p[] = { "ftb_fn1", "ftb_nopatch" };
		expect_fail(p, 2, &probe, 0, -RW_ERR_NOT_PATCHABLE,
			    "ftb_nopatch", "one traceable, one not");
	}

	/* Malformed calls. */
	{
		const char *p[] = { NULL };
		expect_fail(p, 1, &probe, 0, -EINVAL, NULL, "a NULL pattern");
		expect_fail(NULL, 1, &probe, 0, -EINVAL, NULL, "NULL patterns");
	}
	{
		const char *p[] = { "" };
		expect_fail(p, 1, &probe, 0, -EINVAL, NULL, "an empty pattern");
	}
	{
		const char *p[] = { "ftb_fn1", "" };
		expect_fail(p, 2, &probe, 0, -EINVAL, NULL,
			    "an empty pattern after a good one");
	}
	expect_fail(ok1, 1, NULL, 0, -EINVAL, NULL, "a NULL probe");
	expect_fail(ok1, 1, &none, 0, -EINVAL, NULL,
		    "a probe without functions");
	expect_fail(ok1, 1, &probe, 1, -EINVAL, NULL, "unknown flags");
	{
		size_t n = 65537;
		const char **p = calloc(n, sizeof(*p));

		CHECK(p);
		for (size_t i = 0; i < n; i++)
			p[i] = "ftb_fn1";
		expect_fail(p, n, &probe, 0, -EINVAL, NULL, "65,537 patterns");
		free(p);
	}
	{
		struct rw_ftrace_probe p = probe;
		CHECK_EQ(rw_ftrace_attach(ok1, 1, &p, 0, NULL), -EINVAL);
		unchanged("a NULL out");
	}
	{
		/* A name far longer than any symbol: an error, the message
		 * cut, nothing overflows. */
		size_t len = 100000;
		char *big = malloc(len + 1);
		const char *p[] = { big };

		CHECK(big);
		memset(big, 'x', len);
		big[len] = '\0';
		expect_fail(p, 1, &probe, 0, -ENOENT, NULL,
			    "a 100,000-byte name");
		free(big);
	}
	{
		/* Empty pieces around the "!" and "@" syntax. */
		const char *bang[] = { "!" };
		const char *at[] = { "ftb_fn1@" };
		const char *at_only[] = { "@" };
		const char *obj_glob[] = { "ftb_fn1@[" };
		int err;

		err = rw_ftrace_attach(bang, 1, &probe, 0, &t);
		CHECK(err == -EINVAL || err == -ENOENT);
		unchanged("\"!\"");
		err = rw_ftrace_attach(at_only, 1, &probe, 0, &t);
		CHECK(err == -EINVAL || err == -ENOENT);
		unchanged("\"@\"");
		/* An empty object: an error, or no object filter at all
		 * (then exactly ftb_fn1). */
		err = rw_ftrace_attach(at, 1, &probe, 0, &t);
		if (!err) {
			CHECK_EQ(rw_ftrace_nfuncs(t), 1);
			CHECK(rw_ftrace_func_at(t, 0)->addr ==
			      (uintptr_t)ftb_fn1);
			fprintf(stderr, "\"ftb_fn1@\" is taken as ftb_fn1\n");
			ft_detach(t);
		} else {
			CHECK(err == -EINVAL || err == -ENOENT);
		}
		unchanged("\"ftb_fn1@\"");
		err = rw_ftrace_attach(obj_glob, 1, &probe, 0, &t);
		CHECK(err == -EINVAL || err == -ENOENT);
		unchanged("\"ftb_fn1@[\"");
	}

	/* NULL sets everywhere else. */
	CHECK_EQ(rw_ftrace_detach(NULL), -EINVAL);
	CHECK_EQ(rw_ftrace_nfuncs(NULL), 0);
	CHECK(rw_ftrace_func_at(NULL, 0) == NULL);
	{
		struct rw_ftrace_stats st = { 1, 1 };

		rw_ftrace_get_stats(NULL, &st);
		CHECK_EQ(st.recursion, 0);
		CHECK_EQ(st.shadow_full, 0);
	}
	CHECK_EQ(rw_ftrace_list(ok1, 1, NULL, NULL), -EINVAL);
	unchanged("NULL sets");

	/* The same failures while a set traces ftb_fn1: it keeps tracing,
	 * and its entry keeps its bytes. */
	{
		static const char *const both[] = { "ftb_fn1", "ftb_nopatch" };
		struct ft_snap attached;
		unsigned long before;

		t = ft_attach(ok1, 1, &ctx, FTB_GRAPH);
		ft_text_snap((uintptr_t)ftb_fn1, &attached);
		CHECK(ft_text_diff(&snap_exe));
		before = ctx.entries[fn1];
		CHECK_EQ(ftb_fn1(1), 10);
		CHECK_EQ(ctx.entries[fn1], before + 1);
		CHECK_EQ(ctx.returns[fn1], FTB_GRAPH ? ctx.entries[fn1] : 0);

		struct rw_ftrace *t2 = (struct rw_ftrace *)0x1;
		CHECK_EQ(rw_ftrace_attach(both, 2, &probe, 0, &t2),
			 -RW_ERR_NOT_PATCHABLE);
		CHECK(!ft_text_diff(&attached));
		CHECK_EQ(ftb_fn1(1), 10);
		CHECK_EQ(ctx.entries[fn1], before + 2);
		ft_detach(t);
		unchanged("after the set is detached");
		CHECK_EQ(ftb_fn1(1), 10);
		CHECK_EQ(ctx.entries[fn1], before + 2);
		ft_snap_free(&attached);
	}

	/* Detaching from inside a probe: refused, the set keeps working. */
	{
		struct rw_ftrace_probe p = { self_detach, NULL, NULL };
		const char *p2[] = { "ftb_fn2" };

		CHECK_OK(rw_ftrace_attach(p2, 1, &p, 0, &self_t));
		CHECK_EQ(ftb_fn2(5), 38 ^ 0x55);
		CHECK_EQ(self_err, -EDEADLK);
		CHECK_EQ(self_attach_err, -EDEADLK);
		CHECK(ft_text_diff(&snap_exe));
		ft_detach(self_t);
		unchanged("after detach from a probe");
	}

	/* rw_ftrace_list: the untraceable functions with the reason, no
	 * variable; an early stop returns the callback's value. */
	{
		static const char *const p[] = { "ftb_*" };
		const char *bad[] = { NULL };
		struct list_seen s = { 0, 0, 0, 0 };
		int n = 0;

		CHECK_OK(rw_ftrace_list(p, 1, list_cb, &s));
		CHECK_EQ(s.fn1, 1);
		CHECK_EQ(s.nopatch, 1);
		CHECK_EQ(s.plain, 1);
		CHECK_EQ(s.variable, 0);
		CHECK_EQ(rw_ftrace_list(p, 1, list_stop, &n), 12345);
		CHECK_EQ(n, 2);
		CHECK_EQ(rw_ftrace_list(bad, 1, list_cb, &s), -EINVAL);
		unchanged("after rw_ftrace_list");
	}

	/* A good attach still works after all that. */
	t = ft_attach(ok1, 1, &ctx, 0);
	CHECK_EQ(rw_ftrace_nfuncs(t), 1);
	CHECK(rw_ftrace_func_at(t, 0)->addr == (uintptr_t)ftb_fn1);
	CHECK_EQ(rw_ftrace_func_at(t, 0)->status, 0);
	ft_detach(t);
	unchanged("at the end");
	if (failures) {
		fprintf(stderr, "%d wrong error(s) or message(s)\n", failures);
		return 1;
	}
	ft_snap_free(&snap_exe);
	ft_snap_free(&snap_plain);
	return 0;
}

#endif /* RW_BACKEND_X86_64 || RW_BACKEND_AARCH64 */
