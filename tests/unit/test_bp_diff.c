/* SPDX-License-Identifier: MIT */
/*
 * test_bp_diff: the differ of `rewire build-patch` (tools/rewire/bp_diff.c)
 * on pairs of small sources, tests/buildpatch/diff_unit/NAME.before.c and
 * NAME.after.c (.cc for C++). Each pair is copied to before/NAME.c and
 * after/NAME.c in a scratch directory (the driver compiles the original and
 * the patched tree the same way), the hunks come from `diff -U0`, and both
 * are compiled with the compiler CMake found and Debian's flags plus
 * function and data sections, as `rewire build-patch` compiles them.
 *
 * REWIRE_TEST_VERBOSE=1 prints every result.
 */
#include "check.h"

#include "bp.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

/* Debian's control-flow hardening and rewire's entry, per machine. GCC
 * splits cold parts (NAME.cold) by default on x86-64 only: asked for on
 * aarch64, where a program may be built with it too. */
#ifdef __aarch64__
#define ARCH_FLAGS                                                   \
	"-mbranch-protection=standard -fpatchable-function-entry=2 " \
	"-freorder-blocks-and-partition "
#else
#define ARCH_FLAGS "-fcf-protection -fpatchable-function-entry=5 "
#endif
#define FLAGS                                                                   \
	"-O2 -g -fPIE -fstack-protector-strong -D_FORTIFY_SOURCE=2 " ARCH_FLAGS \
	"-ffunction-sections -fdata-sections"

static char dir[] = "/tmp/rw_bp_diff.XXXXXX";
static const char *cur;	       /* the case */
static const char *extra = ""; /* compiler flags after FLAGS */
static struct bp_result res;
static struct bp_hunk hunks[64];
static size_t nhunks;

static void dump(FILE *f)
{
	static const char *const st[] = { "SAME", "CHANGED", "NEW", "DELETED" };
	static const char *const kd[] = { "PATCH", "PROGRAM", "DYNAMIC" };

	fprintf(f, "== %s: %zu funcs, %zu syms, %zu refusals, %zu notes\n", cur,
		res.nfuncs, res.nsyms, res.nrefusals, res.nnotes);
	for (size_t i = 0; i < res.nfuncs; i++) {
		const struct bp_func *fn = &res.funcs[i];

		fprintf(f, "  func %s %s%s%s%s%s parent=%s why=\"%s\"",
			fn->name, st[fn->state], fn->global ? " global" : "",
			fn->include ? " include" : "",
			fn->replace ? " replace" : "",
			fn->clone ? " clone" : "",
			fn->parent ? fn->parent : "-", fn->why ? fn->why : "");
		for (size_t j = 0; j < fn->ninlined; j++)
			fprintf(f, "%s%s",
				j ? "," : " inlined=", fn->inlined[j]);
		fputc('\n', f);
	}
	for (size_t i = 0; i < res.nsyms; i++)
		fprintf(f, "  sym %s %s prog=%s%s\n", res.syms[i].name,
			kd[res.syms[i].kind],
			res.syms[i].prog_name ? res.syms[i].prog_name : "-",
			res.syms[i].local ? " local" : "");
	for (size_t i = 0; i < res.nrefusals; i++)
		fprintf(f, "  refusal [%s] %s\n",
			res.refusals[i].symbol ? res.refusals[i].symbol : "-",
			res.refusals[i].text);
	for (size_t i = 0; i < res.nnotes; i++)
		fprintf(f, "  note [%s] %s\n",
			res.notes[i].symbol ? res.notes[i].symbol : "-",
			res.notes[i].text);
}

static void __attribute__((format(printf, 1, 2), noreturn))
failed(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: expected ", cur);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	dump(stderr);
	exit(1);
}

#define expect(ok, ...)                      \
	do {                                 \
		if (!(ok))                   \
			failed(__VA_ARGS__); \
	} while (0)

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Hunks of `diff -U0 before after`: "+start,count" of each "@@" line. */
static void read_hunks(const char *b, const char *a)
{
	char cmd[2048], line[4096];
	FILE *p;

	nhunks = 0;
	snprintf(cmd, sizeof(cmd), "diff -U0 %s %s", b, a);
	p = popen(cmd, "r");
	CHECK(p);
	while (fgets(line, sizeof(line), p)) {
		unsigned start, count = 1;
		char *plus;

		if (strncmp(line, "@@ ", 3) || !(plus = strchr(line, '+')))
			continue;
		if (sscanf(plus, "+%u,%u", &start, &count) < 1)
			continue;
		CHECK(nhunks < sizeof(hunks) / sizeof(hunks[0]));
		hunks[nhunks++] = (struct bp_hunk){ start, count };
	}
	pclose(p);
}

/* Compile case @name and diff it into res. */
static void diff_case(const char *name, bool cxx)
{
	const char *ext = cxx ? "cc" : "c";
	const char *cc = cxx ? RW_BP_CXX : RW_BP_CC;
	char src_b[512], src_a[512], obj_b[512], obj_a[512], err[512];
	struct bp_tu tu;

	bp_result_free(&res);
	cur = name;
	snprintf(src_b, sizeof(src_b), "%s/before/%s.%s", dir, name, ext);
	snprintf(src_a, sizeof(src_a), "%s/after/%s.%s", dir, name, ext);
	snprintf(obj_b, sizeof(obj_b), "%s/before/%s.o", dir, name);
	snprintf(obj_a, sizeof(obj_a), "%s/after/%s.o", dir, name);
	CHECK_EQ(run("cp %s/%s.before.%s %s && cp %s/%s.after.%s %s",
		     RW_BP_DIFF_DIR, name, ext, src_b, RW_BP_DIFF_DIR, name,
		     ext, src_a),
		 0);
	read_hunks(src_b, src_a);
	CHECK_EQ(run("cd %s/before && %s " FLAGS " %s -c %s.%s -o %s", dir, cc,
		     extra, name, ext, obj_b),
		 0);
	CHECK_EQ(run("cd %s/after && %s " FLAGS " %s -c %s.%s -o %s", dir, cc,
		     extra, name, ext, obj_a),
		 0);
	tu = (struct bp_tu){ .src = src_b,
			     .before_o = obj_b,
			     .after_o = obj_a,
			     .hunks = hunks,
			     .nhunks = nhunks };
	err[0] = 0;
	expect(bp_diff(&tu, &res, err, sizeof(err)) == 0, "bp_diff to work: %s",
	       err);
	if (getenv("REWIRE_TEST_VERBOSE"))
		dump(stdout);
}

static const struct bp_func *func(const char *name)
{
	for (size_t i = 0; i < res.nfuncs; i++)
		if (!strcmp(res.funcs[i].name, name))
			return &res.funcs[i];
	failed("a function '%s'", name);
}

/* A piece GCC splits off on x86-64 (NAME.cold) where aarch64's GCC, whose
 * heuristics differ, may keep the code in one part: then there is no
 * piece to check (test_cold checks one on both). */
static bool split_piece(const char *name)
{
#ifdef __aarch64__
	for (size_t i = 0; i < res.nfuncs; i++)
		if (!strcmp(res.funcs[i].name, name))
			return true;
	return false;
#else
	(void)name;
	return true;
#endif
}

static const struct bp_sym *sym(const char *name)
{
	for (size_t i = 0; i < res.nsyms; i++)
		if (!strcmp(res.syms[i].name, name))
			return &res.syms[i];
	failed("a symbol '%s'", name);
}

static bool has_sym(const char *name)
{
	for (size_t i = 0; i < res.nsyms; i++)
		if (!strcmp(res.syms[i].name, name))
			return true;
	return false;
}

static void func_is(const char *name, enum bp_fstate st, bool include,
		    bool replace, const char *why)
{
	const struct bp_func *f = func(name);

	expect(f->state == st, "'%s' in state %d", name, st);
	expect(f->include == include, "'%s' include=%d", name, include);
	expect(f->replace == replace, "'%s' replace=%d", name, replace);
	if (why)
		expect(f->why && strstr(f->why, why), "'%s' why \"%s\"", name,
		       why);
}

static bool inlined_in(const struct bp_func *f, const char *caller)
{
	for (size_t i = 0; i < f->ninlined; i++)
		if (!strcmp(f->inlined[i], caller))
			return true;
	return false;
}

static void sym_is(const char *name, enum bp_skind kind, const char *prog,
		   bool local)
{
	const struct bp_sym *s = sym(name);

	expect(s->kind == kind, "symbol '%s' of kind %d", name, kind);
	if (prog)
		expect(s->prog_name && !strcmp(s->prog_name, prog),
		       "symbol '%s' to be the program's '%s'", name, prog);
	expect(s->local == local, "symbol '%s' local=%d", name, local);
}

/* A refusal about @symbol whose text holds every string after it. */
static void refused(const char *symbol, ...)
{
	for (size_t i = 0; i < res.nrefusals; i++) {
		const struct bp_msg *m = &res.refusals[i];
		bool all = true;
		va_list ap;

		if (!m->symbol || strcmp(m->symbol, symbol))
			continue;
		va_start(ap, symbol);
		for (const char *s; (s = va_arg(ap, const char *));)
			all &= strstr(m->text, s) != NULL;
		va_end(ap);
		if (all)
			return;
	}
	failed("a refusal about '%s'", symbol);
}

static bool noted(const char *symbol, const char *text)
{
	for (size_t i = 0; i < res.nnotes; i++)
		if (res.notes[i].symbol &&
		    !strcmp(res.notes[i].symbol, symbol) &&
		    strstr(res.notes[i].text, text))
			return true;
	return false;
}

static size_t included(void)
{
	size_t n = 0;

	for (size_t i = 0; i < res.nfuncs; i++)
		n += res.funcs[i].include;
	return n;
}

static void test_body(void)
{
	bool cold;

	diff_case("body", false);
	func_is("f", BP_F_CHANGED, true, true, "edited");
	func_is("g", BP_F_SAME, false, false, NULL);
	func_is("name", BP_F_SAME, false, false, NULL);
	/* f is inlined into dispatch, which has a .cold piece. */
	func_is("dispatch", BP_F_CHANGED, true, true, "inlines edited 'f'");
	cold = split_piece("dispatch.cold");
	if (cold)
		func_is("dispatch.cold", BP_F_CHANGED, true, false,
			"piece of 'dispatch'");
	expect(func("f")->ninlined == 1 && inlined_in(func("f"), "dispatch"),
	       "f inlined into dispatch");
	func_is("scale", BP_F_SAME, false, false, NULL);
	expect(func("f")->global, "f global");
	sym_is("puts", BP_S_DYNAMIC, NULL, false);
	expect(included() == 2u + cold && !res.nrefusals,
	       "f, dispatch and its piece");
	expect(!res.nnotes, "no note (a jump table is no table of sites)");
	sym_is("f", BP_S_PATCH, NULL, false);
}

static void test_helper(void)
{
	const struct bp_func *h;

	diff_case("helper", false);
	func_is("a", BP_F_CHANGED, true, true, "inlines edited 'helper'");
	func_is("b", BP_F_CHANGED, true, true, "inlines edited 'helper'");
	func_is("c", BP_F_SAME, false, false, NULL);
	h = func("helper");
	expect(!h->include && !h->replace, "helper only reported");
	expect(h->ninlined == 2 && inlined_in(h, "a") && inlined_in(h, "b"),
	       "helper inlined into a and b");
	expect(strstr(h->why, "inlined into a and b (both in the patch)"),
	       "helper's why");
	expect(!res.nrefusals, "no refusal");
}

static void test_staticvar(void)
{
	diff_case("staticvar", false);
	func_is("bump", BP_F_CHANGED, true, true, "edited");
	func_is("peek", BP_F_SAME, false, false, NULL);
	sym_is("counter", BP_S_PROGRAM, "counter", true);
	sym_is("total", BP_S_PROGRAM, "total", true);
	sym_is("calls.0", BP_S_PROGRAM, "calls.0", true);
	sym_is("bump", BP_S_PATCH, NULL, false);
	expect(!res.nrefusals && !res.nnotes, "no refusal or note");
}

static void test_cold(void)
{
	const struct bp_func *c;

	diff_case("cold", false);
	func_is("check", BP_F_CHANGED, true, true, "edited");
	func_is("check.cold", BP_F_CHANGED, true, false, "piece of 'check'");
	func_is("note", BP_F_SAME, false, false, NULL);
	c = func("check.cold");
	expect(c->parent && !strcmp(c->parent, "check"), "parent check");
	expect(!c->clone, "a piece is no clone");
	sym_is("check.cold", BP_S_PATCH, NULL, true);
	sym_is("note", BP_S_PROGRAM, "note", false);
	sym_is("notes", BP_S_PROGRAM, "notes", false);
	sym_is("read", BP_S_DYNAMIC, NULL, false);
}

static void test_constant(void)
{
	diff_case("constant", false);
	/* The edit is the #define's line, outside clamp. */
	func_is("clamp", BP_F_CHANGED, true, true, "code changed");
	func_is("lookup", BP_F_CHANGED, true, true,
		"reads changed constant 'table'");
	func_is("lookup2", BP_F_CHANGED, true, true,
		"reads changed constant 'table'");
	func_is("other", BP_F_SAME, false, false, NULL);
	sym_is("table", BP_S_PATCH, NULL, true);
	expect(!res.nrefusals, "no refusal");
}

static void test_initval(void)
{
	diff_case("initval", false);
	refused("limit", "'limit' was 4 bytes = 10, now 4 bytes = 20",
		"pre_patch", NULL);
	func_is("get_limit", BP_F_SAME, false, false, NULL);
}

static void test_layout(void)
{
	diff_case("layout", false);
	refused("struct item", "size 48 -> 56",
		"member 'flags' moved from 40 to 48",
		"member 'extra' added at 40", NULL);
	func_is("item_flags", BP_F_CHANGED, true, true, NULL);
}

static void test_newfunc(void)
{
	diff_case("newfunc", false);
	func_is("added", BP_F_NEW, true, false, "new");
	func_is("user", BP_F_CHANGED, true, true, NULL);
	sym_is("added", BP_S_PATCH, NULL, false);
	expect(!res.nrefusals, "no refusal");
}

static void test_delfunc(void)
{
	diff_case("delfunc", false);
	func_is("gone", BP_F_DELETED, false, false, NULL);
	func_is("keep", BP_F_CHANGED, true, true, "edited");
	expect(noted("gone", "nothing in the patch calls it"),
	       "a note on gone");
	expect(!has_sym("gone"), "gone not referenced");
}

/* helper2 is defined in another file now (and in the program, here):
 * the patch calls the program's. */
static void test_movedfunc(void)
{
	diff_case("movedfunc", false);
	func_is("helper2", BP_F_DELETED, false, false, NULL);
	func_is("caller", BP_F_CHANGED, true, true, "edited");
	sym_is("helper2", BP_S_PROGRAM, "helper2", false);
	expect(noted("helper2", "the patch calls the program's copy"),
	       "a note on helper2");
}

static void test_clone(void)
{
	const struct bp_func *c;

	diff_case("clone", false);
	c = func("scale.constprop.0");
	expect(c->state == BP_F_CHANGED && c->include && c->replace && c->clone,
	       "the clone changed, replaced, a clone");
	expect(c->parent && !strcmp(c->parent, "scale"), "parent scale");
	func_is("one", BP_F_CHANGED, true, true,
		"calls changed clone 'scale.constprop.0'");
	func_is("two", BP_F_CHANGED, true, true,
		"calls changed clone 'scale.constprop.0'");
	func_is("three", BP_F_SAME, false, false, NULL);
	sym_is("scale.constprop.0", BP_S_PATCH, NULL, true);
}

static void test_signature(void)
{
	diff_case("signature", false);
	refused("compute", "signature of 'compute' changed",
		"int (int) -> long int (int, int)", "callers in other files",
		NULL);
	func_is("driver", BP_F_CHANGED, true, true, NULL);
}

static void test_cxx(void)
{
	const struct bp_func *t;

	diff_case("cxx", true);
	func_is("_ZNK4shop4Cart5totalEv", BP_F_CHANGED, true, true, "edited");
	t = func("_ZN4shop6thriceIlEET_S1_");
	expect(t->state == BP_F_CHANGED && t->include && t->replace &&
		       t->global,
	       "the template instance changed, global (weak)");
	func_is("_Z8use_cartRKN4shop4CartE", BP_F_CHANGED, true, true,
		"inlines edited '_ZNK4shop4Cart5totalEv'");
	func_is("_Z7use_tpll", BP_F_SAME, false, false, NULL);
	expect(!res.nrefusals, "no refusal");
}

/* GCC renumbers function-scope statics ("count.0" is the last one): they
 * correlate by the functions using them, not by their names. */
static void test_statics(void)
{
	diff_case("statics", false);
	func_is("f", BP_F_SAME, false, false, NULL);
	func_is("g", BP_F_SAME, false, false, NULL);
	func_is("h", BP_F_NEW, true, false, "new");
	sym_is("count.2", BP_S_PROGRAM, "count.1", true); /* f's */
	sym_is("count.1", BP_S_PROGRAM, "count.0", true); /* g's */
	sym_is("count.0", BP_S_PATCH, NULL, true);	  /* h's, new */
	expect(noted("count.0",
		     "new static variable 'count.0' lives in the patch"),
	       "a note on the new static");
	expect(!res.nrefusals, "no refusal");
}

static void test_newdata(void)
{
	diff_case("newdata", false);
	func_is("lookup", BP_F_CHANGED, true, true, "edited");
	func_is("name_of", BP_F_CHANGED, true, true, "edited");
	sym_is("hits", BP_S_PATCH, NULL, true);
	sym_is("names", BP_S_PATCH, NULL, true);
	expect(noted("hits", "old code does not see it"), "a note on hits");
	expect(noted("names", "new constant 'names'"), "a note on names");
	expect(!res.nrefusals, "no refusal");
}

static void test_tls(void)
{
	diff_case("tls", false);
	func_is("enter", BP_F_CHANGED, true, true, "edited");
	refused("depth", "thread-local variable 'depth' is used by 'enter'",
		"not supported", NULL);
}

static void test_datasize(void)
{
	diff_case("datasize", false);
	refused("level", "data layout changed", "size 4 -> 8", NULL);
}

/* calc_addr's code is the same, but it hands out calc's address. */
static void test_staticsig(void)
{
	diff_case("staticsig", false);
	func_is("calc", BP_F_CHANGED, true, true, "edited");
	func_is("p", BP_F_CHANGED, true, true, NULL);
	func_is("calc_addr", BP_F_CHANGED, true, true,
		"uses 'calc', whose signature changed");
	expect(!res.nrefusals, "no refusal");
}

static void test_moved(void)
{
	diff_case("moved", false);
	refused("count.0", "(8 bytes, used by tock)",
		"name of 'count.0' (4 bytes, used by tick)",
		"shared with old code", NULL);
}

/* next_id was inlined into make, now it is not: its static 'id' is still
 * the program's (found through DWARF, which says which function declares
 * it, where the functions using it would not match). */
static void test_inlstatic(void)
{
	diff_case("inlstatic", false);
	func_is("next_id", BP_F_NEW, true, false, "new");
	func_is("make", BP_F_CHANGED, true, true, NULL);
	sym_is("id.0", BP_S_PROGRAM, "id.0", true);
	expect(!res.nrefusals, "no refusal");
}

/* later's assert passes __LINE__, two more after the edit above it: not a
 * change (kpatch does the same; replacing main for it would keep the
 * transition from finishing). */
static void test_lines(void)
{
	diff_case("lines", false);
	func_is("first", BP_F_CHANGED, true, true, "edited");
	func_is("later", BP_F_SAME, false, false, NULL);
	expect(noted("later", "differs only in line numbers"), "a note");
}

static void test_special(void)
{
	diff_case("special", false);
	func_is("work", BP_F_CHANGED, true, true, "edited");
	func_is("setup", BP_F_NEW, true, false, "new");
	expect(noted("work", "has entries in __my_sites"), "a note on work");
	expect(noted("setup", "a live patch does not run it"),
	       "a note on setup");
}

/* Without DWARF the code is still compared; what needs DWARF is said to
 * be unchecked. */
static void test_nodwarf(void)
{
	extra = "-g0";
	diff_case("helper", false);
	extra = "";
	func_is("a", BP_F_CHANGED, true, true, "code changed");
	func_is("b", BP_F_CHANGED, true, true, "code changed");
	func_is("c", BP_F_SAME, false, false, NULL);
	expect(res.nnotes == 1 && strstr(res.notes[0].text, "has no DWARF"),
	       "a note on the missing DWARF");
}

static void test_cxxlayout(void)
{
	diff_case("cxxlayout", true);
	/* The size stays 16 (padding), the layout does not. */
	refused("class shop::Item", "member 'tax_' added at 12", NULL);
	func_is("_Z8price_ofRKN4shop4ItemE", BP_F_CHANGED, true, true,
		"inlines edited '_ZNK4shop4Item5priceEv'");
	func_is("_ZNK4shop4Item5priceEv", BP_F_CHANGED, true, true, "edited");
}

/* Objects that are not x86-64 relocatable ELF: an error, not a crash. */
static void test_bad_input(void)
{
	char path[600], err[256];
	struct bp_tu tu = { 0 };
	FILE *f;

	bp_result_free(&res);
	cur = "bad input";
	snprintf(path, sizeof(path), "%s/junk.o", dir);
	f = fopen(path, "w");
	CHECK(f);
	fputs("not an object\n", f);
	fclose(f);
	tu.before_o = path;
	tu.after_o = path;
	CHECK_EQ(bp_diff(&tu, &res, err, sizeof(err)), -1);
	expect(strstr(err, "not an ELF file") != NULL, "ELF error: %s", err);
	CHECK_EQ(res.nfuncs, 0);

	/* A truncated object. */
	snprintf(path, sizeof(path), "%s/trunc.o", dir);
	CHECK_EQ(run("head -c 900 %s/after/body.o > %s", dir, path), 0);
	tu.before_o = path;
	CHECK_EQ(bp_diff(&tu, &res, err, sizeof(err)), -1);
	expect(*err, "an error for a truncated object");

	/* An executable is no relocatable object. */
	snprintf(path, sizeof(path), "%s/exe", dir);
	CHECK_EQ(run("printf 'int main(void){return 0;}' | %s -x c - -o %s",
		     RW_BP_CC, path),
		 0);
	tu.before_o = path;
	CHECK_EQ(bp_diff(&tu, &res, err, sizeof(err)), -1);
	expect(strstr(err, "not a relocatable object") != NULL, "%s", err);

	tu.before_o = "/nonexistent/before.o";
	CHECK_EQ(bp_diff(&tu, &res, err, sizeof(err)), -1);
	expect(strstr(err, "cannot open") != NULL, "%s", err);
}

int main(void)
{
	if (run("%s --version >/dev/null 2>&1 && diff --version >/dev/null 2>&1",
		RW_BP_CC))
		SKIP("no compiler (%s) or no diff", RW_BP_CC);
	/* The cases name GCC's clones, pieces and static numbering. */
	if (!run("echo | %s -dM -E - | grep -q __clang__", RW_BP_CC))
		SKIP("%s is clang: the cases expect GCC's code", RW_BP_CC);
	CHECK(mkdtemp(dir));
	CHECK_EQ(run("mkdir %s/before %s/after", dir, dir), 0);

	test_body();
	test_helper();
	test_staticvar();
	test_cold();
	test_constant();
	test_initval();
	test_layout();
	test_newfunc();
	test_delfunc();
	test_movedfunc();
	test_clone();
	test_signature();
	test_statics();
	test_newdata();
	test_tls();
	test_datasize();
	test_staticsig();
	test_moved();
	test_inlstatic();
	test_lines();
	if (!run("%s --version >/dev/null 2>&1", RW_BP_CXX)) {
		test_cxx();
		test_cxxlayout();
	}
	test_special();
	test_nodwarf();
	test_bad_input();

	bp_result_free(&res);
	run("rm -rf %s", dir);
	printf("test_bp_diff: ok\n");
	return 0;
}
