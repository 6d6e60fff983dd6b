/* SPDX-License-Identifier: MIT */
/*
 * Private: the event filters of `rewire trace --filter EXPR`
 * (src/ctl/filter.c). An expression is compiled once per tracepoint of a
 * session, against that tracepoint's fields, into a small program that the
 * probe runs on the event's arguments before it records anything. The
 * file stands alone (libc only): it is compiled into librewire, into the
 * rewire command (which checks an expression before it sends it) and into
 * the fuzzer.
 *
 * The language (LTTng's filter language, reduced to what a record holds):
 *
 *	expr	:= or
 *	or	:= and { "||" and }
 *	and	:= unary { "&&" unary }
 *	unary	:= "!" unary | "(" expr ")" | test
 *	test	:= operand [ cmp operand ]
 *	cmp	:= "==" | "!=" | "<" | "<=" | ">" | ">="
 *	operand	:= FIELD | ["-"] INTEGER | ["-"] FLOAT | STRING
 *		 | "true" | "false"
 *
 *   - FIELD is a field of the tracepoint, by the name in its definition.
 *     One side of every comparison is a field, the other a value. A field
 *     on its own is a test when it is not a string: bool, integers and
 *     pointers are true when nonzero, floats when not 0.0.
 *   - INTEGER: decimal (no leading zero), or hexadecimal (0x...), of
 *     -2^63 .. 2^64-1. FLOAT: C's decimal notation (1.5, .5, 2e-3); the
 *     C locale's, whatever the process's locale.
 *   - STRING: "..." or '...', with the escapes \\ \" \' \n \t \r \xHH and
 *     \*. A '*' is a wildcard that matches any run of bytes (LTTng's
 *     globbing), \* a literal star. No NUL; at most RW_FILTER_MAX_STRING
 *     bytes once unescaped.
 *   - "!" applies to the test or parenthesis that follows it: `!op ==
 *     "GET"` is `!(op == "GET")`. && binds tighter than ||; both stop
 *     early, as in C.
 *
 * Comparisons, by the kind of the field (RW_TRACE_KIND_* of ring.h):
 *
 *	signed, unsigned  integer or float values, all six operators, and
 *			  the mathematical result: an unsigned field is never
 *			  equal to -1 and always greater; x < 2.5 is x <= 2
 *	bool		  true, false, 0 or 1; == and != only
 *	float		  integer or float values, all six operators, IEEE
 *			  (a NaN field compares false, except with !=)
 *	string		  string values, == and != only; the field's first
 *			  RW_FILTER_MAX_STRING bytes are compared (what a
 *			  record holds); a NULL string equals nothing
 *	pointer		  non-negative integer values, all six operators
 *
 * Anything else is an error at compile time, with the 1-based column of
 * the offending token. Limits: expressions of at most RW_FILTER_MAX_EXPR
 * bytes, RW_FILTER_MAX_DEPTH levels of "(" and "!", RW_FILTER_MAX_TESTS
 * comparisons.
 *
 * The program: a flat array of instructions that compare one argument with
 * a constant into an accumulator, negate it, or jump forward on it (the
 * short circuit of && and ||). rw_filter_eval() runs it in one pass
 * without recursion, allocation, locks or system calls: it is
 * async-signal-safe and its time is bounded by the program's length (and,
 * for a string with wildcards, by RW_FILTER_MAX_STRING^2 byte steps).
 */
#ifndef REWIRE_CTL_FILTER_H
#define REWIRE_CTL_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#define RW_FILTER_MAX_EXPR 1024u
#define RW_FILTER_MAX_DEPTH 32u
#define RW_FILTER_MAX_TESTS 64u
/* The bytes of a string field that are compared: RW_TRACE_MAX_STRING, the
 * bytes a record holds (src/ctl/trace.c checks that they agree). */
#define RW_FILTER_MAX_STRING 256u

struct rw_filter;

struct rw_filter_field {
	const char *name;
	int kind; /* RW_TRACE_KIND_* of ring.h */
};

struct rw_filter_error {
	unsigned column; /* 1-based byte in the expression, 0 none */
	char msg[200];
};

/*
 * rw_filter_compile - compile @expr for a tracepoint whose arguments are
 * @fields (in the order of the values rw_filter_eval() gets).
 *
 * Return: 0 and the program in @out; or a negative errno, nothing in
 * @out, and the column and a message in @err (when not NULL):
 * -ENOENT, a name that is none of @fields (the message suggests the
 * closest one); -E2BIG, a limit above; -ENOMEM; -EINVAL, anything else:
 * a syntax error, a value out of range, or a type mismatch (a string
 * compared with an integer, ...).
 */
int rw_filter_compile(const char *expr, const struct rw_filter_field *fields,
		      unsigned nfields, struct rw_filter **out,
		      struct rw_filter_error *err);

/*
 * rw_filter_check - rw_filter_compile()'s syntax and name checks alone:
 * kinds are not looked at (so @fields may have the names of several
 * tracepoints), and @fields NULL accepts any name. Nothing is allocated.
 * Return: 0, or -EINVAL, -ENOENT or -E2BIG with @err as above.
 */
int rw_filter_check(const char *expr, const struct rw_filter_field *fields,
		    unsigned nfields, struct rw_filter_error *err);

/*
 * rw_filter_eval - whether an event whose arguments are @args passes.
 * @args[i]: the bits of union rw_tp_value of field i (strings: the
 * pointer, may be NULL). Only the fields the expression names are read.
 * Async-signal-safe, no allocation, bounded time.
 */
bool rw_filter_eval(const struct rw_filter *f, const uint64_t *args);

/* NULL is a no-op. */
void rw_filter_free(struct rw_filter *f);

#endif /* REWIRE_CTL_FILTER_H */
