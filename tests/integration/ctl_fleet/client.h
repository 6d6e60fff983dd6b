/* SPDX-License-Identifier: MIT */
/*
 * A minimal control client for the issue 16 server tests (test_ctl_*.c of
 * ctl_fleet/): they start the control server in their own process
 * (rw_ctl_start) and talk to it from their main thread through the wire
 * format (src/ctl/wire.c, compiled into the test), as the rewire command
 * does. Every call CHECKs what it needs; replies stay in the client's
 * last message.
 */
#ifndef REWIRE_TEST_CTL_CLIENT_H
#define REWIRE_TEST_CTL_CLIENT_H

#include "check.h"
#include "ctl/wire.h"

#include <rewire/ctl.h>

#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct tc {
	int fd;
	struct rw_wire_buf b;
	struct rw_wire_msg m; /* the last reply */
};

static inline void tc_connect(struct tc *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(c, 0, sizeof(*c));
	c->m.fd = -1;
	CHECK_OK(rw_ctl_socket_path(sa.sun_path, sizeof(sa.sun_path)));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(c->fd >= 0);
	CHECK_OK(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)));
}

/* Send the message being built in c->b (with @pass_fd if >= 0) and wait
 * for the reply. Returns its type. */
static inline uint16_t tc_call(struct tc *c, int pass_fd)
{
	rw_wire_msg_free(&c->m);
	CHECK_OK(rw_wire_finish(&c->b));
	CHECK_OK(rw_wire_send(c->fd, &c->b, pass_fd));
	CHECK_OK(rw_wire_recv(c->fd, &c->m, 20000));
	return c->m.type;
}

static inline void tc_hello(struct tc *c)
{
	rw_wire_begin(&c->b, RW_MSG_HELLO);
	rw_wire_u64(&c->b, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_str(&c->b, RW_TAG_CLIENT, "test");
	CHECK_EQ(tc_call(c, -1), RW_MSG_OK);
}

static inline void tc_close(struct tc *c)
{
	rw_wire_msg_free(&c->m);
	rw_wire_free(&c->b);
	close(c->fd);
	c->fd = -1;
}

/* The reply's MESSAGE ("" when none). */
static inline const char *tc_message(struct tc *c)
{
	static char msg[RW_WIRE_MAX_STR + 1];

	if (!rw_wire_find_str(c->m.payload, c->m.len, RW_TAG_MESSAGE, msg,
			      sizeof(msg)))
		msg[0] = '\0';
	return msg;
}

static inline int64_t tc_errno(struct tc *c)
{
	int64_t e = 0;

	CHECK_EQ(c->m.type, RW_MSG_ERROR);
	CHECK(rw_wire_find_i64(c->m.payload, c->m.len, RW_TAG_ERRNO, &e));
	return e;
}

/* The string field @tag of the group/payload @p..@n into @out. */
static inline bool tc_str(const uint8_t *p, size_t n, uint16_t tag, char *out,
			  size_t size)
{
	return rw_wire_find_str(p, n, tag, out, size);
}

/* The @index-th group @tag of the reply (0-based): its value in *@g. */
static inline bool tc_group(struct tc *c, uint16_t tag, size_t index,
			    struct rw_wire_field *g)
{
	struct rw_wire_iter it;

	rw_wire_iter_init(&it, c->m.payload, c->m.len);
	while (rw_wire_next(&it, g)) {
		if (g->tag != tag || g->kind != RW_WK_GROUP)
			continue;
		if (index-- == 0)
			return true;
	}
	return false;
}

/* The group @tag whose NAME is @name. */
static inline bool tc_group_named(struct tc *c, uint16_t tag, const char *name,
				  struct rw_wire_field *g)
{
	char have[256];

	for (size_t i = 0; tc_group(c, tag, i, g); i++)
		if (tc_str(g->data, g->len, RW_TAG_NAME, have, sizeof(have)) &&
		    !strcmp(have, name))
			return true;
	return false;
}

#define CHECK_STR_HAS(hay, needle)                                            \
	do {                                                                  \
		const char *_h = (hay), *_n = (needle);                       \
		if (!strstr(_h, _n)) {                                        \
			fprintf(stderr, "%s:%d: '%s' not in: %s\n", __FILE__, \
				__LINE__, _n, _h);                            \
			exit(1);                                              \
		}                                                             \
	} while (0)

#endif /* REWIRE_TEST_CTL_CLIENT_H */
