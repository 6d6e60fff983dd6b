/* SPDX-License-Identifier: MIT */
/*
 * Event filters (filter.h): a lexer, a recursive-descent parser that emits
 * the program as it goes, and the evaluator.
 *
 * This file is compiled into librewire, the rewire command and the fuzzer:
 * it includes only filter.h and libc, and keeps no global state.
 *
 * The program. Each instruction sets, tests or negates one boolean, the
 * accumulator:
 *
 *	CONST		acc = imm (a comparison decided at compile time)
 *	NZ, Z		acc = args[arg] != 0, == 0
 *	NZ_F		acc = (double)args[arg] != 0.0
 *	EQ .. GE_F	acc = args[arg] <op> imm, as unsigned, signed or double
 *	STR_EQ, STR_NE	acc = the string args[arg] matches (does not match)
 *			the pattern at pool + aux
 *	NOT		acc = !acc
 *	JF, JT		if acc is false (true), go to instruction aux
 *
 * `A && B` is A, JF end, B; `A || B` is A, JT end, B: when A decides, the
 * jump leaves A's value in the accumulator, which is the result. Jumps
 * only go forward, so a program of n instructions runs at most n of them,
 * and the evaluator needs no stack. The program starts with acc = true and
 * its result is acc at the end.
 *
 * Compile time is bounded too: the parser recurses once per "(" and "!"
 * (at most RW_FILTER_MAX_DEPTH deep), and the expression is at most
 * RW_FILTER_MAX_EXPR bytes, each of which makes at most one instruction.
 */
/* strtod_l(), newlocale(): whoever compiles this file. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "filter.h"

#include <errno.h>
#include <locale.h>
#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The kinds of ring.h (RW_TRACE_KIND_*), which this file does not
 * include. */
enum {
	K_SIGNED,
	K_UNSIGNED,
	K_BOOL,
	K_FLOAT,
	K_STRING,
	K_POINTER,
};

enum op {
	OP_CONST,
	OP_NZ,
	OP_Z,
	OP_NZ_F,
	OP_EQ,
	OP_NE,
	OP_LT_S,
	OP_LE_S,
	OP_GT_S,
	OP_GE_S,
	OP_LT_U,
	OP_LE_U,
	OP_GT_U,
	OP_GE_U,
	OP_EQ_F,
	OP_NE_F,
	OP_LT_F,
	OP_LE_F,
	OP_GT_F,
	OP_GE_F,
	OP_STR_EQ,
	OP_STR_NE,
	OP_NOT,
	OP_JF,
	OP_JT,
};

struct insn {
	uint8_t op;
	uint8_t pad;
	uint16_t arg; /* the field */
	uint32_t aux; /* JF, JT: the target; STR_*: the pattern's offset */
	uint64_t imm; /* the constant's bits */
};

/*
 * A string pattern in the pool: 2 bytes of length m (little-endian), 1
 * byte "has a wildcard", m bytes, and with a wildcard m more bytes, one
 * per byte of the pattern: 1 where it is a wildcard '*'.
 */
#define PAT_HDR 3u

struct rw_filter {
	uint32_t n;	    /* instructions */
	uint32_t pool_size; /* bytes after code[n] */
	struct insn code[]; /* then the pool */
};

/* --- Evaluation ------------------------------------------------------------
 * Async-signal-safe: no allocation, no call but to this file's functions.
 */

static bool glob(const uint8_t *p, const uint8_t *w, size_t m,
		 const unsigned char *s, size_t n)
{
	size_t i = 0, j = 0, star = SIZE_MAX, mark = 0;

	/* The usual greedy match that backtracks to the last star only:
	 * at most m steps per subject byte. */
	while (i < n) {
		if (j < m && w[j]) {
			star = j++;
			mark = i;
		} else if (j < m && p[j] == s[i]) {
			i++;
			j++;
		} else if (star != SIZE_MAX) {
			j = star + 1;
			i = ++mark;
		} else {
			return false;
		}
	}
	while (j < m && w[j])
		j++;
	return j == m;
}

/* Whether the string @str (NULL: matches nothing) matches the pattern at
 * @pat. Only its first RW_FILTER_MAX_STRING bytes are looked at. Out of
 * line: the evaluator stays small. */
static __attribute__((noinline)) bool str_match(const uint8_t *pat,
						const char *str)
{
	size_t m = (size_t)pat[0] | (size_t)pat[1] << 8, n = 0;
	const unsigned char *s = (const unsigned char *)str;
	const uint8_t *p = pat + PAT_HDR;

	if (!s)
		return false;
	if (!pat[2]) {
		/* No wildcard: at most m + 1 bytes of the subject are read
		 * (the pattern has no NUL, so a shorter subject differs at
		 * its NUL). */
		for (size_t i = 0; i < m; i++)
			if (s[i] != p[i])
				return false;
		return m == RW_FILTER_MAX_STRING || s[m] == '\0';
	}
	while (n < RW_FILTER_MAX_STRING && s[n])
		n++;
	return glob(p, p + m, m, s, n);
}

static double as_double(uint64_t bits)
{
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

/* The values are read through this type: the caller's array may be of
 * another type of the same bits (union rw_tp_value in the probe). */
typedef uint64_t __attribute__((may_alias)) value_bits;

bool rw_filter_eval(const struct rw_filter *f, const uint64_t *values)
{
	/* Threaded code: each instruction jumps to the next one's handler
	 * (a load and an indirect jump, no bounds check: op is always one
	 * of these, written by the compiler). In enum op's order. */
	static const void *const ops[] = {
		&&op_const,  &&op_nz,	  &&op_z,    &&op_nz_f, &&op_eq,
		&&op_ne,     &&op_lt_s,	  &&op_le_s, &&op_gt_s, &&op_ge_s,
		&&op_lt_u,   &&op_le_u,	  &&op_gt_u, &&op_ge_u, &&op_eq_f,
		&&op_ne_f,   &&op_lt_f,	  &&op_le_f, &&op_gt_f, &&op_ge_f,
		&&op_str_eq, &&op_str_ne, &&op_not,  &&op_jf,	&&op_jt,
	};
	const value_bits *args = (const value_bits *)values;
	const struct insn *in = f->code, *end = f->code + f->n;
	const uint8_t *pool = (const uint8_t *)end;
	bool acc = true;

#define NEXT()                      \
	do {                        \
		if (++in == end)    \
			return acc; \
		goto *ops[in->op];  \
	} while (0)
#define ARG (args[in->arg])
#define ARG_F (as_double(args[in->arg]))
#define IMM_F (as_double(in->imm))

	if (in == end)
		return acc;
	goto *ops[in->op];
op_const:
	acc = in->imm != 0;
	NEXT();
op_nz:
	acc = ARG != 0;
	NEXT();
op_z:
	acc = ARG == 0;
	NEXT();
op_nz_f:
	acc = ARG_F != 0.0;
	NEXT();
op_eq:
	acc = ARG == in->imm;
	NEXT();
op_ne:
	acc = ARG != in->imm;
	NEXT();
op_lt_s:
	acc = (int64_t)ARG < (int64_t)in->imm;
	NEXT();
op_le_s:
	acc = (int64_t)ARG <= (int64_t)in->imm;
	NEXT();
op_gt_s:
	acc = (int64_t)ARG > (int64_t)in->imm;
	NEXT();
op_ge_s:
	acc = (int64_t)ARG >= (int64_t)in->imm;
	NEXT();
op_lt_u:
	acc = ARG < in->imm;
	NEXT();
op_le_u:
	acc = ARG <= in->imm;
	NEXT();
op_gt_u:
	acc = ARG > in->imm;
	NEXT();
op_ge_u:
	acc = ARG >= in->imm;
	NEXT();
op_eq_f:
	acc = ARG_F == IMM_F;
	NEXT();
op_ne_f:
	acc = ARG_F != IMM_F;
	NEXT();
op_lt_f:
	acc = ARG_F < IMM_F;
	NEXT();
op_le_f:
	acc = ARG_F <= IMM_F;
	NEXT();
op_gt_f:
	acc = ARG_F > IMM_F;
	NEXT();
op_ge_f:
	acc = ARG_F >= IMM_F;
	NEXT();
op_str_eq:
	acc = str_match(pool + in->aux, (const char *)(uintptr_t)ARG);
	NEXT();
op_str_ne:
	acc = !str_match(pool + in->aux, (const char *)(uintptr_t)ARG);
	NEXT();
op_not:
	acc = !acc;
	NEXT();
op_jf:
	if (acc)
		NEXT();
	goto jump;
op_jt:
	if (!acc)
		NEXT();
jump:
	/* Forward only: the program ends. */
	in = f->code + in->aux;
	if (in == end)
		return acc;
	goto *ops[in->op];
#undef NEXT
#undef ARG
#undef ARG_F
#undef IMM_F
}
_Static_assert(OP_JT == 24, "rw_filter_eval()'s table follows enum op");

void rw_filter_free(struct rw_filter *f)
{
	free(f);
}

/* --- Lexer ---------------------------------------------------------------- */

enum tk {
	T_END,
	T_IDENT,
	T_INT,
	T_FLOAT,
	T_STR,
	T_TRUE,
	T_FALSE,
	T_LP,
	T_RP,
	T_NOT,
	T_AND,
	T_OR,
	T_EQ,
	T_NE,
	T_LT,
	T_LE,
	T_GT,
	T_GE,
	T_MINUS,
};

struct tok {
	enum tk k;
	size_t at, len; /* in the expression */
	uint64_t u;	/* T_INT: the magnitude */
	double f;	/* T_FLOAT */
};

/* The compiler's state. */
struct cc {
	const char *s;
	size_t len, pos;
	struct tok tok;
	/* T_STR's bytes, unescaped, and which of them are wildcards. */
	size_t slen;
	bool swild;
	uint8_t sbuf[RW_FILTER_MAX_STRING];
	uint8_t sw[RW_FILTER_MAX_STRING];

	const struct rw_filter_field *fields;
	unsigned nfields;
	bool check; /* rw_filter_check(): no code, no kinds */

	struct insn *code; /* NULL when checking */
	size_t n, cap;
	uint8_t *pool;
	size_t pool_n, pool_cap;
	unsigned depth, tests;
	locale_t loc;
	struct rw_filter_error *err;
};

static int fail(struct cc *c, int e, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct cc *c, int e, size_t at, const char *fmt, ...)
{
	va_list ap;

	if (c->err) {
		c->err->column = (unsigned)at + 1;
		va_start(ap, fmt);
		vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
		va_end(ap);
	}
	return e;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
	       ch == '\f' || ch == '\v';
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       ch == '_';
}

static int hexval(char ch)
{
	if (is_digit(ch))
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* "'text'" of the token at @at, or a description of an odd byte. */
static const char *tok_text(const struct cc *c, const struct tok *t, char *buf,
			    size_t size)
{
	if (t->k == T_END)
		return "end of the expression";
	snprintf(buf, size, "'%.*s%s'", t->len > 24 ? 24 : (int)t->len,
		 c->s + t->at, t->len > 24 ? "..." : "");
	return buf;
}

static int unexpected(struct cc *c, const char *expected)
{
	char buf[40];

	return fail(c, -EINVAL, c->tok.at, "unexpected %s: expected %s",
		    tok_text(c, &c->tok, buf, sizeof(buf)), expected);
}

static int lex_number(struct cc *c, size_t at)
{
	const char *s = c->s;
	bool hex = s[at] == '0' && (s[at + 1] == 'x' || s[at + 1] == 'X');
	bool fl = false;
	size_t p = at, n;
	uint64_t u = 0;

	while (p < c->len &&
	       (is_alpha(s[p]) || is_digit(s[p]) || s[p] == '.')) {
		if (!hex && (s[p] == 'e' || s[p] == 'E')) {
			fl = true;
			if (s[p + 1] == '+' || s[p + 1] == '-')
				p++;
		}
		if (s[p] == '.')
			fl = true;
		p++;
	}
	n = p - at;
	c->pos = p;
	c->tok.len = n;
	if (hex) {
		if (n == 2)
			goto bad;
		for (size_t i = at + 2; i < p; i++) {
			int d = hexval(s[i]);

			if (d < 0)
				goto bad;
			if (u >> 60)
				return fail(c, -EINVAL, at,
					    "integer out of range (above "
					    "2^64-1)");
			u = u << 4 | (uint64_t)d;
		}
		c->tok.k = T_INT;
		c->tok.u = u;
		return 0;
	}
	if (fl) {
		char buf[64];
		char *end;
		double d;

		if (n >= sizeof(buf))
			goto bad;
		memcpy(buf, s + at, n);
		buf[n] = '\0';
		/* The C locale's decimal point, whatever the process's
		 * locale says. */
		if (!c->loc) {
			c->loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
			if (!c->loc)
				return fail(c, -ENOMEM, at, "out of memory");
		}
		errno = 0;
		d = strtod_l(buf, &end, c->loc);
		if (end != buf + n || !(is_digit(buf[0]) || buf[0] == '.'))
			goto bad;
		if (errno == ERANGE && (d > DBL_MAX || d < -DBL_MAX))
			return fail(c, -EINVAL, at,
				    "floating-point number out of range");
		c->tok.k = T_FLOAT;
		c->tok.f = d;
		return 0;
	}
	for (size_t i = at; i < p; i++) {
		if (!is_digit(s[i]))
			goto bad;
		if (u > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return fail(c, -EINVAL, at,
				    "integer out of range (above 2^64-1)");
		u = u * 10 + (uint64_t)(s[i] - '0');
	}
	if (n > 1 && s[at] == '0')
		return fail(c, -EINVAL, at,
			    "'%.*s': a leading zero is not allowed (no octal; "
			    "write 0x... for hexadecimal)",
			    n > 24 ? 24 : (int)n, s + at);
	c->tok.k = T_INT;
	c->tok.u = u;
	return 0;
bad:
	return fail(c, -EINVAL, at, "invalid number '%.*s%s'",
		    n > 24 ? 24 : (int)n, s + at, n > 24 ? "..." : "");
}

static int lex_string(struct cc *c, size_t at)
{
	const char *s = c->s;
	char q = s[at];
	size_t p = at + 1;

	c->slen = 0;
	c->swild = false;
	for (;;) {
		uint8_t ch, wild = 0;
		size_t esc = p;

		if (p >= c->len)
			return fail(c, -EINVAL, at,
				    "unterminated string: the %s opened here "
				    "is never closed",
				    q == '"' ? "\"" : "'");
		ch = (uint8_t)s[p++];
		if (ch == (uint8_t)q)
			break;
		if (ch == '*') {
			wild = 1;
		} else if (ch == '\\') {
			int h, l;

			if (p >= c->len)
				return fail(c, -EINVAL, at,
					    "unterminated string: the %s "
					    "opened here is never closed",
					    q == '"' ? "\"" : "'");
			switch (s[p++]) {
			case '\\':
				ch = '\\';
				break;
			case '"':
				ch = '"';
				break;
			case '\'':
				ch = '\'';
				break;
			case '*':
				ch = '*';
				break;
			case 'n':
				ch = '\n';
				break;
			case 't':
				ch = '\t';
				break;
			case 'r':
				ch = '\r';
				break;
			case 'x':
				h = p < c->len ? hexval(s[p]) : -1;
				l = h >= 0 && p + 1 < c->len ? hexval(s[p + 1])
							     : -1;
				if (h < 0 || l < 0)
					return fail(c, -EINVAL, esc,
						    "\\x needs two hexadecimal "
						    "digits");
				p += 2;
				ch = (uint8_t)(h << 4 | l);
				if (!ch)
					return fail(c, -EINVAL, esc,
						    "a string cannot hold a "
						    "NUL byte");
				break;
			default:
				if (s[p - 1] > ' ' && s[p - 1] < 0x7f)
					return fail(c, -EINVAL, esc,
						    "unknown escape '\\%c' "
						    "(known: \\\\ \\\" \\' "
						    "\\* \\n \\t \\r \\xHH)",
						    s[p - 1]);
				return fail(c, -EINVAL, esc,
					    "unknown escape (known: \\\\ \\\" "
					    "\\' \\* \\n \\t \\r \\xHH)");
			}
		}
		if (c->slen == RW_FILTER_MAX_STRING)
			return fail(c, -E2BIG, at,
				    "string longer than %u bytes (the longest "
				    "a record holds)",
				    RW_FILTER_MAX_STRING);
		c->sbuf[c->slen] = ch;
		c->sw[c->slen++] = wild;
		c->swild |= wild;
	}
	c->pos = p;
	c->tok.k = T_STR;
	c->tok.len = p - at;
	return 0;
}

/* The next token into c->tok. */
static int lex(struct cc *c)
{
	const char *s = c->s;
	size_t at;
	char ch, nx;

	while (c->pos < c->len && is_space(s[c->pos]))
		c->pos++;
	at = c->pos;
	c->tok.at = at;
	c->tok.len = 1;
	if (at >= c->len) {
		c->tok.k = T_END;
		c->tok.len = 0;
		return 0;
	}
	ch = s[at];
	nx = at + 1 < c->len ? s[at + 1] : '\0';
	if (is_alpha(ch)) {
		size_t p = at;

		while (p < c->len && (is_alpha(s[p]) || is_digit(s[p])))
			p++;
		c->pos = p;
		c->tok.len = p - at;
		c->tok.k = T_IDENT;
		if (c->tok.len == 4 && !memcmp(s + at, "true", 4))
			c->tok.k = T_TRUE;
		else if (c->tok.len == 5 && !memcmp(s + at, "false", 5))
			c->tok.k = T_FALSE;
		return 0;
	}
	if (is_digit(ch) || (ch == '.' && is_digit(nx)))
		return lex_number(c, at);
	if (ch == '"' || ch == '\'')
		return lex_string(c, at);
	c->pos = at + 1;
	switch (ch) {
	case '(':
		c->tok.k = T_LP;
		return 0;
	case ')':
		c->tok.k = T_RP;
		return 0;
	case '-':
		c->tok.k = T_MINUS;
		return 0;
	case '!':
		c->tok.k = nx == '=' ? T_NE : T_NOT;
		break;
	case '<':
		c->tok.k = nx == '=' ? T_LE : T_LT;
		break;
	case '>':
		c->tok.k = nx == '=' ? T_GE : T_GT;
		break;
	case '=':
		if (nx != '=')
			return fail(c, -EINVAL, at,
				    "'=' is not an operator: write '==' to "
				    "compare");
		c->tok.k = T_EQ;
		break;
	case '&':
		if (nx != '&')
			return fail(c, -EINVAL, at,
				    "'&' is not an operator: write '&&' (there "
				    "are no bitwise operators)");
		c->tok.k = T_AND;
		break;
	case '|':
		if (nx != '|')
			return fail(c, -EINVAL, at,
				    "'|' is not an operator: write '||' (there "
				    "are no bitwise operators)");
		c->tok.k = T_OR;
		break;
	default:
		if (ch > ' ' && ch < 0x7f)
			return fail(c, -EINVAL, at, "unexpected character '%c'",
				    ch);
		return fail(c, -EINVAL, at, "unexpected byte 0x%02x",
			    (unsigned char)ch);
	}
	/* The two-byte operators. */
	if (c->tok.k == T_NE || c->tok.k == T_LE || c->tok.k == T_GE ||
	    c->tok.k == T_EQ || c->tok.k == T_AND || c->tok.k == T_OR) {
		c->pos = at + 2;
		c->tok.len = 2;
	}
	return 0;
}

/* --- Code ----------------------------------------------------------------- */

/* Appends an instruction; its index in *@idx (may be NULL). Checking
 * emits nothing. */
static int emit(struct cc *c, enum op op, unsigned arg, uint32_t aux,
		uint64_t imm, size_t *idx)
{
	if (idx)
		*idx = c->n;
	if (!c->code)
		return 0;
	/* Never: an instruction per byte of the expression at most. */
	if (c->n == c->cap)
		return fail(c, -E2BIG, c->tok.at, "expression too complex");
	c->code[c->n++] =
		(struct insn){ (uint8_t)op, 0, (uint16_t)arg, aux, imm };
	return 0;
}

/* Points the jumps chained from @head (index + 1, chained through aux)
 * at the next instruction. */
static void patch(struct cc *c, size_t head)
{
	while (c->code && head) {
		struct insn *in = &c->code[head - 1];

		head = in->aux;
		in->aux = (uint32_t)c->n;
	}
}

/* --- Parser --------------------------------------------------------------- */

enum okind { O_FIELD, O_INT, O_FLOAT, O_STR, O_BOOL };

struct operand {
	enum okind k;
	size_t at, len;
	unsigned field; /* O_FIELD */
	int kind;	/* O_FIELD: RW_TRACE_KIND_* */
	__int128 i;	/* O_INT, O_BOOL */
	double f;	/* O_FLOAT */
	size_t slen;	/* O_STR */
	bool swild;
	uint8_t s[RW_FILTER_MAX_STRING];
	uint8_t w[RW_FILTER_MAX_STRING];
};

/* Optimal string alignment distance, ASCII case folded; SIZE_MAX when a
 * name is too long to bother. */
static size_t distance(const char *a, size_t n, const char *b, size_t m)
{
	size_t rows[3][65], *pp, *p, *cur, best;

	if (n > 64 || m > 64)
		return SIZE_MAX;
	pp = rows[0];
	p = rows[1];
	cur = rows[2];
	for (size_t j = 0; j <= m; j++)
		p[j] = j;
	for (size_t i = 1; i <= n; i++) {
		size_t *t;

		cur[0] = i;
		for (size_t j = 1; j <= m; j++) {
			char x = a[i - 1], y = b[j - 1];
			size_t cost;

			if (x >= 'A' && x <= 'Z')
				x = (char)(x - 'A' + 'a');
			if (y >= 'A' && y <= 'Z')
				y = (char)(y - 'A' + 'a');
			cost = x != y;
			best = p[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (p[j - 1] + cost < best)
				best = p[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < best)
				best = pp[j - 2] + 1;
			cur[j] = best;
		}
		t = pp;
		pp = p;
		p = cur;
		cur = t;
	}
	return p[m];
}

static int unknown_field(struct cc *c, const struct tok *t)
{
	const char *name = c->s + t->at;
	int nl = t->len > 40 ? 40 : (int)t->len;
	const char *more = t->len > 40 ? "..." : "";
	size_t best = SIZE_MAX, limit = t->len / 3 > 1 ? t->len / 3 : 1;
	const char *sug = NULL;
	char list[120];
	size_t ll = 0;

	for (unsigned i = 0; i < c->nfields; i++) {
		const char *fn = c->fields[i].name;
		size_t d;

		if (!fn)
			continue;
		d = distance(name, t->len, fn, strlen(fn));
		if (d <= limit && d < best) {
			best = d;
			sug = fn;
		}
		if (ll < sizeof(list) - 1) {
			int w = snprintf(list + ll, sizeof(list) - ll, "%s%s",
					 ll ? ", " : "", fn);

			ll = w < 0 ? sizeof(list) - 1 : ll + (size_t)w;
		}
	}
	if (sug)
		return fail(c, -ENOENT, t->at,
			    "no field '%.*s%s'; did you mean '%.40s'?", nl,
			    name, more, sug);
	if (!ll)
		return fail(c, -ENOENT, t->at,
			    "no field '%.*s%s': the tracepoint has no fields",
			    nl, name, more);
	if (ll >= sizeof(list) - 1)
		memcpy(list + sizeof(list) - 5, "...", 4);
	return fail(c, -ENOENT, t->at, "no field '%.*s%s' (fields: %s)", nl,
		    name, more, list);
}

static int parse_operand(struct cc *c, struct operand *o)
{
	int e = 0;

	o->at = c->tok.at;
	o->len = c->tok.len;
	switch (c->tok.k) {
	case T_IDENT:
		o->k = O_FIELD;
		o->field = 0;
		o->kind = -1;
		if (c->fields || !c->check) {
			unsigned i;

			for (i = 0; i < c->nfields; i++)
				if (c->fields[i].name &&
				    strlen(c->fields[i].name) == c->tok.len &&
				    !memcmp(c->fields[i].name, c->s + c->tok.at,
					    c->tok.len))
					break;
			if (i == c->nfields)
				return unknown_field(c, &c->tok);
			o->field = i;
			o->kind = c->fields[i].kind;
		}
		break;
	case T_INT:
		o->k = O_INT;
		o->i = (__int128)c->tok.u;
		break;
	case T_FLOAT:
		o->k = O_FLOAT;
		o->f = c->tok.f;
		break;
	case T_MINUS:
		e = lex(c);
		if (e)
			return e;
		if (c->tok.k == T_INT) {
			if (c->tok.u > (uint64_t)1 << 63)
				return fail(c, -EINVAL, o->at,
					    "integer out of range (below "
					    "-2^63)");
			o->k = O_INT;
			o->i = -(__int128)c->tok.u;
		} else if (c->tok.k == T_FLOAT) {
			o->k = O_FLOAT;
			o->f = -c->tok.f;
		} else {
			return fail(c, -EINVAL, o->at,
				    "'-' goes only before a number");
		}
		o->len = c->tok.at + c->tok.len - o->at;
		break;
	case T_STR:
		o->k = O_STR;
		o->slen = c->slen;
		o->swild = c->swild;
		memcpy(o->s, c->sbuf, c->slen);
		memcpy(o->w, c->sw, c->slen);
		break;
	case T_TRUE:
	case T_FALSE:
		o->k = O_BOOL;
		o->i = c->tok.k == T_TRUE;
		break;
	case T_END: {
		size_t p = 0;

		while (p < c->len && is_space(c->s[p]))
			p++;
		if (p == c->len)
			return fail(c, -EINVAL, 0, "empty filter expression");
		return unexpected(c, "a field, a value, '!' or '('");
	}
	default:
		return unexpected(c, "a field, a value, '!' or '('");
	}
	return lex(c);
}

static enum tk flip(enum tk op)
{
	switch (op) {
	case T_LT:
		return T_GT;
	case T_LE:
		return T_GE;
	case T_GT:
		return T_LT;
	case T_GE:
		return T_LE;
	default:
		return op;
	}
}

static const char *value_name(enum okind k)
{
	switch (k) {
	case O_INT:
		return "an integer";
	case O_FLOAT:
		return "a floating-point number";
	case O_STR:
		return "a string";
	case O_BOOL:
		return "a bool";
	default:
		return "a field";
	}
}

/* Field @o compared by @op with the integer @v, in the field's range
 * [lo, hi]: a constant when @v is outside it. */
static int cmp_int(struct cc *c, const struct operand *o, enum tk op,
		   __int128 v, __int128 lo, __int128 hi, bool sig)
{
	static const enum op s_ops[] = { OP_LT_S, OP_LE_S, OP_GT_S, OP_GE_S };
	static const enum op u_ops[] = { OP_LT_U, OP_LE_U, OP_GT_U, OP_GE_U };
	bool below = v<lo, above = v> hi;

	if (below || above) {
		bool r;

		switch (op) {
		case T_EQ:
			r = false;
			break;
		case T_NE:
			r = true;
			break;
		case T_LT:
		case T_LE:
			r = above;
			break;
		default:
			r = below;
			break;
		}
		return emit(c, OP_CONST, 0, 0, r, NULL);
	}
	if (op == T_EQ || op == T_NE)
		return emit(c, op == T_EQ ? OP_EQ : OP_NE, o->field, 0,
			    (uint64_t)v, NULL);
	return emit(c, (sig ? s_ops : u_ops)[op - T_LT], o->field, 0,
		    (uint64_t)v, NULL);
}

/* A double rounded toward zero, clamped far outside every field's
 * range. */
static __int128 clamp(double d)
{
	if (d >= 0x1p65)
		return (__int128)1 << 65;
	if (d <= -0x1p65)
		return -((__int128)1 << 65);
	return (__int128)d;
}

static int cmp_field(struct cc *c, const struct operand *o, enum tk op,
		     size_t opat, const struct operand *v)
{
	static const enum op f_ops[] = { OP_EQ_F, OP_NE_F, OP_LT_F,
					 OP_LE_F, OP_GT_F, OP_GE_F };
	__int128 lo = 0, hi = 0, t;
	uint64_t bits;
	bool sig;
	double d;
	int nl = o->len > 40 ? 40 : (int)o->len;
	const char *name = c->s + o->at;

	switch (o->kind) {
	case K_STRING:
		if (v->k != O_STR)
			return fail(c, -EINVAL, v->at,
				    "type mismatch: '%.*s' is a string field, "
				    "compared with %s (write %.*s == \"...\")",
				    nl, name, value_name(v->k), nl, name);
		if (op != T_EQ && op != T_NE)
			return fail(c, -EINVAL, opat,
				    "strings compare only with == and != "
				    "('*' is a wildcard)");
		if (c->code) {
			size_t need = PAT_HDR + v->slen * (v->swild ? 2 : 1);
			uint8_t *p = c->pool + c->pool_n;

			if (need > c->pool_cap - c->pool_n)
				return fail(c, -E2BIG, v->at,
					    "expression too complex");
			p[0] = (uint8_t)v->slen;
			p[1] = (uint8_t)(v->slen >> 8);
			p[2] = v->swild;
			memcpy(p + PAT_HDR, v->s, v->slen);
			if (v->swild)
				memcpy(p + PAT_HDR + v->slen, v->w, v->slen);
			c->pool_n += need;
			return emit(c, op == T_EQ ? OP_STR_EQ : OP_STR_NE,
				    o->field, (uint32_t)(p - c->pool), 0, NULL);
		}
		return 0;
	case K_BOOL:
		if (v->k != O_BOOL &&
		    !(v->k == O_INT && (v->i == 0 || v->i == 1)))
			return fail(c, -EINVAL, v->at,
				    "type mismatch: '%.*s' is a bool field, "
				    "compared with %s (write true, false, 0 "
				    "or 1)",
				    nl, name,
				    v->k == O_INT ? "an integer other than 0 "
						    "and 1"
						  : value_name(v->k));
		if (op != T_EQ && op != T_NE)
			return fail(c, -EINVAL, opat,
				    "bools compare only with == and !=");
		return emit(c, (op == T_EQ) == (v->i != 0) ? OP_NZ : OP_Z,
			    o->field, 0, 0, NULL);
	case K_SIGNED:
	case K_UNSIGNED:
	case K_POINTER:
		if (o->kind == K_POINTER && (v->k != O_INT || v->i < 0))
			return fail(c, -EINVAL, v->at,
				    "type mismatch: '%.*s' is a pointer field, "
				    "compared with %s (write an address: a "
				    "non-negative integer, e.g. 0x7f0012345678 "
				    "or 0 for NULL)",
				    nl, name,
				    v->k == O_INT ? "a negative integer"
						  : value_name(v->k));
		if (v->k != O_INT && v->k != O_FLOAT)
			return fail(
				c, -EINVAL, v->at,
				"type mismatch: '%.*s' is an integer field, "
				"compared with %s",
				nl, name, value_name(v->k));
		if (o->kind == K_SIGNED) {
			lo = -((__int128)1 << 63);
			hi = ((__int128)1 << 63) - 1;
		} else {
			lo = 0;
			hi = ((__int128)1 << 64) - 1;
		}
		if (v->k == O_INT)
			return cmp_int(c, o, op, v->i, lo, hi,
				       o->kind == K_SIGNED);
		d = v->f;
		t = clamp(d);
		sig = o->kind == K_SIGNED;
		if ((double)t == d || d >= 0x1p64 || d <= -0x1p64)
			return cmp_int(c, o, op, t, lo, hi, sig);
		/* Between two integers (t is d rounded toward zero): never
		 * equal; x < 2.5 is x <= 2, x > 2.5 is x >= 3, x < -2.5 is
		 * x <= -3. */
		switch (op) {
		case T_EQ:
		case T_NE:
			return emit(c, OP_CONST, 0, 0, op == T_NE, NULL);
		case T_LT:
		case T_LE:
			return cmp_int(c, o, T_LE, d < 0 ? t - 1 : t, lo, hi,
				       sig);
		default:
			return cmp_int(c, o, T_GE, d > 0 ? t + 1 : t, lo, hi,
				       sig);
		}
	case K_FLOAT:
		if (v->k != O_INT && v->k != O_FLOAT)
			return fail(c, -EINVAL, v->at,
				    "type mismatch: '%.*s' is a floating-point "
				    "field, compared with %s",
				    nl, name, value_name(v->k));
		d = v->k == O_INT ? (double)v->i : v->f;
		memcpy(&bits, &d, sizeof(bits));
		return emit(c, f_ops[op - T_EQ], o->field, 0, bits, NULL);
	default:
		return fail(c, -EINVAL, o->at,
			    "field '%.*s' has an unknown kind (%d)", nl, name,
			    o->kind);
	}
}

static int parse_test(struct cc *c)
{
	struct operand a, b;
	enum tk op;
	size_t opat;
	int e;

	e = parse_operand(c, &a);
	if (e)
		return e;
	if (++c->tests > RW_FILTER_MAX_TESTS)
		return fail(c, -E2BIG, a.at, "more than %u tests",
			    RW_FILTER_MAX_TESTS);
	op = c->tok.k;
	if (op < T_EQ || op > T_GE) {
		/* A field on its own. */
		if (a.k != O_FIELD)
			return fail(c, -EINVAL, a.at,
				    "%s alone is not a test: compare a field "
				    "with it",
				    value_name(a.k));
		if (c->check)
			return 0;
		if (a.kind == K_STRING)
			return fail(c, -EINVAL, a.at,
				    "'%.*s' is a string field: compare it "
				    "(%.*s == \"...\")",
				    (int)a.len, c->s + a.at, (int)a.len,
				    c->s + a.at);
		if (a.kind < K_SIGNED || a.kind > K_POINTER)
			return fail(c, -EINVAL, a.at,
				    "field '%.*s' has an unknown kind (%d)",
				    (int)a.len, c->s + a.at, a.kind);
		return emit(c, a.kind == K_FLOAT ? OP_NZ_F : OP_NZ, a.field, 0,
			    0, NULL);
	}
	opat = c->tok.at;
	e = lex(c);
	if (!e)
		e = parse_operand(c, &b);
	if (e)
		return e;
	if (a.k == O_FIELD && b.k == O_FIELD)
		return fail(c, -EINVAL, b.at,
			    "compares two fields: one side must be a value");
	if (a.k != O_FIELD && b.k != O_FIELD)
		return fail(c, -EINVAL, a.at,
			    "compares two values: one side must be a field");
	if (c->check)
		return 0;
	if (a.k == O_FIELD)
		return cmp_field(c, &a, op, opat, &b);
	return cmp_field(c, &b, flip(op), opat, &a);
}

static int parse_or(struct cc *c);

static int parse_unary(struct cc *c)
{
	size_t at = c->tok.at;
	int e;

	if (c->tok.k != T_NOT && c->tok.k != T_LP)
		return parse_test(c);
	if (++c->depth > RW_FILTER_MAX_DEPTH)
		return fail(c, -E2BIG, at,
			    "nested deeper than %u levels of '(' and '!'",
			    RW_FILTER_MAX_DEPTH);
	if (c->tok.k == T_NOT) {
		e = lex(c);
		if (!e)
			e = parse_unary(c);
		if (!e)
			e = emit(c, OP_NOT, 0, 0, 0, NULL);
	} else {
		e = lex(c);
		if (!e)
			e = parse_or(c);
		if (!e && c->tok.k != T_RP)
			e = c->tok.k == T_END
				    ? fail(c, -EINVAL, c->tok.at,
					   "missing ')' to close the '(' of "
					   "column %zu",
					   at + 1)
				    : unexpected(c, "'&&', '||' or ')'");
		if (!e)
			e = lex(c);
	}
	c->depth--;
	return e;
}

static int parse_and(struct cc *c)
{
	size_t chain = 0, idx;
	int e = parse_unary(c);

	while (!e && c->tok.k == T_AND) {
		e = emit(c, OP_JF, 0, (uint32_t)chain, 0, &idx);
		chain = idx + 1;
		if (!e)
			e = lex(c);
		if (!e)
			e = parse_unary(c);
	}
	if (!e)
		patch(c, chain);
	return e;
}

static int parse_or(struct cc *c)
{
	size_t chain = 0, idx;
	int e = parse_and(c);

	while (!e && c->tok.k == T_OR) {
		e = emit(c, OP_JT, 0, (uint32_t)chain, 0, &idx);
		chain = idx + 1;
		if (!e)
			e = lex(c);
		if (!e)
			e = parse_and(c);
	}
	if (!e)
		patch(c, chain);
	return e;
}

static int run(struct cc *c, const char *expr)
{
	int e;

	if (!expr)
		return fail(c, -EINVAL, (size_t)-1, "no filter expression");
	c->s = expr;
	c->len = strnlen(expr, RW_FILTER_MAX_EXPR + 1);
	if (c->len > RW_FILTER_MAX_EXPR)
		return fail(c, -E2BIG, RW_FILTER_MAX_EXPR,
			    "expression longer than %u bytes",
			    RW_FILTER_MAX_EXPR);
	if (c->nfields > UINT16_MAX)
		return fail(c, -E2BIG, (size_t)-1, "more than %u fields",
			    UINT16_MAX);
	e = lex(c);
	if (!e)
		e = parse_or(c);
	if (!e && c->tok.k != T_END)
		e = c->tok.k == T_RP
			    ? fail(c, -EINVAL, c->tok.at, "unmatched ')'")
			    : unexpected(c, "'&&', '||' or the end");
	return e;
}

int rw_filter_check(const char *expr, const struct rw_filter_field *fields,
		    unsigned nfields, struct rw_filter_error *err)
{
	struct cc c;
	int e;

	memset(&c, 0, sizeof(c));
	c.fields = fields;
	c.nfields = fields ? nfields : 0;
	c.check = true;
	c.err = err;
	if (err) {
		err->column = 0;
		err->msg[0] = '\0';
	}
	e = run(&c, expr);
	if (c.loc)
		freelocale(c.loc);
	return e;
}

int rw_filter_compile(const char *expr, const struct rw_filter_field *fields,
		      unsigned nfields, struct rw_filter **out,
		      struct rw_filter_error *err)
{
	struct rw_filter *f = NULL;
	struct cc c;
	size_t len;
	int e;

	memset(&c, 0, sizeof(c));
	if (err) {
		err->column = 0;
		err->msg[0] = '\0';
	}
	if (out)
		*out = NULL;
	c.err = err;
	if (!out || (!fields && nfields))
		return fail(&c, -EINVAL, (size_t)-1, "invalid arguments");
	c.fields = fields;
	c.nfields = nfields;
	/* At most one instruction per byte, and a pattern takes at most 3
	 * pool bytes per byte of the expression (its 2 quotes make the 3
	 * bytes of its header). */
	len = expr ? strnlen(expr, RW_FILTER_MAX_EXPR + 1) : 0;
	c.cap = len + 1;
	c.pool_cap = 3 * len + PAT_HDR;
	c.code = malloc(c.cap * sizeof(*c.code));
	c.pool = malloc(c.pool_cap);
	if (!c.code || !c.pool) {
		e = fail(&c, -ENOMEM, (size_t)-1, "out of memory");
		goto out;
	}
	e = run(&c, expr);
	if (e)
		goto out;
	f = malloc(sizeof(*f) + c.n * sizeof(struct insn) + c.pool_n);
	if (!f) {
		e = fail(&c, -ENOMEM, (size_t)-1, "out of memory");
		goto out;
	}
	f->n = (uint32_t)c.n;
	f->pool_size = (uint32_t)c.pool_n;
	memcpy(f->code, c.code, c.n * sizeof(struct insn));
	if (c.pool_n)
		memcpy(f->code + c.n, c.pool, c.pool_n);
	*out = f;
out:
	if (c.loc)
		freelocale(c.loc);
	free(c.code);
	free(c.pool);
	return e;
}
