/* SPDX-License-Identifier: MIT */
/*
 * ctl_query PID: what the control server of PID says about issue 16's
 * fields, one line each, for the shell tests (test_ctl_patch_dir.sh):
 *
 *	patch_dir DIR                      (HELLO, when it has one)
 *	patch NAME STATE FROM_DIR FILE_ID PATH
 *	session NUMBER KIND OWNER OVERWRITE
 *
 * The socket is $REWIRE_CTL_DIR/PID.sock. Exit 0, or 1 with a message.
 */
#include "ctl/wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int call(int fd, struct rw_wire_buf *b, struct rw_wire_msg *m)
{
	int err = rw_wire_finish(b);

	if (!err)
		err = rw_wire_send(fd, b, -1);
	if (!err)
		err = rw_wire_recv(fd, m, 10000);
	if (!err && m->type != RW_MSG_OK)
		err = -EPROTO;
	return err;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *dir = getenv("REWIRE_CTL_DIR");
	struct rw_wire_buf b = { 0 };
	struct rw_wire_msg m;
	struct rw_wire_iter it;
	struct rw_wire_field f;
	char s[4096], name[256], id[256], kind[64];
	uint64_t v, w, x;
	int fd, err;

	if (argc != 2 || !dir) {
		fprintf(stderr, "usage: REWIRE_CTL_DIR=DIR ctl_query PID\n");
		return 2;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", dir, argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror(sa.sun_path);
		return 1;
	}
	rw_wire_begin(&b, RW_MSG_HELLO);
	rw_wire_u64(&b, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_str(&b, RW_TAG_CLIENT, "ctl_query");
	err = call(fd, &b, &m);
	if (err)
		goto fail;
	if (rw_wire_find_str(m.payload, m.len, RW_TAG_PATCH_DIR, s, sizeof(s)))
		printf("patch_dir %s\n", s);
	rw_wire_msg_free(&m);
	rw_wire_begin(&b, RW_MSG_LS);
	err = call(fd, &b, &m);
	if (err)
		goto fail;
	rw_wire_iter_init(&it, m.payload, m.len);
	while (rw_wire_next(&it, &f)) {
		if (f.kind != RW_WK_GROUP)
			continue;
		if (f.tag == RW_TAG_PATCH) {
			v = w = 9;
			name[0] = id[0] = s[0] = '\0';
			rw_wire_find_str(f.data, f.len, RW_TAG_NAME, name,
					 sizeof(name));
			rw_wire_find_str(f.data, f.len, RW_TAG_FILE_ID, id,
					 sizeof(id));
			rw_wire_find_str(f.data, f.len, RW_TAG_PATH, s,
					 sizeof(s));
			rw_wire_find_u64(f.data, f.len, RW_TAG_STATE, &v);
			rw_wire_find_u64(f.data, f.len, RW_TAG_FROM_DIR, &w);
			printf("patch %s %llu %llu %s %s\n", name,
			       (unsigned long long)v, (unsigned long long)w, id,
			       s);
		} else if (f.tag == RW_TAG_TRACE_SESSION) {
			v = w = x = 0;
			kind[0] = '\0';
			rw_wire_find_u64(f.data, f.len, RW_TAG_SESSION, &v);
			rw_wire_find_str(f.data, f.len, RW_TAG_KIND, kind,
					 sizeof(kind));
			rw_wire_find_u64(f.data, f.len, RW_TAG_OWNER, &w);
			rw_wire_find_u64(f.data, f.len, RW_TAG_OVERWRITE, &x);
			printf("session %llu %s %llu %llu\n",
			       (unsigned long long)v, kind,
			       (unsigned long long)w, (unsigned long long)x);
		}
	}
	rw_wire_msg_free(&m);
	rw_wire_free(&b);
	close(fd);
	return 0;
fail:
	fprintf(stderr, "ctl_query: %s\n", strerror(-err));
	return 1;
}
