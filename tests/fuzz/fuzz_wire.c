/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the control socket's wire format (src/ctl/wire.c).
 *
 * The input is a message: a 16-byte header and a payload. The header goes
 * through rw_wire_check_header(), the rest through rw_wire_check(). A
 * payload that passes is walked level by level with the iterator, every
 * accessor is called on every field, and what was read is written again
 * with the writer. The oracles (abort(), which libFuzzer reports as a
 * crash):
 *   - the accessors agree with the field's kind, a checked string has no
 *     NUL and copies back whole, rw_wire_find() finds the first field of
 *     each tag, the iterator ends exactly at its level's end;
 *   - the writer accepts what the checker accepted, and its output is
 *     byte for byte the input (the header too, when the header passed and
 *     its length is that of the rest);
 *   - the writer's output passes the checker again.
 * Any read out of bounds is ASan's to report.
 *
 * Built with libFuzzer (tests/fuzz/run_libfuzzer.sh) and, with the
 * standalone driver fuzz_driver.c, by every preset's compiler.
 */
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(what)                                                            \
	do {                                                                  \
		fprintf(stderr, "fuzz_wire: %s (line %d)\n", what, __LINE__); \
		abort();                                                      \
	} while (0)

/* Walk one level (@p, @n, iterated by @it) into @b. */
static void walk(struct rw_wire_buf *b, struct rw_wire_iter *it,
		 const uint8_t *p, size_t n, int depth)
{
	static char s[RW_WIRE_MAX_STR + 1];
	struct rw_wire_field f, first;
	struct rw_wire_iter sub;
	char small[4];
	uint64_t u, u2;
	int64_t i, i2;

	if (depth > RW_WIRE_MAX_DEPTH)
		FAIL("checked payload deeper than RW_WIRE_MAX_DEPTH");
	while (rw_wire_next(it, &f)) {
		if (f.data < p || f.len > n || f.data + f.len > p + n)
			FAIL("field outside its level");
		if (!rw_wire_find(p, n, f.tag, &first) || first.tag != f.tag ||
		    first.data > f.data)
			FAIL("rw_wire_find missed the first field of a tag");
		switch (f.kind) {
		case RW_WK_U64:
			if (f.len != 8 || !rw_wire_get_u64(&f, &u) ||
			    rw_wire_get_i64(&f, &i) ||
			    rw_wire_get_str(&f, s, sizeof(s)))
				FAIL("U64 accessors");
			if (first.data == f.data &&
			    (!rw_wire_find_u64(p, n, f.tag, &u2) || u2 != u))
				FAIL("rw_wire_find_u64");
			rw_wire_u64(b, f.tag, u);
			break;
		case RW_WK_I64:
			if (f.len != 8 || !rw_wire_get_i64(&f, &i) ||
			    rw_wire_get_u64(&f, &u) ||
			    rw_wire_get_str(&f, s, sizeof(s)))
				FAIL("I64 accessors");
			if (first.data == f.data &&
			    (!rw_wire_find_i64(p, n, f.tag, &i2) || i2 != i))
				FAIL("rw_wire_find_i64");
			rw_wire_i64(b, f.tag, i);
			break;
		case RW_WK_STR:
			if (f.len > RW_WIRE_MAX_STR ||
			    !rw_wire_get_str(&f, s, sizeof(s)) ||
			    rw_wire_get_u64(&f, &u) || rw_wire_get_i64(&f, &i))
				FAIL("STR accessors");
			if (strlen(s) != f.len || memcmp(s, f.data, f.len))
				FAIL("a checked string does not copy back whole");
			if (!rw_wire_get_str(&f, small, sizeof(small)) ||
			    strlen(small) != (f.len < 3 ? f.len : 3) ||
			    memcmp(small, f.data, strlen(small)))
				FAIL("rw_wire_get_str truncation");
			if (first.data == f.data &&
			    (!rw_wire_find_str(p, n, f.tag, small,
					       sizeof(small)) ||
			     strncmp(small, s, 3)))
				FAIL("rw_wire_find_str");
			rw_wire_strn(b, f.tag, s, f.len);
			break;
		case RW_WK_GROUP:
			if (rw_wire_get_u64(&f, &u) ||
			    rw_wire_get_i64(&f, &i) ||
			    rw_wire_get_str(&f, s, sizeof(s)))
				FAIL("GROUP accessors");
			rw_wire_group_begin(b, f.tag);
			rw_wire_iter_group(&sub, &f);
			walk(b, &sub, f.data, f.len, depth + 1);
			rw_wire_group_end(b);
			break;
		default:
			FAIL("checked payload with an unknown kind");
		}
	}
	if (it->p != it->end)
		FAIL("iterator stopped before its level's end");
}

/* A checked payload: walk it, write it again, compare. @hdr is the
 * input's header when it passed with the right length, else NULL. */
static void roundtrip(const uint8_t *hdr, uint16_t type, const uint8_t *p,
		      size_t n)
{
	struct rw_wire_buf b = { 0 };
	struct rw_wire_iter it;
	int err;

	rw_wire_begin(&b, type);
	rw_wire_iter_init(&it, p, n);
	walk(&b, &it, p, n, 0);
	err = rw_wire_finish(&b);
	if (err) {
		fprintf(stderr, "fuzz_wire: finish: %d\n", err);
		FAIL("the writer refused what the checker accepted");
	}
	if (b.len != RW_WIRE_HDR_SIZE + n ||
	    memcmp(b.data + RW_WIRE_HDR_SIZE, p, n))
		FAIL("re-encoded payload differs");
	if (hdr && memcmp(b.data, hdr, RW_WIRE_HDR_SIZE))
		FAIL("re-encoded header differs");
	if (rw_wire_check(b.data + RW_WIRE_HDR_SIZE, n))
		FAIL("re-encoded payload fails the check");
	rw_wire_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t type = 0;
	uint32_t len = 0;
	const uint8_t *p;
	size_t n;
	int hdr_ok;

	if (size < RW_WIRE_HDR_SIZE) {
		/* Too short for a header: a payload on its own. */
		if (rw_wire_check(data, size) == 0)
			roundtrip(NULL, 0, data, size);
		return 0;
	}
	hdr_ok = rw_wire_check_header(data, &type, &len) == 0;
	p = data + RW_WIRE_HDR_SIZE;
	n = size - RW_WIRE_HDR_SIZE;
	if (rw_wire_check(p, n) != 0)
		return 0;
	if (hdr_ok && len == n)
		roundtrip(data, type, p, n);
	else
		roundtrip(NULL, type, p, n);
	return 0;
}
