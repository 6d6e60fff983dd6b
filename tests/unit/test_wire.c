/* SPDX-License-Identifier: MIT */
/*
 * The control socket's wire format (src/ctl/wire.c): the exact bytes, round
 * trips of every kind, the writer's limits and sticky errors, the checker's
 * refusals (depth, lengths, kinds, NULs, truncation at every offset, field
 * count, payload size), the iterator over unknown tags, the header checks,
 * and the transport over socketpairs: descriptor passing, extra
 * descriptors, partial reads and writes, EINTR, a peer closing at every
 * offset, timeouts over the whole message, and an over-limit length that
 * must be refused before anything is allocated.
 *
 * wire.c is compiled into this test (test_wire.cmake); malloc and realloc
 * are wrapped (ld --wrap) so that the test sees what it allocates and can
 * make an allocation fail. Payloads are checked in copies that end where
 * an inaccessible page begins, so that a read past the end faults in
 * every build. A descriptor is shown closed by the pipe trick: pass a
 * pipe's write end, close our own copy, and a read of the read end
 * returns 0 (EOF) only once every copy is closed.
 */
#include "check.h"
#include "wire.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* --- Allocation wrappers (linked with -Wl,--wrap=malloc,--wrap=realloc) */

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);

static _Atomic size_t largest_alloc;
static _Atomic int fail_allocs; /* fail the next N allocations */

static bool alloc_hook(size_t n)
{
	size_t cur = atomic_load(&largest_alloc);

	while (n > cur &&
	       !atomic_compare_exchange_weak(&largest_alloc, &cur, n))
		;
	if (atomic_load(&fail_allocs) > 0) {
		atomic_fetch_sub(&fail_allocs, 1);
		return false;
	}
	return true;
}

void *__wrap_malloc(size_t n)
{
	return alloc_hook(n) ? __real_malloc(n) : NULL;
}

void *__wrap_realloc(void *p, size_t n)
{
	return alloc_hook(n) ? __real_realloc(p, n) : NULL;
}

/* --- Helpers ----------------------------------------------------------- */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	CHECK(d != NULL);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A hand-made payload, for what the writer refuses to produce. */
static uint8_t raw[(RW_WIRE_MAX_PAYLOAD + 64) & ~7u];
static size_t raw_n;

static void raw_reset(void)
{
	raw_n = 0;
}

static void raw_bytes(const void *p, size_t n)
{
	CHECK(raw_n + n <= sizeof(raw));
	memcpy(raw + raw_n, p, n);
	raw_n += n;
}

static void raw_le(uint64_t v, int size)
{
	for (int i = 0; i < size; i++)
		raw[raw_n++] = (uint8_t)(v >> (8 * i));
}

/* A field header; returns its offset (for raw_patch_len). */
static size_t raw_field(uint16_t tag, uint16_t kind, uint32_t len)
{
	size_t at = raw_n;

	CHECK(raw_n + 8 <= sizeof(raw));
	raw_le(tag, 2);
	raw_le(kind, 2);
	raw_le(len, 4);
	return at;
}

static void raw_u64(uint16_t tag, uint64_t v)
{
	raw_field(tag, RW_WK_U64, 8);
	raw_le(v, 8);
}

/* Set the length of the field at @at to what follows it. */
static void raw_close(size_t at)
{
	uint32_t len = (uint32_t)(raw_n - at - 8);

	for (int i = 0; i < 4; i++)
		raw[at + 4 + i] = (uint8_t)(len >> (8 * i));
}

/* A copy of @n bytes that ends where an inaccessible page begins: any
 * read past its end faults, in every build (ASan or not). */
struct guarded {
	uint8_t *p;
	void *map;
	size_t maplen;
};

static struct guarded guard_copy(const void *p, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (n + page - 1) / page * page;
	struct guarded g;

	g.maplen = body + page;
	g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(g.map != MAP_FAILED);
	CHECK(mprotect((uint8_t *)g.map + body, page, PROT_NONE) == 0);
	g.p = (uint8_t *)g.map + body - n;
	if (n)
		memcpy(g.p, p, n);
	return g;
}

static void guard_free(struct guarded *g)
{
	CHECK(munmap(g->map, g->maplen) == 0);
}

/* rw_wire_check on a guarded copy. */
static int check_copy(const uint8_t *p, size_t n)
{
	struct guarded g = guard_copy(p, n);
	int ret = rw_wire_check(g.p, n);

	guard_free(&g);
	return ret;
}

static const uint8_t *payload(const struct rw_wire_buf *b)
{
	return b->data + RW_WIRE_HDR_SIZE;
}

static size_t payload_len(const struct rw_wire_buf *b)
{
	return b->len - RW_WIRE_HDR_SIZE;
}

/* A realistic LS reply: groups in groups, repeated tags, every kind. */
static void build_ls_reply(struct rw_wire_buf *b)
{
	rw_wire_begin(b, RW_MSG_OK);
	rw_wire_group_begin(b, RW_TAG_KEY);
	rw_wire_str(b, RW_TAG_NAME, "audit");
	rw_wire_str(b, RW_TAG_OBJECT, "/usr/bin/server");
	rw_wire_u64(b, RW_TAG_ENABLED, 1);
	rw_wire_i64(b, RW_TAG_COUNT, -1);
	rw_wire_u64(b, RW_TAG_SITES, 3);
	rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_CALL);
	rw_wire_str(b, RW_TAG_NAME, "checksum");
	rw_wire_str(b, RW_TAG_TARGET, "crc");
	rw_wire_str(b, RW_TAG_CANDIDATE, "sum");
	rw_wire_str(b, RW_TAG_CANDIDATE, "crc");
	rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_TRACEPOINT);
	rw_wire_str(b, RW_TAG_NAME, "req_done");
	rw_wire_group_begin(b, RW_TAG_FIELD);
	rw_wire_str(b, RW_TAG_NAME, "status");
	rw_wire_str(b, RW_TAG_CTYPE, "int");
	rw_wire_u64(b, RW_TAG_KIND, 2);
	rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_FIELD);
	rw_wire_str(b, RW_TAG_NAME, "path");
	rw_wire_str(b, RW_TAG_CTYPE, "const char *");
	rw_wire_u64(b, RW_TAG_KIND, 7);
	rw_wire_group_end(b);
	rw_wire_u64(b, RW_TAG_PROBES, 0);
	rw_wire_group_end(b);
	rw_wire_group_begin(b, RW_TAG_THREAD);
	rw_wire_u64(b, RW_TAG_TID, 4242);
	rw_wire_str(b, RW_TAG_NAME, "worker");
	rw_wire_str(b, RW_TAG_STATE, "S");
	rw_wire_group_end(b);
	rw_wire_str(b, RW_TAG_MESSAGE, "");
	CHECK_OK(rw_wire_finish(b));
}

/* True when every copy of the pipe's write end is closed. */
static bool writers_closed(int rfd)
{
	char c;
	ssize_t r;

	CHECK(fcntl(rfd, F_SETFL, O_NONBLOCK) == 0);
	r = read(rfd, &c, 1);
	if (r == 0)
		return true;
	CHECK(r < 0 && errno == EAGAIN);
	return false;
}

/* sendmsg all of @p, with @nfds descriptors on the first chunk. */
static void raw_send(int sock, const void *p, size_t n, const int *fds,
		     int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	size_t off = 0;

	CHECK(nfds <= 4);
	do {
		struct iovec iov = { .iov_base = (char *)p + off,
				     .iov_len = n - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t r;

		if (off == 0 && nfds > 0) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
			c = CMSG_FIRSTHDR(&mh);
			CHECK(c != NULL);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
			memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
		}
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		CHECK(r > 0 || (r == 0 && n == 0));
		off += (size_t)r;
	} while (off < n);
}

static void sockpair(int sv[2])
{
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
}

/* --- Encoding ---------------------------------------------------------- */

/* The bytes, exactly: header, field headers, little-endian values. */
static void test_golden(void)
{
	static const uint8_t want[] = {
		'R', 'W', 'C', '1', 1, 0, 3, 0, 50, 0, 0, 0, 0, 0, 0, 0,
		/* NAME "ab" */
		10, 0, 3, 0, 2, 0, 0, 0, 'a', 'b',
		/* VALUE u64 0x0102030405060708 */
		12, 0, 1, 0, 8, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1,
		/* KEY group { COUNT i64 -2 } */
		45, 0, 4, 0, 16, 0, 0, 0,
		/**/ 14, 0, 2, 0, 8, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff,
		/**/ 0xff, 0xff, 0xff
	};
	struct rw_wire_buf b = { 0 };
	uint16_t type;
	uint32_t len;

	rw_wire_begin(&b, RW_MSG_KEY);
	rw_wire_str(&b, RW_TAG_NAME, "ab");
	rw_wire_u64(&b, RW_TAG_VALUE, 0x0102030405060708ull);
	rw_wire_group_begin(&b, RW_TAG_KEY);
	rw_wire_i64(&b, RW_TAG_COUNT, -2);
	rw_wire_group_end(&b);
	CHECK_OK(rw_wire_finish(&b));
	CHECK_EQ(b.len, sizeof(want));
	CHECK(memcmp(b.data, want, sizeof(want)) == 0);
	CHECK_OK(rw_wire_check_header(b.data, &type, &len));
	CHECK_EQ(type, RW_MSG_KEY);
	CHECK_EQ(len, sizeof(want) - RW_WIRE_HDR_SIZE);
	CHECK_OK(rw_wire_check(payload(&b), payload_len(&b)));
	rw_wire_free(&b);
	CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
}

/* Every kind written and read back, in order, with every accessor. */
static void test_roundtrip(void)
{
	static const uint64_t u[] = { 0, 1, 0x8000000000000000ull, UINT64_MAX };
	static const int64_t s[] = { INT64_MIN, -1, 0, 1, INT64_MAX };
	static const char *strs[] = { "", "x", "hello, world", "\xff\x01" };
	struct rw_wire_buf b = { 0 };
	struct rw_wire_iter it, git;
	struct rw_wire_field f, g;
	char out[64];
	uint64_t uv;
	int64_t sv;
	size_t i;

	rw_wire_begin(&b, RW_MSG_OK);
	for (i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		rw_wire_u64(&b, (uint16_t)(100 + i), u[i]);
	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		rw_wire_i64(&b, (uint16_t)(200 + i), s[i]);
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		rw_wire_str(&b, (uint16_t)(300 + i), strs[i]);
	rw_wire_str(&b, 400, NULL);
	rw_wire_strn(&b, 401, "abcdef", 3);
	rw_wire_strn(&b, 402, NULL, 0);
	rw_wire_group_begin(&b, 500);
	rw_wire_u64(&b, 501, 7);
	rw_wire_group_begin(&b, 502);
	rw_wire_group_end(&b);
	rw_wire_str(&b, 503, "in");
	rw_wire_group_end(&b);
	rw_wire_u64(&b, 0xffff, 9);
	CHECK_OK(rw_wire_finish(&b));
	CHECK_OK(rw_wire_check(payload(&b), payload_len(&b)));

	rw_wire_iter_init(&it, payload(&b), payload_len(&b));
	for (i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		CHECK(rw_wire_next(&it, &f));
		CHECK_EQ(f.tag, 100 + i);
		CHECK_EQ(f.kind, RW_WK_U64);
		CHECK_EQ(f.len, 8);
		CHECK(rw_wire_get_u64(&f, &uv));
		CHECK(uv == u[i]);
		CHECK(!rw_wire_get_i64(&f, &sv));
		CHECK(!rw_wire_get_str(&f, out, sizeof(out)));
	}
	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		CHECK(rw_wire_next(&it, &f));
		CHECK_EQ(f.tag, 200 + i);
		CHECK_EQ(f.kind, RW_WK_I64);
		CHECK(rw_wire_get_i64(&f, &sv));
		CHECK(sv == s[i]);
		CHECK(!rw_wire_get_u64(&f, &uv));
		CHECK(!rw_wire_get_str(&f, out, sizeof(out)));
	}
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		CHECK(rw_wire_next(&it, &f));
		CHECK_EQ(f.tag, 300 + i);
		CHECK_EQ(f.kind, RW_WK_STR);
		CHECK_EQ(f.len, strlen(strs[i]));
		CHECK(rw_wire_get_str(&f, out, sizeof(out)));
		CHECK(strcmp(out, strs[i]) == 0);
		CHECK(!rw_wire_get_u64(&f, &uv));
		CHECK(!rw_wire_get_i64(&f, &sv));
	}
	CHECK(rw_wire_next(&it, &f));
	CHECK(f.tag == 400 && f.kind == RW_WK_STR && f.len == 0);
	CHECK(rw_wire_next(&it, &f));
	CHECK(f.tag == 401 && rw_wire_get_str(&f, out, sizeof(out)));
	CHECK(strcmp(out, "abc") == 0);
	CHECK(rw_wire_next(&it, &f));
	CHECK(f.tag == 402 && f.len == 0);
	CHECK(rw_wire_next(&it, &f));
	CHECK(f.tag == 500 && f.kind == RW_WK_GROUP);
	CHECK_EQ(f.len, 16 + 8 + 10);
	CHECK(!rw_wire_get_u64(&f, &uv) && !rw_wire_get_i64(&f, &sv));
	CHECK(!rw_wire_get_str(&f, out, sizeof(out)));
	rw_wire_iter_group(&git, &f);
	CHECK(rw_wire_next(&git, &g));
	CHECK(g.tag == 501 && rw_wire_get_u64(&g, &uv) && uv == 7);
	CHECK(rw_wire_next(&git, &g));
	CHECK(g.tag == 502 && g.kind == RW_WK_GROUP && g.len == 0);
	CHECK(rw_wire_next(&git, &g));
	CHECK(g.tag == 503 && rw_wire_get_str(&g, out, sizeof(out)));
	CHECK(strcmp(out, "in") == 0);
	CHECK(!rw_wire_next(&git, &g));
	CHECK(!rw_wire_next(&git, &g)); /* stays at the end */
	/* Finds at the group's level only. */
	CHECK(rw_wire_find_str(f.data, f.len, 503, out, sizeof(out)));
	CHECK(!rw_wire_find(payload(&b), payload_len(&b), 503, &g));
	/* A field that is not a group iterates as empty. */
	CHECK(rw_wire_next(&it, &f));
	CHECK(f.tag == 0xffff);
	rw_wire_iter_group(&git, &f);
	CHECK(!rw_wire_next(&git, &g));
	CHECK(!rw_wire_next(&it, &f));

	/* The shorthands: first match, absent, wrong kind. */
	CHECK(rw_wire_find_u64(payload(&b), payload_len(&b), 101, &uv));
	CHECK(uv == 1);
	CHECK(rw_wire_find_i64(payload(&b), payload_len(&b), 200, &sv));
	CHECK(sv == INT64_MIN);
	CHECK(rw_wire_find_str(payload(&b), payload_len(&b), 302, out,
			       sizeof(out)));
	CHECK(strcmp(out, "hello, world") == 0);
	CHECK(!rw_wire_find_u64(payload(&b), payload_len(&b), 200, &uv));
	CHECK(!rw_wire_find_i64(payload(&b), payload_len(&b), 100, &sv));
	CHECK(!rw_wire_find_str(payload(&b), payload_len(&b), 100, out,
				sizeof(out)));
	CHECK(!rw_wire_find(payload(&b), payload_len(&b), 999, &f));
	CHECK(!rw_wire_find_u64(payload(&b), payload_len(&b), 999, &uv));
	CHECK(!rw_wire_find(NULL, 0, 100, &f));
	rw_wire_iter_init(&it, NULL, 0);
	CHECK(!rw_wire_next(&it, &f));

	/* Repeated tags: the first one is found, the iterator sees all. */
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_str(&b, RW_TAG_CANDIDATE, "one");
	rw_wire_str(&b, RW_TAG_CANDIDATE, "two");
	CHECK_OK(rw_wire_finish(&b));
	CHECK(rw_wire_find_str(payload(&b), payload_len(&b), RW_TAG_CANDIDATE,
			       out, sizeof(out)));
	CHECK(strcmp(out, "one") == 0);
	rw_wire_free(&b);
}

/* Copies truncate and always terminate; size 0 writes nothing. */
static void test_get_str(void)
{
	struct rw_wire_buf b = { 0 };
	struct rw_wire_field f;
	char out[8];

	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_str(&b, 1, "hello");
	CHECK_OK(rw_wire_finish(&b));
	CHECK(rw_wire_find(payload(&b), payload_len(&b), 1, &f));
	memset(out, 'z', sizeof(out));
	CHECK(rw_wire_get_str(&f, out, 3));
	CHECK(strcmp(out, "he") == 0 && out[3] == 'z');
	CHECK(rw_wire_get_str(&f, out, 1));
	CHECK(out[0] == '\0' && out[1] == 'e');
	memset(out, 'z', sizeof(out));
	CHECK(rw_wire_get_str(&f, out, 0));
	CHECK(out[0] == 'z');
	CHECK(rw_wire_get_str(&f, out, 6));
	CHECK(strcmp(out, "hello") == 0);
	CHECK(rw_wire_get_str(&f, NULL, 0));
	rw_wire_free(&b);
}

/* Groups nest RW_WIRE_MAX_DEPTH deep, not one more: the writer refuses
 * the extra level, the checker rejects it; unbalanced groups are errors. */
static void test_depth(void)
{
	struct rw_wire_buf b = { 0 };
	struct rw_wire_iter it[RW_WIRE_MAX_DEPTH + 1];
	struct rw_wire_field f;
	size_t at[RW_WIRE_MAX_DEPTH + 1];
	uint64_t v;
	int d;

	rw_wire_begin(&b, RW_MSG_OK);
	for (d = 0; d < RW_WIRE_MAX_DEPTH; d++)
		rw_wire_group_begin(&b, (uint16_t)(10 + d));
	rw_wire_u64(&b, 99, 12345);
	for (d = 0; d < RW_WIRE_MAX_DEPTH; d++)
		rw_wire_group_end(&b);
	/* A sibling that closes several levels at once, then a field. */
	for (d = 0; d < RW_WIRE_MAX_DEPTH; d++)
		rw_wire_group_begin(&b, (uint16_t)(20 + d));
	for (d = 0; d < RW_WIRE_MAX_DEPTH; d++)
		rw_wire_group_end(&b);
	rw_wire_u64(&b, 98, 1);
	CHECK_OK(rw_wire_finish(&b));
	CHECK_OK(check_copy(payload(&b), payload_len(&b)));
	rw_wire_iter_init(&it[0], payload(&b), payload_len(&b));
	for (d = 0; d < RW_WIRE_MAX_DEPTH; d++) {
		CHECK(rw_wire_next(&it[d], &f));
		CHECK_EQ(f.tag, 10 + d);
		CHECK_EQ(f.kind, RW_WK_GROUP);
		rw_wire_iter_group(&it[d + 1], &f);
	}
	CHECK(rw_wire_next(&it[d], &f));
	CHECK(f.tag == 99 && rw_wire_get_u64(&f, &v) && v == 12345);
	CHECK(rw_wire_find_u64(payload(&b), payload_len(&b), 98, &v));

	/* One over: the writer's sticky -EINVAL. */
	rw_wire_begin(&b, RW_MSG_OK);
	for (d = 0; d <= RW_WIRE_MAX_DEPTH; d++)
		rw_wire_group_begin(&b, (uint16_t)(10 + d));
	CHECK_EQ(b.err, -EINVAL);
	for (d = 0; d <= RW_WIRE_MAX_DEPTH; d++)
		rw_wire_group_end(&b);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);

	/* Unbalanced: an end without a begin; a group left open. */
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_group_end(&b);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);
	rw_wire_begin(&b, RW_MSG_OK);
	CHECK_EQ(b.err, 0); /* begin clears the error */
	rw_wire_group_begin(&b, 1);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);
	rw_wire_free(&b);

	/* The checker: RW_WIRE_MAX_DEPTH nested groups pass, one more fails,
	 * wherever the deep one is. */
	for (int extra = 0; extra <= 1; extra++) {
		raw_reset();
		raw_u64(1, 1);
		for (d = 0; d < RW_WIRE_MAX_DEPTH + extra; d++)
			at[d] = raw_field((uint16_t)(10 + d), RW_WK_GROUP, 0);
		raw_u64(2, 2);
		while (d-- > 0)
			raw_close(at[d]);
		raw_u64(3, 3);
		CHECK_EQ(check_copy(raw, raw_n), extra ? -EPROTO : 0);
	}
	/* Empty groups count as levels too. */
	raw_reset();
	for (d = 0; d <= RW_WIRE_MAX_DEPTH; d++)
		at[d] = raw_field((uint16_t)(10 + d), RW_WK_GROUP, 0);
	while (d-- > 0)
		raw_close(at[d]);
	CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
}

/* Strings: RW_WIRE_MAX_STR bytes pass, one more does not; a NUL never. */
static void test_strings(void)
{
	static char s[RW_WIRE_MAX_STR + 2];
	static char out[RW_WIRE_MAX_STR + 1];
	struct rw_wire_buf b = { 0 };
	size_t at;

	memset(s, 'a', sizeof(s) - 1);
	s[RW_WIRE_MAX_STR] = '\0';
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_str(&b, 1, s);
	rw_wire_strn(&b, 2, s, RW_WIRE_MAX_STR);
	CHECK_OK(rw_wire_finish(&b));
	CHECK_OK(check_copy(payload(&b), payload_len(&b)));
	CHECK(rw_wire_find_str(payload(&b), payload_len(&b), 2, out,
			       sizeof(out)));
	CHECK(strcmp(out, s) == 0);

	s[RW_WIRE_MAX_STR] = 'a'; /* RW_WIRE_MAX_STR + 1 bytes */
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_str(&b, 1, s);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_strn(&b, 1, s, RW_WIRE_MAX_STR + 1);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_strn(&b, 1, s, SIZE_MAX);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);

	/* A NUL inside, or at the end of, the given length. */
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_strn(&b, 1, "a\0b", 3);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_strn(&b, 1, "ab", 3);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_strn(&b, 1, NULL, 1);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);
	rw_wire_free(&b);

	/* The checker. */
	raw_reset();
	raw_field(1, RW_WK_STR, RW_WIRE_MAX_STR);
	raw_bytes(s, RW_WIRE_MAX_STR);
	CHECK_EQ(check_copy(raw, raw_n), 0);
	raw_reset();
	raw_field(1, RW_WK_STR, RW_WIRE_MAX_STR + 1);
	raw_bytes(s, RW_WIRE_MAX_STR + 1);
	CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
	for (int pos = 0; pos < 3; pos++) {
		char v[3] = { 'x', 'y', 'z' };

		v[pos] = '\0';
		raw_reset();
		at = raw_field(5, RW_WK_GROUP, 0);
		raw_field(1, RW_WK_STR, 3);
		raw_bytes(v, 3);
		raw_close(at);
		CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
	}
}

/* Payload size and field count limits, for the writer and the checker. */
static void test_limits(void)
{
	static char s[RW_WIRE_MAX_STR + 1];
	struct rw_wire_buf b = { 0 };
	size_t i, big = (RW_WIRE_MAX_PAYLOAD / (8 + RW_WIRE_MAX_STR));
	size_t rest = RW_WIRE_MAX_PAYLOAD - big * (8 + RW_WIRE_MAX_STR) - 8;
	size_t at;

	/* Exactly RW_WIRE_MAX_PAYLOAD bytes of payload. */
	memset(s, 'q', RW_WIRE_MAX_STR);
	rw_wire_begin(&b, RW_MSG_OK);
	for (i = 0; i < big; i++)
		rw_wire_strn(&b, 1, s, RW_WIRE_MAX_STR);
	rw_wire_strn(&b, 2, s, rest);
	CHECK_OK(rw_wire_finish(&b));
	CHECK_EQ(payload_len(&b), RW_WIRE_MAX_PAYLOAD);
	CHECK_OK(rw_wire_check(payload(&b), payload_len(&b)));
	/* Nothing more fits, not even an empty string (8 bytes). */
	rw_wire_str(&b, 4, "");
	CHECK_EQ(b.err, -EMSGSIZE);
	CHECK_EQ(payload_len(&b), RW_WIRE_MAX_PAYLOAD); /* unchanged */
	CHECK_EQ(rw_wire_finish(&b), -EMSGSIZE);
	rw_wire_begin(&b, RW_MSG_OK);
	for (i = 0; i < big; i++)
		rw_wire_strn(&b, 1, s, RW_WIRE_MAX_STR);
	rw_wire_strn(&b, 2, s, rest - 15);
	rw_wire_u64(&b, 3, 0); /* 16 bytes where 15 are left */
	CHECK_EQ(b.err, -EMSGSIZE);
	CHECK_EQ(payload_len(&b), RW_WIRE_MAX_PAYLOAD - 15);
	CHECK_EQ(rw_wire_finish(&b), -EMSGSIZE);
	/* The checker refuses a longer payload of well-formed fields. */
	raw_reset();
	for (i = 0; i < big; i++) {
		raw_field(1, RW_WK_STR, RW_WIRE_MAX_STR);
		raw_bytes(s, RW_WIRE_MAX_STR);
	}
	raw_field(2, RW_WK_STR, (uint32_t)rest);
	raw_bytes(s, rest);
	CHECK_EQ(raw_n, RW_WIRE_MAX_PAYLOAD);
	CHECK_EQ(check_copy(raw, raw_n), 0);
	raw_field(3, RW_WK_STR, 0);
	CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
	CHECK_EQ(rw_wire_check(NULL, 0), 0);
	CHECK_EQ(rw_wire_check(NULL, 8), -EPROTO);

	/* RW_WIRE_MAX_FIELDS fields pass; one more fails, at the writer's
	 * finish (-EMSGSIZE) and at the checker, nested or not. */
	rw_wire_begin(&b, RW_MSG_OK);
	for (i = 0; i < RW_WIRE_MAX_FIELDS; i++)
		rw_wire_str(&b, 1, "");
	CHECK_OK(rw_wire_finish(&b));
	CHECK_OK(rw_wire_check(payload(&b), payload_len(&b)));
	rw_wire_str(&b, 1, "");
	CHECK_EQ(rw_wire_finish(&b), -EMSGSIZE);
	rw_wire_free(&b);
	raw_reset();
	for (i = 0; i < RW_WIRE_MAX_FIELDS - 2; i++)
		raw_field(1, RW_WK_STR, 0);
	at = raw_field(2, RW_WK_GROUP, 0);
	raw_field(1, RW_WK_STR, 0);
	raw_close(at);
	CHECK_EQ(check_copy(raw, raw_n), 0); /* exactly the limit */
	at = raw_field(2, RW_WK_GROUP, 0);
	raw_close(at);
	CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
}

/* Every prefix of a payload is checked: valid exactly at the top level's
 * field boundaries, and nowhere when the whole is one group. */
static void test_truncation(void)
{
	struct rw_wire_buf b = { 0 };
	struct rw_wire_iter it;
	struct rw_wire_field f;
	bool boundary[1024] = { false };
	size_t n, k, at, top = 0;
	const uint8_t *p;

	build_ls_reply(&b);
	p = payload(&b);
	n = payload_len(&b);
	CHECK(n < sizeof(boundary));
	boundary[0] = true;
	rw_wire_iter_init(&it, p, n);
	while (rw_wire_next(&it, &f)) {
		boundary[f.data + f.len - p] = true;
		top++;
	}
	CHECK(boundary[n] && top == 5);
	for (k = 0; k <= n; k++)
		CHECK_EQ(check_copy(p, k), boundary[k] ? 0 : -EPROTO);

	raw_reset();
	at = raw_field(RW_TAG_PATCH, RW_WK_GROUP, 0);
	raw_bytes(p, n);
	raw_close(at);
	for (k = 0; k < raw_n; k++)
		CHECK_EQ(check_copy(raw, k), k == 0 ? 0 : -EPROTO);
	CHECK_EQ(check_copy(raw, raw_n), 0);

	/* The iterator stops, without reading past the end, on an
	 * unchecked truncated buffer. */
	for (k = 1; k < n; k++) {
		struct guarded c = guard_copy(p, k);
		size_t seen = 0;

		rw_wire_iter_init(&it, c.p, k);
		while (rw_wire_next(&it, &f)) {
			CHECK(f.data + f.len <= c.p + k);
			seen++;
		}
		CHECK(seen <= top);
		guard_free(&c);
	}
	rw_wire_free(&b);
}

/* Lengths that overrun their parent; integers not 8 bytes long. */
static void test_overrun(void)
{
	static const uint32_t bad_int_len[] = { 0, 7, 9, 16 };
	size_t g, h;

	/* At the top level. */
	raw_reset();
	raw_field(1, RW_WK_STR, 4);
	raw_bytes("abc", 3);
	CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
	raw_reset();
	raw_field(1, RW_WK_GROUP, 0xffffffffu);
	raw_u64(2, 2);
	CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
	raw_reset();
	raw_field(1, RW_WK_STR, 0xfffffff8u); /* wraps a 32-bit sum */
	raw_bytes("abcdefgh", 8);
	CHECK_EQ(check_copy(raw, raw_n), -EPROTO);

	/* A field overrunning its group, still inside the payload. */
	raw_reset();
	g = raw_field(1, RW_WK_GROUP, 0);
	raw_field(2, RW_WK_STR, 4);
	raw_bytes("ab", 2);
	raw_close(g);
	raw_bytes("cd", 2);
	raw_u64(3, 3);
	CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
	/* The same with the lengths right is fine. */
	raw_reset();
	g = raw_field(1, RW_WK_GROUP, 0);
	raw_field(2, RW_WK_STR, 4);
	raw_bytes("abcd", 4);
	raw_close(g);
	raw_u64(3, 3);
	CHECK_EQ(check_copy(raw, raw_n), 0);
	/* A group overrunning its parent group. */
	raw_reset();
	g = raw_field(1, RW_WK_GROUP, 0);
	h = raw_field(2, RW_WK_GROUP, 0);
	raw_u64(3, 3);
	raw_close(h);
	raw_close(g);
	raw[h + 4] += 8; /* h now claims the u64 after g */
	raw_u64(4, 4);
	CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
	/* Bytes left in a group that cannot hold a field header. */
	for (uint32_t left = 1; left < 8; left++) {
		raw_reset();
		g = raw_field(1, RW_WK_GROUP, 0);
		raw_u64(2, 2);
		for (uint32_t i = 0; i < left; i++)
			raw_bytes("", 1);
		raw_close(g);
		CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
	}
	/* U64 and I64 are exactly 8 bytes. */
	for (size_t i = 0; i < sizeof(bad_int_len) / sizeof(bad_int_len[0]);
	     i++) {
		for (uint16_t kind = RW_WK_U64; kind <= RW_WK_I64; kind++) {
			raw_reset();
			raw_field(1, kind, bad_int_len[i]);
			for (uint32_t j = 0; j < bad_int_len[i]; j++)
				raw_bytes("\1", 1);
			CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
		}
	}
	/* An unchecked field of the wrong length is not read as an integer. */
	{
		uint8_t v[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
		struct rw_wire_field f = {
			.tag = 1, .kind = RW_WK_U64, .len = 9, .data = v
		};
		uint64_t u;
		int64_t s;

		CHECK(!rw_wire_get_u64(&f, &u));
		f.kind = RW_WK_I64;
		CHECK(!rw_wire_get_i64(&f, &s));
	}
}

/* Unknown kinds are invalid, wherever they are. */
static void test_unknown_kind(void)
{
	static const uint16_t kinds[] = { 0, 5, 6, 0x100, 0xffff };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t g;

		raw_reset();
		raw_field(1, kinds[i], 0);
		CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
		raw_reset();
		raw_u64(1, 1);
		g = raw_field(2, RW_WK_GROUP, 0);
		raw_u64(1, 1);
		raw_field(3, kinds[i], 8);
		raw_bytes("12345678", 8);
		raw_close(g);
		CHECK_EQ(check_copy(raw, raw_n), -EPROTO);
	}
}

/* Unknown tags are valid; readers step over them, groups whole. */
static void test_unknown_tag(void)
{
	struct rw_wire_iter it;
	struct rw_wire_field f;
	size_t g;
	uint64_t v;
	char out[16];

	raw_reset();
	raw_u64(999, 5);
	g = raw_field(1000, RW_WK_GROUP, 0);
	raw_u64(RW_TAG_PID, 77); /* inside the unknown group */
	raw_field(1001, RW_WK_STR, 2);
	raw_bytes("zz", 2);
	raw_close(g);
	raw_field(0, RW_WK_STR, 1);
	raw_bytes("0", 1);
	raw_u64(RW_TAG_VERSION, 1);
	raw_field(RW_TAG_MESSAGE, RW_WK_STR, 2);
	raw_bytes("ok", 2);
	CHECK_EQ(check_copy(raw, raw_n), 0);

	rw_wire_iter_init(&it, raw, raw_n);
	CHECK(rw_wire_next(&it, &f) && f.tag == 999);
	CHECK(rw_wire_next(&it, &f) && f.tag == 1000);
	CHECK(f.kind == RW_WK_GROUP && f.len == 16 + 10);
	CHECK(rw_wire_next(&it, &f) && f.tag == 0);
	CHECK(rw_wire_next(&it, &f) && f.tag == RW_TAG_VERSION);
	CHECK(rw_wire_next(&it, &f) && f.tag == RW_TAG_MESSAGE);
	CHECK(!rw_wire_next(&it, &f));
	CHECK(rw_wire_find_u64(raw, raw_n, RW_TAG_VERSION, &v) && v == 1);
	CHECK(rw_wire_find_str(raw, raw_n, RW_TAG_MESSAGE, out, sizeof(out)));
	CHECK(strcmp(out, "ok") == 0);
	/* PID is only inside the unknown group: not at the top level. */
	CHECK(!rw_wire_find_u64(raw, raw_n, RW_TAG_PID, &v));
}

static void put_hdr(uint8_t h[RW_WIRE_HDR_SIZE], uint16_t version,
		    uint16_t type, uint32_t len)
{
	memcpy(h, RW_WIRE_MAGIC, 4);
	h[4] = (uint8_t)version;
	h[5] = (uint8_t)(version >> 8);
	h[6] = (uint8_t)type;
	h[7] = (uint8_t)(type >> 8);
	for (int i = 0; i < 4; i++)
		h[8 + i] = (uint8_t)(len >> (8 * i));
	memset(h + 12, 0, 4);
}

static void test_header(void)
{
	uint8_t h[RW_WIRE_HDR_SIZE];
	uint16_t type = 0;
	uint32_t len = 0;
	int i;

	put_hdr(h, RW_WIRE_VERSION, RW_MSG_PATCH_STATE, 1234);
	CHECK_OK(rw_wire_check_header(h, &type, &len));
	CHECK(type == RW_MSG_PATCH_STATE && len == 1234);
	put_hdr(h, RW_WIRE_VERSION, 0xabcd, 0);
	CHECK_OK(rw_wire_check_header(h, &type, &len));
	CHECK(type == 0xabcd && len == 0);
	put_hdr(h, RW_WIRE_VERSION, 1, RW_WIRE_MAX_PAYLOAD);
	CHECK_OK(rw_wire_check_header(h, &type, &len));
	CHECK(len == RW_WIRE_MAX_PAYLOAD);
	CHECK_OK(rw_wire_check_header(h, NULL, NULL));
	for (i = 0; i < 4; i++) {
		put_hdr(h, RW_WIRE_VERSION, 1, 0);
		h[i] ^= 0x20;
		CHECK_EQ(rw_wire_check_header(h, &type, &len), -EPROTO);
	}
	put_hdr(h, 0, 1, 0);
	CHECK_EQ(rw_wire_check_header(h, &type, &len), -EPROTONOSUPPORT);
	put_hdr(h, 2, 1, 0);
	CHECK_EQ(rw_wire_check_header(h, &type, &len), -EPROTONOSUPPORT);
	put_hdr(h, 0x0100, 1, 0); /* big-endian 1 */
	CHECK_EQ(rw_wire_check_header(h, &type, &len), -EPROTONOSUPPORT);
	put_hdr(h, RW_WIRE_VERSION, 1, RW_WIRE_MAX_PAYLOAD + 1);
	CHECK_EQ(rw_wire_check_header(h, &type, &len), -EMSGSIZE);
	put_hdr(h, RW_WIRE_VERSION, 1, 0xffffffffu);
	CHECK_EQ(rw_wire_check_header(h, &type, &len), -EMSGSIZE);
	for (i = 12; i < 16; i++) {
		put_hdr(h, RW_WIRE_VERSION, 1, 0);
		h[i] = 1;
		CHECK_EQ(rw_wire_check_header(h, &type, &len), -EPROTO);
	}
}

/* Sticky errors, reuse of the buffer's memory, allocation failures. */
static void test_writer(void)
{
	struct rw_wire_buf b = { 0 };
	uint8_t *data;
	size_t cap, len;

	rw_wire_begin(&b, RW_MSG_HELLO);
	rw_wire_u64(&b, RW_TAG_VERSION, 1);
	rw_wire_strn(&b, RW_TAG_CLIENT, "a\0", 2);
	len = b.len;
	rw_wire_str(&b, RW_TAG_CLIENT, "more");
	rw_wire_group_begin(&b, 1);
	rw_wire_group_end(&b);
	CHECK_EQ(b.len, len); /* nothing written after the error */
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);

	rw_wire_begin(&b, RW_MSG_LS);
	CHECK_EQ(b.len, RW_WIRE_HDR_SIZE);
	CHECK_EQ(b.err, 0);
	CHECK_EQ(b.depth, 0);
	data = b.data;
	cap = b.cap;
	CHECK_OK(rw_wire_finish(&b));
	rw_wire_begin(&b, RW_MSG_LS);
	CHECK(b.data == data && b.cap == cap); /* memory kept */
	rw_wire_free(&b);

	/* Not begun: finish refuses. */
	CHECK_EQ(rw_wire_finish(&b), -EINVAL);

	/* -ENOMEM, first allocation and growth. */
	atomic_store(&fail_allocs, 1);
	rw_wire_begin(&b, RW_MSG_LS);
	atomic_store(&fail_allocs, 0);
	rw_wire_u64(&b, 1, 1);
	CHECK_EQ(rw_wire_finish(&b), -ENOMEM);
	rw_wire_begin(&b, RW_MSG_LS);
	CHECK_EQ(b.err, 0);
	atomic_store(&fail_allocs, 1);
	for (int i = 0; i < 100; i++)
		rw_wire_str(&b, 1, "a string long enough to need more room");
	atomic_store(&fail_allocs, 0);
	CHECK_EQ(rw_wire_finish(&b), -ENOMEM);
	rw_wire_free(&b);
}

static void test_msg_name(void)
{
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_HELLO), "HELLO") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_LS), "LS") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_KEY), "KEY") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_CALL), "CALL") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_TRACE_START), "TRACE_START") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_TRACE_STOP), "TRACE_STOP") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_PATCH_LOAD), "PATCH_LOAD") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_PATCH_ENABLE), "PATCH_ENABLE") ==
	      0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_PATCH_DISABLE), "PATCH_DISABLE") ==
	      0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_PATCH_FORCE), "PATCH_FORCE") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_PATCH_UNLOAD), "PATCH_UNLOAD") ==
	      0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_PATCH_STATE), "PATCH_STATE") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_OK), "OK") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_ERROR), "ERROR") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_UNKNOWN), "UNKNOWN") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_FUNCS), "FUNCS") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_SYMBOLIZE), "SYMBOLIZE") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_FUNC_LIST), "FUNC_LIST") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_AGG_START), "AGG_START") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_AGG_READ), "AGG_READ") == 0);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_AGG_STOP), "AGG_STOP") == 0);
	CHECK(rw_wire_msg_name(0) == NULL);
	CHECK(strcmp(rw_wire_msg_name(RW_MSG_SNAPSHOT), "SNAPSHOT") == 0);
	CHECK(rw_wire_msg_name(20) == NULL);
	CHECK(rw_wire_msg_name(0xff) == NULL);
	CHECK(rw_wire_msg_name(0x103) == NULL);
	CHECK(rw_wire_msg_name(0xffff) == NULL);
}

/* --- Transport --------------------------------------------------------- */

/* Messages with and without payload and descriptor arrive whole. */
static void test_send_recv(void)
{
	struct rw_wire_buf b = { 0 };
	struct rw_wire_msg m;
	int sv[2], pfd[2];
	char c = 0;
	uint64_t v;

	sockpair(sv);
	build_ls_reply(&b);
	CHECK_OK(rw_wire_send(sv[0], &b, -1));
	CHECK_OK(rw_wire_recv(sv[1], &m, 5000));
	CHECK_EQ(m.type, RW_MSG_OK);
	CHECK_EQ(m.len, payload_len(&b));
	CHECK(m.payload != NULL);
	CHECK(memcmp(m.payload, payload(&b), m.len) == 0);
	CHECK_EQ(m.fd, -1);
	rw_wire_msg_free(&m);
	CHECK(m.payload == NULL && m.fd == -1);

	/* Empty payload. */
	rw_wire_begin(&b, RW_MSG_LS);
	CHECK_OK(rw_wire_finish(&b));
	CHECK_OK(rw_wire_send(sv[1], &b, -1));
	CHECK_OK(rw_wire_recv(sv[0], &m, -1));
	CHECK(m.type == RW_MSG_LS && m.len == 0 && m.payload == NULL);
	CHECK_EQ(m.fd, -1);
	rw_wire_msg_free(&m);

	/* A descriptor: a new number for the same pipe, close-on-exec. */
	CHECK(pipe(pfd) == 0);
	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_u64(&b, RW_TAG_SHM_SIZE, 4096);
	CHECK_OK(rw_wire_finish(&b));
	CHECK_OK(rw_wire_send(sv[1], &b, pfd[1]));
	CHECK_OK(rw_wire_recv(sv[0], &m, 5000));
	CHECK(m.fd >= 0 && m.fd != pfd[1]);
	CHECK(fcntl(m.fd, F_GETFD) & FD_CLOEXEC);
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_SHM_SIZE, &v));
	CHECK_EQ(v, 4096);
	CHECK(write(m.fd, "x", 1) == 1);
	CHECK(read(pfd[0], &c, 1) == 1 && c == 'x');
	close(pfd[1]);
	CHECK(!writers_closed(pfd[0]));
	rw_wire_msg_free(&m); /* closes the received copy */
	CHECK(writers_closed(pfd[0]));
	close(pfd[0]);

	/* Several messages queued are read one by one. */
	for (int i = 0; i < 3; i++) {
		rw_wire_begin(&b, (uint16_t)(RW_MSG_KEY + i));
		rw_wire_u64(&b, RW_TAG_VALUE, (uint64_t)i);
		CHECK_OK(rw_wire_finish(&b));
		CHECK_OK(rw_wire_send(sv[0], &b, -1));
	}
	for (int i = 0; i < 3; i++) {
		CHECK_OK(rw_wire_recv(sv[1], &m, 0));
		CHECK_EQ(m.type, RW_MSG_KEY + i);
		CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_VALUE, &v));
		CHECK_EQ(v, i);
		rw_wire_msg_free(&m);
	}
	close(sv[0]);
	close(sv[1]);
	rw_wire_free(&b);
}

struct big_arg {
	int sock;
	struct rw_wire_buf *b;
	int ret;
	pthread_t signal_me; /* 0: none */
	_Atomic int *sigs;
};

static _Atomic int sigusr1_count;

static void on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigusr1_count, 1);
}

static void *big_sender(void *p)
{
	struct big_arg *a = p;

	a->ret = rw_wire_send(a->sock, a->b, -1);
	return NULL;
}

/* Builds a payload of nearly RW_WIRE_MAX_PAYLOAD bytes with a pattern. */
static void build_big(struct rw_wire_buf *b)
{
	static char s[RW_WIRE_MAX_STR + 1];

	rw_wire_begin(b, RW_MSG_OK);
	for (size_t i = 0; i < RW_WIRE_MAX_PAYLOAD / (8 + RW_WIRE_MAX_STR);
	     i++) {
		for (size_t j = 0; j < RW_WIRE_MAX_STR; j++)
			s[j] = (char)('A' + (i + j) % 26);
		rw_wire_strn(b, (uint16_t)i, s, RW_WIRE_MAX_STR);
	}
	CHECK_OK(rw_wire_finish(b));
}

/* A message far larger than the socket's buffer: partial writes and
 * partial reads on both sides. */
static void test_big(void)
{
	struct rw_wire_buf b = { 0 };
	struct big_arg a = { 0 };
	struct rw_wire_msg m;
	pthread_t t;
	int sv[2];

	sockpair(sv);
	build_big(&b);
	a.sock = sv[0];
	a.b = &b;
	CHECK(pthread_create(&t, NULL, big_sender, &a) == 0);
	CHECK_OK(rw_wire_recv(sv[1], &m, 20000));
	CHECK(pthread_join(t, NULL) == 0);
	CHECK_OK(a.ret);
	CHECK_EQ(m.len, payload_len(&b));
	CHECK(memcmp(m.payload, payload(&b), m.len) == 0);
	rw_wire_msg_free(&m);
	close(sv[0]);
	close(sv[1]);
	rw_wire_free(&b);
}

struct eintr_arg {
	pthread_t target;
	int sock;
	struct rw_wire_buf *b; /* send this after the signals, or receive */
	struct rw_wire_msg m;
	int ret;
};

/* Signal the target for the @i-th time (from 0), once it handled the
 * signals before: two pending SIGUSR1 would be delivered as one, which a
 * loaded machine (a target not scheduled for 30 ms) made happen. */
static void eintr_signal(struct eintr_arg *a, int i)
{
	for (int k = 0; k < 5000 && atomic_load(&sigusr1_count) < i; k++)
		sleep_ms(1);
	sleep_ms(30);
	pthread_kill(a->target, SIGUSR1);
}

static void *eintr_helper_send(void *p)
{
	struct eintr_arg *a = p;

	for (int i = 0; i < 3; i++)
		eintr_signal(a, i);
	sleep_ms(30);
	a->ret = rw_wire_send(a->sock, a->b, -1);
	return NULL;
}

static void *eintr_helper_recv(void *p)
{
	struct eintr_arg *a = p;

	for (int i = 0; i < 3; i++)
		eintr_signal(a, i);
	sleep_ms(30);
	a->ret = rw_wire_recv(a->sock, &a->m, 20000);
	return NULL;
}

/* Signals (handler without SA_RESTART) interrupt a blocked receive and
 * a blocked send; both carry on. */
static void test_eintr(void)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	struct rw_wire_buf b = { 0 }, big = { 0 };
	struct eintr_arg a = { 0 };
	struct rw_wire_msg m;
	pthread_t t;
	int sv[2], ret;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: poll, sendmsg see EINTR */
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	sockpair(sv);

	rw_wire_begin(&b, RW_MSG_HELLO);
	rw_wire_u64(&b, RW_TAG_VERSION, RW_WIRE_VERSION);
	CHECK_OK(rw_wire_finish(&b));
	a.target = pthread_self();
	a.sock = sv[0];
	a.b = &b;
	atomic_store(&sigusr1_count, 0);
	CHECK(pthread_create(&t, NULL, eintr_helper_send, &a) == 0);
	ret = rw_wire_recv(sv[1], &m, 20000);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK_OK(ret);
	CHECK_OK(a.ret);
	CHECK_EQ(atomic_load(&sigusr1_count), 3);
	CHECK_EQ(m.type, RW_MSG_HELLO);
	rw_wire_msg_free(&m);

	build_big(&big);
	a.sock = sv[1];
	atomic_store(&sigusr1_count, 0);
	CHECK(pthread_create(&t, NULL, eintr_helper_recv, &a) == 0);
	ret = rw_wire_send(sv[0], &big, -1);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK_OK(ret);
	CHECK_OK(a.ret);
	CHECK_EQ(atomic_load(&sigusr1_count), 3);
	CHECK_EQ(a.m.len, payload_len(&big));
	CHECK(memcmp(a.m.payload, payload(&big), a.m.len) == 0);
	rw_wire_msg_free(&a.m);

	sa.sa_handler = SIG_DFL;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	close(sv[0]);
	close(sv[1]);
	rw_wire_free(&b);
	rw_wire_free(&big);
}

/* The peer closes after every possible number of bytes of a message that
 * carries a descriptor: -ENODATA before the first byte, -ECONNRESET
 * after; the descriptor is closed; the message is left empty. */
static void test_peer_close(void)
{
	struct rw_wire_buf b = { 0 };
	struct rw_wire_msg m;
	int sv[2], pfd[2];

	rw_wire_begin(&b, RW_MSG_ERROR);
	rw_wire_i64(&b, RW_TAG_ERRNO, -ENOENT);
	rw_wire_str(&b, RW_TAG_MESSAGE, "no such key");
	CHECK_OK(rw_wire_finish(&b));
	for (size_t k = 0; k < b.len; k++) {
		sockpair(sv);
		CHECK(pipe(pfd) == 0);
		if (k)
			raw_send(sv[0], b.data, k, &pfd[1], 1);
		close(pfd[1]);
		close(sv[0]);
		m.payload = (uint8_t *)&m; /* must be reset */
		m.fd = 12345;
		CHECK_EQ(rw_wire_recv(sv[1], &m, 5000),
			 k ? -ECONNRESET : -ENODATA);
		CHECK(m.payload == NULL && m.fd == -1 && m.len == 0);
		CHECK(writers_closed(pfd[0]));
		rw_wire_msg_free(&m); /* harmless after a failure */
		close(pfd[0]);
		close(sv[1]);
	}
	/* The whole message, then the close: the message, then -ENODATA. */
	sockpair(sv);
	raw_send(sv[0], b.data, b.len, NULL, 0);
	close(sv[0]);
	CHECK_OK(rw_wire_recv(sv[1], &m, 5000));
	CHECK_EQ(m.type, RW_MSG_ERROR);
	rw_wire_msg_free(&m);
	CHECK_EQ(rw_wire_recv(sv[1], &m, 5000), -ENODATA);
	close(sv[1]);
	rw_wire_free(&b);
}

struct trickle_arg {
	int sock;
	const uint8_t *p;
	size_t n;
	long every_ms;
	_Atomic int stop;
};

static void *trickler(void *p)
{
	struct trickle_arg *a = p;

	for (size_t i = 0; i < a->n && !atomic_load(&a->stop); i++) {
		if (send(a->sock, a->p + i, 1, MSG_NOSIGNAL) != 1)
			break;
		sleep_ms(a->every_ms);
	}
	return NULL;
}

/* Timeouts: nothing; a header without its payload; a message trickled
 * slower than the timeout (the deadline covers the whole message); and
 * a zero timeout with the message already there. */
static void test_timeout(void)
{
	struct trickle_arg a = { 0 };
	struct rw_wire_buf b = { 0 };
	struct rw_wire_msg m;
	uint64_t t0, ms;
	pthread_t t;
	int sv[2];

	rw_wire_begin(&b, RW_MSG_HELLO);
	rw_wire_u64(&b, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_str(&b, RW_TAG_CLIENT, "test_wire");
	CHECK_OK(rw_wire_finish(&b));

	sockpair(sv);
	t0 = rw_test_now_ns();
	CHECK_EQ(rw_wire_recv(sv[1], &m, 100), -ETIMEDOUT);
	ms = (rw_test_now_ns() - t0) / 1000000;
	CHECK(ms >= 100 && ms < 10000);
	CHECK_EQ(rw_wire_recv(sv[1], &m, 0), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);

	sockpair(sv);
	raw_send(sv[0], b.data, RW_WIRE_HDR_SIZE + 3, NULL, 0);
	t0 = rw_test_now_ns();
	CHECK_EQ(rw_wire_recv(sv[1], &m, 100), -ETIMEDOUT);
	ms = (rw_test_now_ns() - t0) / 1000000;
	CHECK(ms >= 100 && ms < 10000);
	close(sv[0]);
	close(sv[1]);

	/* b.len bytes, one every 25 ms (about a second), against 200 ms. */
	sockpair(sv);
	a.sock = sv[0];
	a.p = b.data;
	a.n = b.len;
	a.every_ms = 25;
	CHECK(b.len >= 40);
	CHECK(pthread_create(&t, NULL, trickler, &a) == 0);
	t0 = rw_test_now_ns();
	CHECK_EQ(rw_wire_recv(sv[1], &m, 200), -ETIMEDOUT);
	ms = (rw_test_now_ns() - t0) / 1000000;
	atomic_store(&a.stop, 1);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(ms >= 200);
	close(sv[0]);
	close(sv[1]);

	sockpair(sv);
	CHECK_OK(rw_wire_send(sv[0], &b, -1));
	CHECK_OK(rw_wire_recv(sv[1], &m, 0));
	CHECK_EQ(m.type, RW_MSG_HELLO);
	rw_wire_msg_free(&m);
	close(sv[0]);
	close(sv[1]);
	rw_wire_free(&b);
}

/* Messages refused on receipt: their descriptors are closed, an
 * over-limit length allocates nothing and waits for nothing. */
static void test_recv_bad(void)
{
	static const uint32_t lens[] = { RW_WIRE_MAX_PAYLOAD + 1, 0x7fffffffu,
					 0xffffffffu };
	uint8_t h[RW_WIRE_HDR_SIZE];
	struct rw_wire_msg m;
	int sv[2], pfd[2];
	uint64_t t0;
	size_t g;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		sockpair(sv);
		CHECK(pipe(pfd) == 0);
		put_hdr(h, RW_WIRE_VERSION, RW_MSG_LS, lens[i]);
		raw_send(sv[0], h, sizeof(h), &pfd[1], 1);
		close(pfd[1]);
		atomic_store(&largest_alloc, 0);
		t0 = rw_test_now_ns();
		CHECK_EQ(rw_wire_recv(sv[1], &m, 10000), -EMSGSIZE);
		CHECK(rw_test_now_ns() - t0 < 5000000000ull); /* no wait */
		CHECK_EQ(atomic_load(&largest_alloc), 0);
		CHECK(writers_closed(pfd[0]));
		close(pfd[0]);
		close(sv[0]);
		close(sv[1]);
	}

	/* Bad magic, bad version, reserved bytes. */
	for (int i = 0; i < 3; i++) {
		sockpair(sv);
		CHECK(pipe(pfd) == 0);
		put_hdr(h, i == 1 ? 7 : RW_WIRE_VERSION, RW_MSG_LS, 0);
		if (i == 0)
			h[0] = 'X';
		if (i == 2)
			h[15] = 1;
		raw_send(sv[0], h, sizeof(h), &pfd[1], 1);
		close(pfd[1]);
		CHECK_EQ(rw_wire_recv(sv[1], &m, 5000),
			 i == 1 ? -EPROTONOSUPPORT : -EPROTO);
		CHECK(writers_closed(pfd[0]));
		close(pfd[0]);
		close(sv[0]);
		close(sv[1]);
	}

	/* A good header and a bad payload (an unknown kind in a group). */
	sockpair(sv);
	CHECK(pipe(pfd) == 0);
	raw_reset();
	g = raw_field(RW_TAG_KEY, RW_WK_GROUP, 0);
	raw_field(RW_TAG_NAME, 9, 0);
	raw_close(g);
	put_hdr(h, RW_WIRE_VERSION, RW_MSG_OK, (uint32_t)raw_n);
	raw_send(sv[0], h, sizeof(h), &pfd[1], 1);
	raw_send(sv[0], raw, raw_n, NULL, 0);
	close(pfd[1]);
	CHECK_EQ(rw_wire_recv(sv[1], &m, 5000), -EPROTO);
	CHECK(m.payload == NULL && m.fd == -1);
	CHECK(writers_closed(pfd[0]));
	close(pfd[0]);
	close(sv[0]);
	close(sv[1]);

	/* No memory for the payload. */
	sockpair(sv);
	CHECK(pipe(pfd) == 0);
	raw_reset();
	raw_u64(RW_TAG_VERSION, 1);
	put_hdr(h, RW_WIRE_VERSION, RW_MSG_OK, (uint32_t)raw_n);
	raw_send(sv[0], h, sizeof(h), &pfd[1], 1);
	raw_send(sv[0], raw, raw_n, NULL, 0);
	close(pfd[1]);
	atomic_store(&fail_allocs, 1);
	CHECK_EQ(rw_wire_recv(sv[1], &m, 5000), -ENOMEM);
	atomic_store(&fail_allocs, 0);
	CHECK(writers_closed(pfd[0]));
	close(pfd[0]);
	close(sv[0]);
	close(sv[1]);

	CHECK_EQ(rw_wire_recv(-1, &m, 0), -EBADF);
}

/* More descriptors than one: the message keeps the first that came with
 * it and every other is closed, whether they came together or with a
 * later chunk. A descriptor with a later chunk only is still the
 * message's. */
static void test_extra_fds(void)
{
	struct rw_wire_buf b = { 0 };
	struct rw_wire_msg m;
	int sv[2], p1[2], p2[2], two[2];
	char c;

	rw_wire_begin(&b, RW_MSG_OK);
	rw_wire_u64(&b, RW_TAG_SHM_SIZE, 1);
	rw_wire_str(&b, RW_TAG_MESSAGE, "with descriptors");
	CHECK_OK(rw_wire_finish(&b));

	for (int mode = 0; mode < 3; mode++) {
		sockpair(sv);
		CHECK(pipe(p1) == 0);
		CHECK(pipe(p2) == 0);
		two[0] = p1[1];
		two[1] = p2[1];
		if (mode == 0) {
			/* Two in one SCM_RIGHTS with the header. */
			raw_send(sv[0], b.data, b.len, two, 2);
		} else if (mode == 1) {
			/* One with the header, one with the payload. */
			raw_send(sv[0], b.data, RW_WIRE_HDR_SIZE, &p1[1], 1);
			raw_send(sv[0], b.data + RW_WIRE_HDR_SIZE,
				 b.len - RW_WIRE_HDR_SIZE, &p2[1], 1);
		} else {
			/* None with the header, one with the payload. */
			raw_send(sv[0], b.data, RW_WIRE_HDR_SIZE + 5, NULL, 0);
			raw_send(sv[0], b.data + RW_WIRE_HDR_SIZE + 5,
				 b.len - RW_WIRE_HDR_SIZE - 5, &p1[1], 1);
			close(p2[1]);
			p2[1] = -1;
		}
		close(p1[1]);
		if (p2[1] >= 0)
			close(p2[1]);
		CHECK_OK(rw_wire_recv(sv[1], &m, 5000));
		CHECK(m.fd >= 0);
		CHECK(!writers_closed(p1[0])); /* the message's */
		CHECK(writers_closed(p2[0]));  /* closed */
		CHECK(write(m.fd, "y", 1) == 1);
		CHECK(read(p1[0], &c, 1) == 1 && c == 'y');
		rw_wire_msg_free(&m);
		CHECK(writers_closed(p1[0]));
		close(p1[0]);
		close(p2[0]);
		close(sv[0]);
		close(sv[1]);
	}
	rw_wire_free(&b);
}

/* Send errors: a gone peer (no SIGPIPE), unfinished or failed buffers,
 * a bad descriptor to pass. */
static void test_send_errors(void)
{
	struct rw_wire_buf b = { 0 };
	struct rw_wire_msg m;
	int sv[2];

	CHECK(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	CHECK_EQ(rw_wire_send(0, &b, -1), -EINVAL); /* never begun */
	rw_wire_begin(&b, RW_MSG_LS);
	CHECK_OK(rw_wire_finish(&b));
	sockpair(sv);
	CHECK_EQ(rw_wire_send(sv[0], &b, 1000000), -EBADF);
	CHECK_OK(rw_wire_send(sv[0], &b, -1));
	close(sv[1]);
	CHECK_EQ(rw_wire_send(sv[0], &b, -1), -EPIPE);
	close(sv[0]);

	sockpair(sv);
	rw_wire_u64(&b, 1, 1); /* appended after finish */
	CHECK_EQ(rw_wire_send(sv[0], &b, -1), -EINVAL);
	b.err = -ENOMEM; /* the sticky error is returned */
	CHECK_EQ(rw_wire_send(sv[0], &b, -1), -ENOMEM);
	rw_wire_begin(&b, RW_MSG_LS);
	rw_wire_group_begin(&b, 1); /* not finished */
	CHECK_EQ(rw_wire_send(sv[0], &b, -1), -EINVAL);
	CHECK_EQ(rw_wire_recv(sv[1], &m, 0), -ETIMEDOUT); /* nothing went */
	close(sv[0]);
	close(sv[1]);
	rw_wire_free(&b);
}

int main(void)
{
	int fds = count_fds();

	test_golden();
	test_roundtrip();
	test_get_str();
	test_depth();
	test_strings();
	test_limits();
	test_truncation();
	test_overrun();
	test_unknown_kind();
	test_unknown_tag();
	test_header();
	test_writer();
	test_msg_name();
	test_send_recv();
	test_big();
	test_eintr();
	test_peer_close();
	test_timeout();
	test_recv_bad();
	test_extra_fds();
	test_send_errors();
	CHECK_EQ(count_fds(), fds); /* no descriptor leaked */
	printf("wire: ok\n");
	return 0;
}
