/* SPDX-License-Identifier: MIT */
/*
 * The control socket's wire format (see wire.h): the writer, the checker,
 * the readers and the transport.
 *
 * This file is compiled into librewire and, on its own, into the rewire
 * command and the tests: it includes only wire.h and libc, and keeps no
 * global state.
 *
 * Everything it reads may come from a hostile peer (any local process of
 * the same user can connect to the control socket). The rules:
 *   - integers are loaded with memcpy and converted from little-endian,
 *     never through a cast pointer (no unaligned or aliasing access);
 *   - a length is compared with what is left (end - pos), never added to
 *     a position before that, so that no sum can wrap;
 *   - rw_wire_check() walks nested groups with an explicit stack of
 *     RW_WIRE_MAX_DEPTH ends, not by recursion, and does a bounded amount
 *     of work: at most RW_WIRE_MAX_FIELDS fields of a payload of at most
 *     RW_WIRE_MAX_PAYLOAD bytes;
 *   - the iterator re-checks each field header against its level's end,
 *     so that even an unchecked buffer is never read out of bounds.
 */
/* le64toh() and friends, strnlen(), clock_gettime(), MSG_CMSG_CLOEXEC:
 * whoever compiles this file, and however. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "wire.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* A field's header: tag, kind, length. */
#define FIELD_HDR 8u
/* A whole message, header included. */
#define MSG_MAX ((size_t)RW_WIRE_HDR_SIZE + RW_WIRE_MAX_PAYLOAD)

/* --- Little-endian loads and stores --------------------------------------- */

static uint16_t ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static void st16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void st32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void st64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* --- Writing ----------------------------------------------------------------
 * b->data holds the header and the payload written so far; b->len <=
 * MSG_MAX always. Every writer first checks b->err, so that after the
 * first failure nothing changes any more.
 */

/* Make room for @need more bytes. false (and b->err set) when the
 * message would exceed the limit or memory runs out. */
static bool reserve(struct rw_wire_buf *b, size_t need)
{
	size_t cap;
	uint8_t *d;

	if (b->err)
		return false;
	if (b->len > MSG_MAX || need > MSG_MAX - b->len) {
		b->err = -EMSGSIZE;
		return false;
	}
	if (b->data && need <= b->cap - b->len)
		return true;
	/* Doubling from 256 up to MSG_MAX: no product can overflow. */
	cap = b->data && b->cap ? b->cap : 256;
	while (cap < b->len + need)
		cap *= 2;
	if (cap > MSG_MAX)
		cap = MSG_MAX;
	d = realloc(b->data, cap);
	if (!d) {
		b->err = -ENOMEM;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

/* Append a field header and room for a value of @vlen bytes (vlen is at
 * most RW_WIRE_MAX_STR here). Returns where the value goes, or NULL. */
static uint8_t *field_put(struct rw_wire_buf *b, uint16_t tag, uint16_t kind,
			  size_t vlen)
{
	uint8_t *p;

	if (!reserve(b, FIELD_HDR + vlen))
		return NULL;
	p = b->data + b->len;
	st16(p, tag);
	st16(p + 2, kind);
	st32(p + 4, (uint32_t)vlen);
	b->len += FIELD_HDR + vlen;
	return p + FIELD_HDR;
}

void rw_wire_begin(struct rw_wire_buf *b, uint16_t type)
{
	b->len = 0;
	b->err = 0;
	b->depth = 0;
	if (!reserve(b, RW_WIRE_HDR_SIZE))
		return;
	memcpy(b->data, RW_WIRE_MAGIC, 4);
	st16(b->data + 4, RW_WIRE_VERSION);
	st16(b->data + 6, type);
	st32(b->data + 8, 0);
	st32(b->data + 12, 0);
	b->len = RW_WIRE_HDR_SIZE;
}

void rw_wire_u64(struct rw_wire_buf *b, uint16_t tag, uint64_t v)
{
	uint8_t *p = field_put(b, tag, RW_WK_U64, 8);

	if (p)
		st64(p, v);
}

void rw_wire_i64(struct rw_wire_buf *b, uint16_t tag, int64_t v)
{
	uint8_t *p = field_put(b, tag, RW_WK_I64, 8);
	uint64_t u;

	/* Two's complement by definition of int64_t; memcpy avoids the
	 * implementation-defined signed-to-unsigned conversion question. */
	memcpy(&u, &v, sizeof(u));
	if (p)
		st64(p, u);
}

void rw_wire_strn(struct rw_wire_buf *b, uint16_t tag, const char *s, size_t n)
{
	uint8_t *p;

	if (b->err)
		return;
	if (n > RW_WIRE_MAX_STR || (n && !s) || (n && memchr(s, 0, n))) {
		b->err = -EINVAL;
		return;
	}
	p = field_put(b, tag, RW_WK_STR, n);
	if (p && n)
		memcpy(p, s, n);
}

void rw_wire_str(struct rw_wire_buf *b, uint16_t tag, const char *s)
{
	/* Bounded: a string longer than the limit is refused without being
	 * read to its end. */
	rw_wire_strn(b, tag, s, s ? strnlen(s, RW_WIRE_MAX_STR + 1) : 0);
}

void rw_wire_group_begin(struct rw_wire_buf *b, uint16_t tag)
{
	size_t at = b->len;

	if (b->err)
		return;
	if (b->depth < 0 || b->depth >= RW_WIRE_MAX_DEPTH) {
		b->err = -EINVAL;
		return;
	}
	if (field_put(b, tag, RW_WK_GROUP, 0))
		b->group_at[b->depth++] = at;
}

void rw_wire_group_end(struct rw_wire_buf *b)
{
	size_t at;

	if (b->err)
		return;
	if (b->depth <= 0 || b->depth > RW_WIRE_MAX_DEPTH) {
		b->err = -EINVAL;
		return;
	}
	at = b->group_at[--b->depth];
	/* b->len - at - FIELD_HDR <= RW_WIRE_MAX_PAYLOAD: fits 32 bits. */
	st32(b->data + at + 4, (uint32_t)(b->len - at - FIELD_HDR));
}

int rw_wire_finish(struct rw_wire_buf *b)
{
	size_t n;

	if (b->err)
		return b->err;
	if (b->depth != 0 || !b->data || b->len < RW_WIRE_HDR_SIZE) {
		b->err = -EINVAL;
		return b->err;
	}
	n = b->len - RW_WIRE_HDR_SIZE;
	st32(b->data + 8, (uint32_t)n);
	/*
	 * The writer cannot produce a bad field, but it can produce more
	 * than RW_WIRE_MAX_FIELDS of them (rw_wire_buf has no counter), which
	 * the peer would refuse. Check what goes out: one pass over at most
	 * RW_WIRE_MAX_PAYLOAD bytes.
	 */
	if (rw_wire_check(b->data + RW_WIRE_HDR_SIZE, n))
		b->err = -EMSGSIZE;
	return b->err;
}

void rw_wire_free(struct rw_wire_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* --- Reading -------------------------------------------------------------- */

int rw_wire_check_header(const uint8_t hdr[RW_WIRE_HDR_SIZE], uint16_t *type,
			 uint32_t *len)
{
	uint32_t n;

	/* The version before the reserved bytes: a later version may use
	 * them, and its peer should hear "version", not "garbage". */
	if (memcmp(hdr, RW_WIRE_MAGIC, 4) != 0)
		return -EPROTO;
	if (ld16(hdr + 4) != RW_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	if (ld32(hdr + 12) != 0)
		return -EPROTO;
	n = ld32(hdr + 8);
	if (n > RW_WIRE_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (type)
		*type = ld16(hdr + 6);
	if (len)
		*len = n;
	return 0;
}

/*
 * One pass, no recursion. end[d] is where the level at depth d ends
 * (end[0] the payload's end, end[d] the value's end of the d-th open
 * group); pos <= end[depth] <= ... <= end[0] = n holds throughout, so
 * end[depth] - pos never wraps. A group's value is entered right after its
 * header; a level is left when pos reaches its end exactly. Each step
 * consumes at least a field header, so the loop runs at most n / 8 times.
 */
int rw_wire_check(const uint8_t *p, size_t n)
{
	size_t end[RW_WIRE_MAX_DEPTH + 1];
	size_t pos = 0, fields = 0, room;
	int depth = 0;
	uint32_t len;

	if (n > RW_WIRE_MAX_PAYLOAD || (!p && n))
		return -EPROTO;
	end[0] = n;
	for (;;) {
		while (depth > 0 && pos == end[depth])
			depth--;
		if (pos == end[depth])
			break; /* depth 0: the whole payload */
		if (end[depth] - pos < FIELD_HDR)
			return -EPROTO; /* a truncated field header */
		if (++fields > RW_WIRE_MAX_FIELDS)
			return -EPROTO;
		len = ld32(p + pos + 4);
		room = end[depth] - pos - FIELD_HDR;
		if (len > room)
			return -EPROTO; /* the value overruns its parent */
		switch (ld16(p + pos + 2)) {
		case RW_WK_U64:
		case RW_WK_I64:
			if (len != 8)
				return -EPROTO;
			break;
		case RW_WK_STR:
			if (len > RW_WIRE_MAX_STR ||
			    memchr(p + pos + FIELD_HDR, 0, len))
				return -EPROTO;
			break;
		case RW_WK_GROUP:
			if (depth >= RW_WIRE_MAX_DEPTH)
				return -EPROTO;
			end[++depth] = pos + FIELD_HDR + len;
			pos += FIELD_HDR;
			continue;
		default:
			return -EPROTO; /* an unknown kind */
		}
		pos += FIELD_HDR + len;
	}
	return 0;
}

void rw_wire_iter_init(struct rw_wire_iter *it, const uint8_t *p, size_t n)
{
	/* No arithmetic on a null pointer, not even + 0. */
	it->p = p;
	it->end = p ? p + n : p;
}

void rw_wire_iter_group(struct rw_wire_iter *it, const struct rw_wire_field *g)
{
	if (!g || g->kind != RW_WK_GROUP || !g->data) {
		it->p = it->end = NULL;
		return;
	}
	rw_wire_iter_init(it, g->data, g->len);
}

/* Fields of any tag, unknown ones included: a reader skips what it does
 * not know by not asking for it, and a group, known or not, is returned
 * whole (rw_wire_iter_group() enters it). */
bool rw_wire_next(struct rw_wire_iter *it, struct rw_wire_field *f)
{
	size_t left;
	uint32_t len;

	if (!it->p || it->p >= it->end)
		return false;
	left = (size_t)(it->end - it->p);
	if (left < FIELD_HDR)
		goto bad;
	len = ld32(it->p + 4);
	if (len > left - FIELD_HDR)
		goto bad;
	f->tag = ld16(it->p);
	f->kind = ld16(it->p + 2);
	f->len = len;
	f->data = it->p + FIELD_HDR;
	it->p += FIELD_HDR + len;
	return true;
bad:
	/* Only an unchecked buffer gets here: stop, read nothing. */
	it->p = it->end;
	return false;
}

bool rw_wire_get_u64(const struct rw_wire_field *f, uint64_t *v)
{
	if (f->kind != RW_WK_U64 || f->len != 8 || !f->data)
		return false;
	*v = ld64(f->data);
	return true;
}

bool rw_wire_get_i64(const struct rw_wire_field *f, int64_t *v)
{
	uint64_t u;

	if (f->kind != RW_WK_I64 || f->len != 8 || !f->data)
		return false;
	u = ld64(f->data);
	memcpy(v, &u, sizeof(*v));
	return true;
}

bool rw_wire_get_str(const struct rw_wire_field *f, char *out, size_t size)
{
	size_t n;

	if (f->kind != RW_WK_STR || (f->len && !f->data))
		return false;
	if (size == 0)
		return true; /* no room even for the NUL: nothing written */
	n = f->len < size - 1 ? f->len : size - 1;
	if (n)
		memcpy(out, f->data, n);
	out[n] = '\0';
	return true;
}

bool rw_wire_find(const uint8_t *p, size_t n, uint16_t tag,
		  struct rw_wire_field *f)
{
	struct rw_wire_iter it;
	struct rw_wire_field cur;

	rw_wire_iter_init(&it, p, n);
	while (rw_wire_next(&it, &cur)) {
		if (cur.tag == tag) {
			*f = cur;
			return true;
		}
	}
	return false;
}

bool rw_wire_find_u64(const uint8_t *p, size_t n, uint16_t tag, uint64_t *v)
{
	struct rw_wire_field f;

	return rw_wire_find(p, n, tag, &f) && rw_wire_get_u64(&f, v);
}

bool rw_wire_find_i64(const uint8_t *p, size_t n, uint16_t tag, int64_t *v)
{
	struct rw_wire_field f;

	return rw_wire_find(p, n, tag, &f) && rw_wire_get_i64(&f, v);
}

bool rw_wire_find_str(const uint8_t *p, size_t n, uint16_t tag, char *out,
		      size_t size)
{
	struct rw_wire_field f;

	return rw_wire_find(p, n, tag, &f) && rw_wire_get_str(&f, out, size);
}

/* --- Transport ------------------------------------------------------------ */

int rw_wire_send(int sock, const struct rw_wire_buf *b, int pass_fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct cmsghdr *c;
	size_t off = 0;
	ssize_t r;

	if (b->err)
		return b->err;
	/* Finished, and nothing appended since: the header says so. */
	if (!b->data || b->len < RW_WIRE_HDR_SIZE || b->len > MSG_MAX ||
	    ld32(b->data + 8) != b->len - RW_WIRE_HDR_SIZE)
		return -EINVAL;
	while (off < b->len) {
		struct iovec iov = {
			.iov_base = b->data + off,
			.iov_len = b->len - off,
		};
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

		/* The descriptor goes with the first chunk: the receiver
		 * takes it with the header. A sendmsg that returns a short
		 * count has sent it already. */
		if (off == 0 && pass_fd >= 0) {
			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = sizeof(ctl.buf);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
		}
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* EAGAIN (a non-blocking socket, or SO_SNDTIMEO
			 * expired) is returned as is: the message is then
			 * cut short and the connection is unusable. */
			return -errno;
		}
		if (r == 0)
			return -EIO; /* cannot happen on a stream; no spin */
		off += (size_t)r;
	}
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait until @sock is readable or @deadline (CLOCK_MONOTONIC ns, < 0:
 * none) passes. 0, -ETIMEDOUT, -EBADF or a negative errno. A hang-up or
 * an error counts as readable: recvmsg() then says which. */
static int wait_readable(int sock, int64_t deadline)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int64_t left;
	int ms, r;

	for (;;) {
		ms = -1;
		if (deadline >= 0) {
			left = deadline - now_ns();
			if (left <= 0)
				return -ETIMEDOUT;
			/* Rounded up: never wake before the deadline. */
			ms = (int)((left + 999999) / 1000000);
		}
		r = poll(&pfd, 1, ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			continue; /* the deadline is checked above */
		if (pfd.revents & POLLNVAL)
			return -EBADF;
		return 0;
	}
}

/* Take the descriptors of an SCM_RIGHTS message: the first one of the
 * whole message is kept in *keep, every other one is closed. */
static void take_fds(struct msghdr *mh, int *keep)
{
	const char *ctl_end =
		(const char *)mh->msg_control + mh->msg_controllen;
	struct cmsghdr *c;
	const char *data;
	size_t n, i;
	int fd;

	if (mh->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		data = (const char *)CMSG_DATA(c);
		if (c->cmsg_len < CMSG_LEN(0) || data > ctl_end)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		/* Never past the buffer, whatever cmsg_len says. */
		if (n > (size_t)(ctl_end - data) / sizeof(int))
			n = (size_t)(ctl_end - data) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, data + i * sizeof(int), sizeof(int));
			if (fd < 0)
				continue;
			if (*keep < 0)
				*keep = fd;
			else
				close(fd);
		}
	}
}

/*
 * Read exactly @n bytes into @buf by @deadline. Each recvmsg() has room for
 * one descriptor (two fit in its padding on x86-64); the kernel never
 * installs those that do not fit (MSG_CTRUNC), and take_fds() closes all
 * but the message's first. Returns 0;
 * -ENODATA when the peer closed before the first byte, -ECONNRESET when it
 * closed after some; -ETIMEDOUT; or a negative errno.
 */
static int read_full(int sock, uint8_t *buf, size_t n, int64_t deadline,
		     int *fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	size_t got = 0;
	ssize_t r;
	int err;

	while (got < n) {
		struct iovec iov = { .iov_base = buf + got,
				     .iov_len = n - got };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};

		r = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			err = wait_readable(sock, deadline);
			if (err)
				return err;
			continue;
		}
		take_fds(&mh, fd);
		if (r == 0)
			return got ? -ECONNRESET : -ENODATA;
		got += (size_t)r;
	}
	return 0;
}

/*
 * 1. Read the header (its first bytes may bring a descriptor).
 * 2. Check it: nothing is allocated for a length over the limit.
 * 3. Allocate and read the payload; the deadline covers the whole message,
 *    not each read, so that a peer trickling bytes cannot hold us longer.
 * 4. Check the payload.
 * A peer that closes after the first byte of a message and before its
 * last gets -ECONNRESET (the message is lost, not malformed: -EPROTO is
 * kept for what the peer did send wrong). On any failure the message is
 * empty (payload NULL, fd -1) and the descriptor that came is closed.
 */
int rw_wire_recv(int sock, struct rw_wire_msg *m, int timeout_ms)
{
	int64_t deadline = -1;
	uint8_t hdr[RW_WIRE_HDR_SIZE];
	uint8_t *payload = NULL;
	uint16_t type;
	uint32_t len;
	int fd = -1, err;

	m->type = 0;
	m->len = 0;
	m->payload = NULL;
	m->fd = -1;
	if (timeout_ms >= 0)
		deadline = now_ns() + (int64_t)timeout_ms * 1000000;

	err = read_full(sock, hdr, sizeof(hdr), deadline, &fd);
	if (err)
		goto fail;
	err = rw_wire_check_header(hdr, &type, &len);
	if (err)
		goto fail;
	if (len) {
		payload = malloc(len);
		if (!payload) {
			err = -ENOMEM;
			goto fail;
		}
		err = read_full(sock, payload, len, deadline, &fd);
		if (err == -ENODATA)
			err = -ECONNRESET; /* the header came, the rest not */
		if (err)
			goto fail;
		err = rw_wire_check(payload, len);
		if (err)
			goto fail;
	}
	m->type = type;
	m->len = len;
	m->payload = payload;
	m->fd = fd;
	return 0;
fail:
	free(payload);
	if (fd >= 0)
		close(fd);
	return err;
}

void rw_wire_msg_free(struct rw_wire_msg *m)
{
	free(m->payload);
	m->payload = NULL;
	m->len = 0;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

const char *rw_wire_msg_name(uint16_t type)
{
	switch (type) {
	case RW_MSG_HELLO:
		return "HELLO";
	case RW_MSG_LS:
		return "LS";
	case RW_MSG_KEY:
		return "KEY";
	case RW_MSG_CALL:
		return "CALL";
	case RW_MSG_TRACE_START:
		return "TRACE_START";
	case RW_MSG_TRACE_STOP:
		return "TRACE_STOP";
	case RW_MSG_PATCH_LOAD:
		return "PATCH_LOAD";
	case RW_MSG_PATCH_ENABLE:
		return "PATCH_ENABLE";
	case RW_MSG_PATCH_DISABLE:
		return "PATCH_DISABLE";
	case RW_MSG_PATCH_FORCE:
		return "PATCH_FORCE";
	case RW_MSG_PATCH_UNLOAD:
		return "PATCH_UNLOAD";
	case RW_MSG_PATCH_STATE:
		return "PATCH_STATE";
	case RW_MSG_FUNCS:
		return "FUNCS";
	case RW_MSG_SYMBOLIZE:
		return "SYMBOLIZE";
	case RW_MSG_FUNC_LIST:
		return "FUNC_LIST";
	case RW_MSG_AGG_START:
		return "AGG_START";
	case RW_MSG_AGG_READ:
		return "AGG_READ";
	case RW_MSG_AGG_STOP:
		return "AGG_STOP";
	case RW_MSG_SNAPSHOT:
		return "SNAPSHOT";
	case RW_MSG_OK:
		return "OK";
	case RW_MSG_ERROR:
		return "ERROR";
	case RW_MSG_UNKNOWN:
		return "UNKNOWN";
	}
	return NULL;
}
