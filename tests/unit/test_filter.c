/* SPDX-License-Identifier: MIT */
/*
 * The event filters of `rewire trace --filter` (src/ctl/filter.c): a table
 * of expressions evaluated on five events whose values sit on the edges
 * (0, -1, INT64_MIN, UINT64_MAX, NaN, -0.0, NULL strings, a string longer
 * than a record holds), with the result expected for each; every error
 * message with its column; the limits, one under and one over; the check
 * without kinds; and the C locale's numbers whatever the process's locale.
 *
 * filter.c is compiled into this test (test_filter.cmake): it is hidden
 * inside librewire.
 */
#include "check.h"
#include "filter.h"

#include <locale.h>
#include <math.h>

enum { F_OP, F_LEN, F_DELTA, F_HIT, F_RATIO, F_PTR, F_NAME, NF };

/* RW_TRACE_KIND_* of ring.h. */
static const struct rw_filter_field fields[NF] = {
	{ "op", 4 },	{ "value_len", 1 }, { "delta", 0 }, { "hit", 2 },
	{ "ratio", 3 }, { "ptr", 5 },	    { "name", 4 },
};

#define NV 5
static uint64_t vals[NV][NF];
static char longname[301];

static uint64_t dbits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static uint64_t sbits(const char *s)
{
	return (uint64_t)(uintptr_t)s;
}

static void setup(void)
{
	memset(longname, 'x', 300);
	/* V0 */
	vals[0][F_OP] = sbits("GET");
	vals[0][F_LEN] = 200;
	vals[0][F_DELTA] = (uint64_t)-5;
	vals[0][F_HIT] = 1;
	vals[0][F_RATIO] = dbits(0.5);
	vals[0][F_PTR] = 0;
	vals[0][F_NAME] = sbits("alpha");
	/* V1 */
	vals[1][F_OP] = sbits("SET");
	vals[1][F_LEN] = 10;
	vals[1][F_DELTA] = 0;
	vals[1][F_HIT] = 0;
	vals[1][F_RATIO] = dbits(-2.0);
	vals[1][F_PTR] = 0x1000;
	vals[1][F_NAME] = sbits("a*b");
	/* V2 */
	vals[2][F_OP] = sbits("GETX");
	vals[2][F_LEN] = UINT64_MAX;
	vals[2][F_DELTA] = (uint64_t)INT64_MIN;
	vals[2][F_HIT] = 1;
	vals[2][F_RATIO] = dbits(NAN);
	vals[2][F_PTR] = UINT64_MAX;
	vals[2][F_NAME] = 0;
	/* V3 */
	vals[3][F_OP] = sbits("");
	vals[3][F_LEN] = 0;
	vals[3][F_DELTA] = (uint64_t)INT64_MAX;
	vals[3][F_HIT] = 0;
	vals[3][F_RATIO] = dbits(1e300);
	vals[3][F_PTR] = 1;
	vals[3][F_NAME] = sbits(longname);
	/* V4: a bool of 2 is true (nonzero). */
	vals[4][F_OP] = 0;
	vals[4][F_LEN] = 199;
	vals[4][F_DELTA] = (uint64_t)-1;
	vals[4][F_HIT] = 2;
	vals[4][F_RATIO] = dbits(-0.0);
	vals[4][F_PTR] = 0x7fff;
	vals[4][F_NAME] = sbits("he said \"hi\"\n");
}

/* An expression and its result on V0..V4, as "01..." */
static const struct {
	const char *expr;
	const char *want;
} evals[] = {
	{ "value_len >= 200 && op == \"GET\"", "10000" },
	{ "  value_len>=200&&op==\"GET\"  ", "10000" },
	{ "op == \"GET*\"", "10100" },
	{ "op != \"GET*\"", "01011" },
	{ "op == \"*\"", "11110" },
	{ "op == \"**\"", "11110" },
	{ "op == \"\"", "00010" },
	{ "op == '*E*'", "11100" },
	{ "op == \"G*T*\"", "10100" },
	{ "op == \"GE\"", "00000" },
	{ "op == \"GETX\"", "00100" },
	{ "name == \"a\\*b\"", "01000" },
	{ "name == \"a*b\"", "01000" },
	{ "name == \"x*\"", "00010" },
	{ "name == \"*x\"", "00010" },
	{ "name == \"he said \\\"hi\\\"\\n\"", "00001" },
	{ "name == 'he said \"hi\"\\x0a'", "00001" },
	{ "name == 'he said \\'hi\\'\\n'", "00000" },
	{ "delta < 0", "10101" },
	{ "delta == -9223372036854775808", "00100" },
	{ "delta > -9223372036854775808", "11011" },
	{ "delta < 9223372036854775808", "11111" },
	{ "delta == 18446744073709551615", "00000" },
	{ "delta == -0x5", "10000" },
	{ "-5 == delta", "10000" },
	{ "delta >= -1.5", "01011" },
	{ "delta > -.5e1", "01011" },
	{ "delta < -2.5", "10100" },
	{ "delta <= -4.5", "10100" },
	{ "delta > -5.5", "11011" },
	{ "delta >= 0.5", "00010" },
	{ "delta < -1e30", "00000" },
	{ "delta > -1e30", "11111" },
	{ "value_len > -1", "11111" },
	{ "value_len == -1", "00000" },
	{ "value_len != -1", "11111" },
	{ "value_len < -1", "00000" },
	{ "value_len == 0xffffffffffffffff", "00100" },
	{ "value_len == 0XFFFFFFFFFFFFFFFF", "00100" },
	{ "value_len < 200", "01011" },
	{ "200 > value_len", "01011" },
	{ "200 <= value_len", "10100" },
	{ "value_len <= 199.5", "01011" },
	{ "value_len > 199.5", "10100" },
	{ "value_len == 199.0", "00001" },
	{ "value_len == 199.5", "00000" },
	{ "value_len != 199.5", "11111" },
	{ "value_len >= 1.8446744073709552e19", "00000" },
	{ "value_len", "11101" },
	{ "hit", "10101" },
	{ "hit == true", "10101" },
	{ "hit == 1", "10101" },
	{ "hit != false", "10101" },
	{ "!hit", "01010" },
	{ "hit == false", "01010" },
	{ "hit == 0", "01010" },
	{ "true != hit", "01010" },
	{ "!!hit", "10101" },
	{ "ratio > 0", "10010" },
	{ "ratio != 0.5", "01111" },
	{ "ratio == 0", "00001" },
	{ "ratio", "11110" },
	{ "ratio <= -2", "01000" },
	{ "ratio < -1.5e0", "01000" },
	{ "ratio >= 1e300", "00010" },
	{ "0.25 < ratio", "10010" },
	{ "ptr == 0", "10000" },
	{ "ptr", "01111" },
	{ "ptr >= 0x1000", "01101" },
	{ "ptr < 0x8000", "11011" },
	{ "!(op == \"GET\" || op == \"SET\") && value_len < 200", "00011" },
	{ "op == \"GET\" || op == \"SET\" && delta < 0", "10000" },
	{ "(op == \"GET\" || op == \"SET\") && delta <= 0", "11000" },
	{ "!op == \"GET\"", "01111" },
	{ "hit && !(delta < 0) || ptr == 0x7fff", "00001" },
	{ "((((hit))))", "10101" },
	{ "hit || ptr || ratio", "11111" },
	{ "!(hit || ptr || ratio)", "00000" },
	{ "hit && ptr && ratio", "00100" },
	{ "!hit && !ptr", "00000" },
	{ "!(!hit && !ptr) && !(value_len == 0)", "11101" },
};

/* An expression's error: errno, column, and a part of the message. */
static const struct {
	const char *expr;
	int err;
	unsigned col;
	const char *msg;
} errs[] = {
	{ "", -EINVAL, 1, "empty filter expression" },
	{ "   ", -EINVAL, 1, "empty filter expression" },
	{ "value_len >", -EINVAL, 12,
	  "unexpected end of the expression: expected a field, a value, '!' "
	  "or '('" },
	{ "value_len >= 200 &&", -EINVAL, 20, "unexpected end" },
	{ "!", -EINVAL, 2, "unexpected end" },
	{ "()", -EINVAL, 2, "unexpected ')'" },
	{ "|| hit", -EINVAL, 1, "unexpected '||'" },
	{ "op == \"GET", -EINVAL, 7,
	  "unterminated string: the \" opened here is never closed" },
	{ "op == 'GET\\", -EINVAL, 7, "unterminated string: the '" },
	{ "op = \"GET\"", -EINVAL, 4,
	  "'=' is not an operator: write '==' to compare" },
	{ "value_len => 3", -EINVAL, 11, "'=' is not an operator" },
	{ "value_len & 1", -EINVAL, 11, "'&' is not an operator" },
	{ "hit | ptr", -EINVAL, 5, "'|' is not an operator" },
	{ "valeu_len > 3", -ENOENT, 1,
	  "no field 'valeu_len'; did you mean 'value_len'?" },
	{ "VALUE_LEN > 3", -ENOENT, 1, "did you mean 'value_len'?" },
	{ "hti", -ENOENT, 1, "no field 'hti'; did you mean 'hit'?" },
	{ "xy == 1", -ENOENT, 1, "no field 'xy' (fields: op," },
	{ "delta > 1 && rato < 1", -ENOENT, 14, "did you mean 'ratio'?" },
	{ "zzzz > 3", -ENOENT, 1,
	  "no field 'zzzz' (fields: op, value_len, delta, hit, ratio, ptr, "
	  "name)" },
	{ "op == 3", -EINVAL, 7,
	  "type mismatch: 'op' is a string field, compared with an integer" },
	{ "3 == op", -EINVAL, 1, "'op' is a string field" },
	{ "value_len == \"x\"", -EINVAL, 14,
	  "type mismatch: 'value_len' is an integer field, compared with a "
	  "string" },
	{ "op < \"x\"", -EINVAL, 4, "strings compare only with == and !=" },
	{ "hit == 2", -EINVAL, 8,
	  "type mismatch: 'hit' is a bool field, compared with an integer "
	  "other than 0 and 1" },
	{ "hit == 0.5", -EINVAL, 8, "'hit' is a bool field" },
	{ "hit < true", -EINVAL, 5, "bools compare only with == and !=" },
	{ "ptr == -1", -EINVAL, 8,
	  "'ptr' is a pointer field, compared with a negative integer" },
	{ "ptr == 1.5", -EINVAL, 8, "'ptr' is a pointer field" },
	{ "ratio == \"x\"", -EINVAL, 10,
	  "'ratio' is a floating-point field, compared with a string" },
	{ "value_len == true", -EINVAL, 14,
	  "'value_len' is an integer field, compared with a bool" },
	{ "op", -EINVAL, 1, "'op' is a string field: compare it" },
	{ "hit && name", -EINVAL, 8, "'name' is a string field" },
	{ "3", -EINVAL, 1, "an integer alone is not a test" },
	{ "\"x\"", -EINVAL, 1, "a string alone is not a test" },
	{ "3 == 4", -EINVAL, 1,
	  "compares two values: one side must be a field" },
	{ "op == name", -EINVAL, 7,
	  "compares two fields: one side must be a value" },
	{ "(value_len > 3", -EINVAL, 15,
	  "missing ')' to close the '(' of column 1" },
	{ "hit && (ptr || (ratio)", -EINVAL, 23,
	  "missing ')' to close the '(' of column 8" },
	{ "value_len > 3)", -EINVAL, 14, "unmatched ')'" },
	{ "value_len > 3 delta < 0", -EINVAL, 15,
	  "unexpected 'delta': expected '&&', '||' or the end" },
	{ "(value_len > 3 delta", -EINVAL, 16,
	  "unexpected 'delta': expected '&&', '||' or ')'" },
	{ "value_len > 18446744073709551616", -EINVAL, 13,
	  "integer out of range (above 2^64-1)" },
	{ "value_len > 0x1ffffffffffffffff", -EINVAL, 13,
	  "integer out of range (above 2^64-1)" },
	{ "delta > -9223372036854775809", -EINVAL, 9,
	  "integer out of range (below -2^63)" },
	{ "value_len > 012", -EINVAL, 13, "a leading zero is not allowed" },
	{ "value_len > 12ab", -EINVAL, 13, "invalid number '12ab'" },
	{ "value_len > 0x", -EINVAL, 13, "invalid number '0x'" },
	{ "value_len > 0xfg", -EINVAL, 13, "invalid number '0xfg'" },
	{ "value_len > 1.2.3", -EINVAL, 13, "invalid number '1.2.3'" },
	{ "value_len > 1e", -EINVAL, 13, "invalid number '1e'" },
	{ "value_len > 1e999", -EINVAL, 13,
	  "floating-point number out of range" },
	{ "delta > -x", -EINVAL, 9, "'-' goes only before a number" },
	{ "-delta > 1", -EINVAL, 1, "'-' goes only before a number" },
	{ "op == \"\\q\"", -EINVAL, 8, "unknown escape '\\q'" },
	{ "op == \"\\x4\"", -EINVAL, 8, "\\x needs two hexadecimal digits" },
	{ "op == \"\\x00\"", -EINVAL, 8, "a string cannot hold a NUL byte" },
	{ "value_len > 3 @", -EINVAL, 15, "unexpected character '@'" },
	{ "value_len > 3 \x01", -EINVAL, 15, "unexpected byte 0x01" },
};

static void check_evals(void)
{
	for (size_t i = 0; i < sizeof(evals) / sizeof(evals[0]); i++) {
		struct rw_filter_error err;
		struct rw_filter *f = NULL;
		int e = rw_filter_compile(evals[i].expr, fields, NF, &f, &err);

		if (e) {
			fprintf(stderr, "'%s': %d at %u: %s\n", evals[i].expr,
				e, err.column, err.msg);
			CHECK(0);
		}
		CHECK_EQ(err.column, 0);
		/* The check accepts what compiles, with or without names. */
		CHECK_OK(rw_filter_check(evals[i].expr, fields, NF, &err));
		CHECK_OK(rw_filter_check(evals[i].expr, NULL, 0, &err));
		for (int v = 0; v < NV; v++) {
			bool got = rw_filter_eval(f, vals[v]);

			if (got != (evals[i].want[v] == '1')) {
				fprintf(stderr, "'%s' on V%d: %d, want %c\n",
					evals[i].expr, v, got,
					evals[i].want[v]);
				CHECK(0);
			}
		}
		rw_filter_free(f);
	}
}

static void expect_err(const char *expr, int e, int want, unsigned col,
		       const struct rw_filter_error *err, const char *msg)
{
	if (e != want || err->column != col || !strstr(err->msg, msg)) {
		fprintf(stderr,
			"'%s': %d at column %u: %s\n want %d at column %u: "
			"...%s...\n",
			expr, e, err->column, err->msg, want, col, msg);
		CHECK(0);
	}
}

static void check_errors(void)
{
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct rw_filter_error err;
		struct rw_filter *f = (struct rw_filter *)&err;
		int e = rw_filter_compile(errs[i].expr, fields, NF, &f, &err);

		CHECK(f == NULL);
		expect_err(errs[i].expr, e, errs[i].err, errs[i].col, &err,
			   errs[i].msg);
	}
}

/* Builds @n copies of @unit between @pre and @post into @buf. */
static const char *rep(char *buf, size_t size, const char *pre,
		       const char *unit, unsigned n, const char *post)
{
	size_t l = (size_t)snprintf(buf, size, "%s", pre);

	for (unsigned i = 0; i < n; i++)
		l += (size_t)snprintf(buf + l, size - l, "%s", unit);
	snprintf(buf + l, size - l, "%s", post);
	return buf;
}

static void check_limits(void)
{
	static char buf[4096], tail[64];
	struct rw_filter_error err;
	struct rw_filter *f;

	/* Depth: 32 levels of '!' or '(' pass, the 33rd fails. */
	CHECK_OK(rw_filter_compile(rep(buf, sizeof(buf), "", "!", 32, "hit"),
				   fields, NF, &f, &err));
	CHECK(rw_filter_eval(f, vals[0]) && !rw_filter_eval(f, vals[1]));
	rw_filter_free(f);
	expect_err(buf,
		   rw_filter_compile(rep(buf, sizeof(buf), "", "!", 33, "hit"),
				     fields, NF, &f, &err),
		   -E2BIG, 33, &err, "nested deeper than 32 levels");
	rep(tail, sizeof(tail), "hit", ")", 32, "");
	CHECK_OK(rw_filter_compile(rep(buf, sizeof(buf), "", "(", 32, tail),
				   fields, NF, &f, &err));
	rw_filter_free(f);
	rep(tail, sizeof(tail), "hit", ")", 33, "");
	expect_err(buf,
		   rw_filter_compile(rep(buf, sizeof(buf), "", "(", 33, tail),
				     fields, NF, &f, &err),
		   -E2BIG, 33, &err, "nested deeper");
	/* Tests: 64 pass, the 65th fails (at its column). */
	CHECK_OK(
		rw_filter_compile(rep(buf, sizeof(buf), "hit", "||hit", 63, ""),
				  fields, NF, &f, &err));
	CHECK(rw_filter_eval(f, vals[0]) && !rw_filter_eval(f, vals[1]));
	rw_filter_free(f);
	expect_err(
		buf,
		rw_filter_compile(rep(buf, sizeof(buf), "hit", "||hit", 64, ""),
				  fields, NF, &f, &err),
		-E2BIG, 64 * 5 + 1, &err, "more than 64 tests");
	/* Length: RW_FILTER_MAX_EXPR bytes pass, one more fails. */
	memset(buf, ' ', RW_FILTER_MAX_EXPR);
	memcpy(buf, "hit", 3);
	buf[RW_FILTER_MAX_EXPR] = '\0';
	CHECK_OK(rw_filter_compile(buf, fields, NF, &f, &err));
	rw_filter_free(f);
	buf[RW_FILTER_MAX_EXPR] = ' ';
	buf[RW_FILTER_MAX_EXPR + 1] = '\0';
	expect_err("long", rw_filter_compile(buf, fields, NF, &f, &err), -E2BIG,
		   RW_FILTER_MAX_EXPR + 1, &err,
		   "expression longer than 1024 bytes");
	/* Strings: 256 bytes pass (and match the 300-byte name, which a
	 * record holds 256 bytes of), 255 do not match it, 257 fail. */
	rep(buf, sizeof(buf), "name == \"", "x", 256, "\"");
	CHECK_OK(rw_filter_compile(buf, fields, NF, &f, &err));
	CHECK(rw_filter_eval(f, vals[3]) && !rw_filter_eval(f, vals[0]));
	rw_filter_free(f);
	rep(buf, sizeof(buf), "name == \"", "x", 255, "\"");
	CHECK_OK(rw_filter_compile(buf, fields, NF, &f, &err));
	CHECK(!rw_filter_eval(f, vals[3]));
	rw_filter_free(f);
	rep(buf, sizeof(buf), "name == \"", "x", 257, "\"");
	expect_err("257", rw_filter_compile(buf, fields, NF, &f, &err), -E2BIG,
		   9, &err, "string longer than 256 bytes");
	/* Escapes count once: 256 escaped stars are 256 bytes. */
	rep(buf, sizeof(buf), "name != '", "\\*", 256, "'");
	CHECK_OK(rw_filter_compile(buf, fields, NF, &f, &err));
	rw_filter_free(f);
	/* Worst case of the wildcard match, bounded: a 256-byte subject
	 * against a pattern that backtracks at every byte. */
	rep(buf, sizeof(buf), "name == '*", "x*", 127, "y'");
	CHECK_OK(rw_filter_compile(buf, fields, NF, &f, &err));
	CHECK(!rw_filter_eval(f, vals[3]));
	rw_filter_free(f);
}

static void check_modes(void)
{
	static const struct rw_filter_field none[1] = { { "x", 1 } };
	struct rw_filter_error err;
	struct rw_filter *f;

	/* The check looks at names and syntax, not kinds. */
	CHECK_OK(rw_filter_check("nope > 1 && op", NULL, 0, &err));
	CHECK_OK(rw_filter_check("op == 3 && hit < 2", fields, NF, &err));
	expect_err("check", rw_filter_check("nope > 1", fields, NF, &err),
		   -ENOENT, 1, &err, "no field 'nope'");
	expect_err("check", rw_filter_check("op ==", NULL, 0, &err), -EINVAL, 6,
		   &err, "unexpected end");
	expect_err("check", rw_filter_check("3 == 4", NULL, 0, &err), -EINVAL,
		   1, &err, "compares two values");
	/* A tracepoint without fields. */
	expect_err("nofields", rw_filter_compile("x > 1", none, 0, &f, &err),
		   -ENOENT, 1, &err, "the tracepoint has no fields");
	expect_err("nofields", rw_filter_compile("x > 1", NULL, 0, &f, &err),
		   -ENOENT, 1, &err, "the tracepoint has no fields");
	/* Bad arguments. */
	CHECK_EQ(rw_filter_compile(NULL, fields, NF, &f, &err), -EINVAL);
	CHECK_EQ(rw_filter_compile("hit", fields, NF, NULL, &err), -EINVAL);
	CHECK_EQ(rw_filter_compile("hit", NULL, 3, &f, &err), -EINVAL);
	CHECK_EQ(rw_filter_compile("hit", fields, NF, &f, NULL), 0);
	rw_filter_free(f);
	CHECK_EQ(rw_filter_compile("hot", fields, NF, &f, NULL), -ENOENT);
	rw_filter_free(NULL);
	/* An unknown kind is refused, not guessed. */
	expect_err("kind", rw_filter_compile("x > 1", none, 1, &f, &err), 0, 0,
		   &err, "");
	rw_filter_free(f);
	{
		static const struct rw_filter_field bad[1] = { { "x", 9 } };

		expect_err("kind", rw_filter_compile("x > 1", bad, 1, &f, &err),
			   -EINVAL, 1, &err, "unknown kind");
	}
}

/* Numbers are read in the C locale: a process in a locale whose decimal
 * point is a comma still reads 0.5 as one half. */
static void check_locale(void)
{
	static const char *const locs[] = { "de_DE.UTF-8", "de_DE.utf8",
					    "fr_FR.UTF-8", "fr_FR.utf8" };
	struct rw_filter_error err;
	struct rw_filter *f;
	bool set = false;

	char dir[] = "/tmp/rw-test-filter-XXXXXX", cmd[256];

	for (size_t i = 0; i < sizeof(locs) / sizeof(locs[0]) && !set; i++)
		set = setlocale(LC_NUMERIC, locs[i]) != NULL;
	/* None installed: build one where glibc looks first ($LOCPATH). */
	if (!set && mkdtemp(dir)) {
		snprintf(cmd, sizeof(cmd),
			 "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 "
			 ">/dev/null 2>&1",
			 dir);
		if (system(cmd) == 0 && !setenv("LOCPATH", dir, 1))
			set = setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL;
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			fprintf(stderr, "test_filter: %s failed\n", cmd);
	}
	if (set)
		CHECK(strcmp(localeconv()->decimal_point, ",") == 0);
	CHECK_OK(rw_filter_compile("ratio == 0.5", fields, NF, &f, &err));
	CHECK(rw_filter_eval(f, vals[0]) && !rw_filter_eval(f, vals[1]));
	rw_filter_free(f);
	setlocale(LC_NUMERIC, "C");
	if (!set)
		printf("test_filter: no comma locale installed; the C "
		       "locale's numbers were checked in the C locale only\n");
}

int main(void)
{
	setup();
	check_evals();
	check_errors();
	check_limits();
	check_modes();
	check_locale();
	printf("test_filter: %zu evaluations x %d events, %zu errors: ok\n",
	       sizeof(evals) / sizeof(evals[0]), NV,
	       sizeof(errs) / sizeof(errs[0]));
	return 0;
}
