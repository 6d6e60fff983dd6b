/* SPDX-License-Identifier: MIT */
/*
 * cli_fake_server: a control server that answers in another process's
 * place, as a hostile local user would (doc/SECURITY.md).
 *
 *	cli_fake_server SOCKET UID LOG
 *
 * Binds SOCKET (as the caller: root in the tests), makes it 0777, then
 * switches to UID (all its uids and gids; UID "-" keeps root) before
 * listen(): the kernel takes the credentials that SO_PEERCRED reports at
 * listen(). Prints "ready" on stdout, then accepts connections until
 * killed. For each connection, LOG gets one line "conn" when it is
 * accepted, one line "msg TYPE LEN" per message received, and "bytes N"
 * when the peer closes it (N: every byte received). It answers every
 * message as the real server would if all went well: HELLO with the
 * version and the pid the client wants, every other request with the
 * PATCH fields of an enabled patch named "cli_fix", so that a client that
 * trusts it reports success.
 */
#include "ctl/wire.h"

#include <rewire/livepatch.h>

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static FILE *logf_;

static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logline(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(logf_, fmt, ap);
	va_end(ap);
	fflush(logf_);
}

static void answer(int fd, const struct rw_wire_msg *m)
{
	struct rw_wire_buf b = { 0 };

	rw_wire_begin(&b, RW_MSG_OK);
	if (m->type == RW_MSG_HELLO) {
		rw_wire_u64(&b, RW_TAG_VERSION, RW_WIRE_VERSION);
		rw_wire_u64(&b, RW_TAG_PID, 1);
		rw_wire_str(&b, RW_TAG_PROGRAM, "/usr/bin/victim");
		rw_wire_str(&b, RW_TAG_CMDLINE, "victim");
		rw_wire_str(&b, RW_TAG_LIBVERSION, "0.1.0");
	} else {
		rw_wire_str(&b, RW_TAG_NAME, "cli_fix");
		rw_wire_str(&b, RW_TAG_PATH, "/fake/cli_fix.so");
		rw_wire_u64(&b, RW_TAG_STATE, RW_PATCH_ENABLED);
		rw_wire_u64(&b, RW_TAG_NFUNCS, 1);
		rw_wire_u64(&b, RW_TAG_TOTAL, 1);
		rw_wire_u64(&b, RW_TAG_SWITCHED, 1);
	}
	if (!rw_wire_finish(&b))
		rw_wire_send(fd, &b, -1);
	rw_wire_free(&b);
}

static void serve(int fd)
{
	long bytes = 0;

	logline("conn\n");
	for (;;) {
		struct rw_wire_msg m;
		int err = rw_wire_recv(fd, &m, 10000);

		if (err) {
			/* What came after the last whole message. */
			char buf[4096];
			ssize_t n;

			while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >
			       0)
				bytes += n;
			break;
		}
		bytes += RW_WIRE_HDR_SIZE + (long)m.len;
		logline("msg %u %ld\n", (unsigned)m.type, (long)m.len);
		answer(fd, &m);
		rw_wire_msg_free(&m);
	}
	logline("bytes %ld\n", bytes);
	close(fd);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s SOCKET UID|- LOG\n", argv[0]);
		return 2;
	}
	logf_ = fopen(argv[3], "a");
	if (!logf_)
		return perror(argv[3]), 1;
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return perror("socket"), 1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(argv[1], 0777))
		return perror(argv[1]), 1;
	if (strcmp(argv[2], "-")) {
		uid_t uid = (uid_t)atoi(argv[2]);

		if (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
		    setresuid(uid, uid, uid))
			return perror("setresuid"), 1;
	}
	if (listen(lfd, 16))
		return perror("listen"), 1;
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return perror("accept"), 1;
		}
		serve(fd);
	}
}
