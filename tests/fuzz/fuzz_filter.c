/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the event filters of `rewire trace --filter`
 * (src/ctl/filter.c).
 *
 * The input: an expression, then optionally a NUL byte and the bits of the
 * event's values (8 bytes per field, little-endian, missing bytes zero; a
 * string field's value picks one of the strings below). The expression is
 * compiled against a fixed set of fields, one of each kind and two
 * strings, and evaluated on the values. The oracles (abort(), which
 * libFuzzer reports as a crash):
 *   - a compile either gives a program and no error, or no program, an
 *     errno the header lists, a message, and a column inside the
 *     expression or just past its end;
 *   - whatever compiles passes rw_filter_check() with the fields and with
 *     no fields (the check is never stricter than the compiler);
 *   - evaluation is deterministic, and the program agrees with its
 *     rewrites: !(E) is the negation of E, (E)||(E) and (E)&&(E) are E,
 *     (E)||true-test and (E)&&false-test are constants; each rewrite
 *     either compiles or fails on a limit (-E2BIG) only.
 * Reads out of bounds, of the expression or of the values, are ASan's to
 * report: the values are copied into an array of exactly the fields'
 * size.
 *
 * Built with libFuzzer (tests/fuzz/run_libfuzzer.sh) and, with the
 * standalone driver fuzz_driver.c, by every preset's compiler.
 */
#include "filter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(what)                                                   \
	do {                                                         \
		fprintf(stderr, "fuzz_filter: %s (line %d)\n", what, \
			__LINE__);                                   \
		abort();                                             \
	} while (0)

/* RW_TRACE_KIND_*: signed 0, unsigned 1, bool 2, float 3, string 4,
 * pointer 5. */
static const struct rw_filter_field fields[] = {
	{ "op", 4 },	{ "value_len", 1 }, { "delta", 0 }, { "hit", 2 },
	{ "ratio", 3 }, { "ptr", 5 },	    { "name", 4 },  { "x", 1 },
};
#define NF (sizeof(fields) / sizeof(fields[0]))

static char longstr[300];
static const char *const strs[] = {
	NULL, "",      "GET", "SET", "GETX", "a*b", "*", "he said \"hi\"\n",
	"x",  longstr,
};
#define NSTRS (sizeof(strs) / sizeof(strs[0]))

/* Compiles @expr (NUL-terminated), checks the error oracle; the program
 * or NULL. */
static struct rw_filter *compile(const char *expr, size_t len, int *e)
{
	struct rw_filter_error err;
	struct rw_filter *f = (struct rw_filter *)&err;

	*e = rw_filter_compile(expr, fields, NF, &f, &err);
	if (!*e) {
		if (!f || err.column || err.msg[0])
			FAIL("a compiled expression with an error");
		return f;
	}
	if (f)
		FAIL("a failed compile left a program");
	if (*e != -EINVAL && *e != -ENOENT && *e != -E2BIG)
		FAIL("an errno the header does not list");
	if (!err.msg[0] || !memchr(err.msg, '\0', sizeof(err.msg)))
		FAIL("an error without a message");
	if (err.column > len + 1)
		FAIL("an error column past the end");
	if (err.column == 0)
		FAIL("an error without a column");
	return NULL;
}

/* Compiles @a E @b [E] @c, a rewrite of @expr (E); its value, or -1 when
 * it failed on a limit. */
static int rewrite(const char *a, const char *expr, const char *b, bool twice,
		   const char *c, const uint64_t *v)
{
	static char buf[4 * RW_FILTER_MAX_EXPR];
	struct rw_filter *f;
	int e, r;
	int n = snprintf(buf, sizeof(buf), "%s%s%s%s%s", a, expr, b,
			 twice ? expr : "", c);

	if (n < 0 || (size_t)n >= sizeof(buf))
		FAIL("rewrite buffer");
	f = compile(buf, (size_t)n, &e);
	if (!f) {
		if (e != -E2BIG)
			FAIL("a rewrite of a compiled expression failed");
		return -1;
	}
	r = rw_filter_eval(f, v);
	rw_filter_free(f);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t len = nul ? (size_t)(nul - data) : size;
	const uint8_t *vb = nul ? nul + 1 : data + size;
	size_t vn = (size_t)(data + size - vb);
	uint64_t *v = malloc(NF * sizeof(*v));
	struct rw_filter_error err;
	struct rw_filter *f;
	char *expr;
	int e, r, g;

	memset(longstr, 'x', sizeof(longstr) - 1);
	expr = malloc(len + 1);
	if (!expr || !v)
		FAIL("malloc");
	memcpy(expr, data, len);
	expr[len] = '\0';
	for (size_t i = 0; i < NF; i++) {
		uint64_t x = 0;

		for (size_t b = 0; b < 8; b++)
			if (i * 8 + b < vn)
				x |= (uint64_t)vb[i * 8 + b] << (8 * b);
		v[i] = fields[i].kind == 4
			       ? (uint64_t)(uintptr_t)strs[x % NSTRS]
			       : x;
	}

	f = compile(expr, len, &e);
	if (f) {
		if (rw_filter_check(expr, fields, NF, &err) ||
		    rw_filter_check(expr, NULL, 0, &err))
			FAIL("the check refused what compiles");
		r = rw_filter_eval(f, v);
		if (rw_filter_eval(f, v) != r)
			FAIL("evaluation is not deterministic");
		rw_filter_free(f);
		g = rewrite("!(", expr, ")", false, "", v);
		if (g >= 0 && g == r)
			FAIL("!(E) is not the negation of E");
		g = rewrite("(", expr, ")||(", true, ")", v);
		if (g >= 0 && g != r)
			FAIL("(E)||(E) differs from E");
		g = rewrite("(", expr, ")&&(", true, ")", v);
		if (g >= 0 && g != r)
			FAIL("(E)&&(E) differs from E");
		g = rewrite("(", expr, ")||value_len>=0", false, "", v);
		if (g == 0)
			FAIL("(E)||true is false");
		g = rewrite("(", expr, ")&&x<0", false, "", v);
		if (g == 1)
			FAIL("(E)&&false is true");
	} else if (e != -E2BIG && !rw_filter_check(expr, fields, NF, &err)) {
		/* Passing the check, it failed on a kind: the check without
		 * kinds must accept it too. */
		if (e != -EINVAL || rw_filter_check(expr, NULL, 0, &err))
			FAIL("a check without kinds is stricter");
	}
	free(expr);
	free(v);
	return 0;
}
