/* SPDX-License-Identifier: MIT */
/*
 * cli_peer_connect: checks the control server's SO_PEERCRED test, the
 * second line of defence behind the 0700 directory.
 *
 *	cli_peer_connect SOCKET root     connect as root: HELLO must be OK
 *	cli_peer_connect SOCKET UID GID  connect as UID: must be refused
 *
 * Run as root, against a server that runs as root. To get past the
 * directory's and the socket's permissions while the server still sees
 * another user, the child keeps a saved uid of 0 and sets its file-system
 * uid back to 0: path lookups and the socket's write permission are
 * checked with the fsuid (root), while SO_PEERCRED reports the effective
 * uid (UID). The server must then answer HELLO with an ERROR or close the
 * connection.
 *
 * Exit: 0 as expected; 1 the server accepted a peer it must refuse, or
 * refused root, or did not answer; 77 the check cannot be made here (not
 * root, or the kernel refused the connection before the server saw it:
 * the message says which); 2 usage.
 */
#include "ctl/wire.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int hello(const char *path, bool expect_ok)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct rw_wire_buf b = { 0 };
	struct rw_wire_msg m;
	int fd, err;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return perror("socket"), 1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = errno;
		printf("connect(%s) as euid %u fsuid %u: %s\n", path,
		       (unsigned)geteuid(), (unsigned)setfsuid((uid_t)-1),
		       strerror(err));
		if (!expect_ok && (err == EACCES || err == EPERM)) {
			printf("SKIP: the kernel refused the connection "
			       "before the server could check the peer\n");
			return 77;
		}
		return 1;
	}
	rw_wire_begin(&b, RW_MSG_HELLO);
	rw_wire_u64(&b, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_str(&b, RW_TAG_CLIENT, "cli_peer_connect");
	err = rw_wire_finish(&b);
	if (!err)
		err = rw_wire_send(fd, &b, -1);
	rw_wire_free(&b);
	if (err && err != -EPIPE && err != -ECONNRESET) {
		printf("send HELLO: %s\n", strerror(-err));
		close(fd);
		return 1;
	}
	/* Refused, the server may have said why before it closed. */
	if (!err || err == -EPIPE || err == -ECONNRESET) {
		int rerr = rw_wire_recv(fd, &m, 10000);

		if (!err || !rerr)
			err = rerr;
	}
	close(fd);
	if (err == -ETIMEDOUT) {
		printf("no answer to HELLO within 10 s\n");
		return 1;
	}
	if (err) {
		printf("euid %u: connection closed without a reply (%s)\n",
		       (unsigned)geteuid(), strerror(-err));
		return expect_ok ? 1 : 0;
	}
	if (m.type == RW_MSG_OK) {
		printf("euid %u: HELLO accepted\n", (unsigned)geteuid());
		rw_wire_msg_free(&m);
		return expect_ok ? 0 : 1;
	}
	if (m.type == RW_MSG_ERROR) {
		int64_t e = 0;
		char text[RW_WIRE_MAX_STR + 1] = "";

		rw_wire_find_i64(m.payload, m.len, RW_TAG_ERRNO, &e);
		rw_wire_find_str(m.payload, m.len, RW_TAG_MESSAGE, text,
				 sizeof(text));
		printf("euid %u: HELLO refused: %s (%lld)\n",
		       (unsigned)geteuid(), text, (long long)e);
		rw_wire_msg_free(&m);
		return expect_ok ? 1 : 0;
	}
	printf("unexpected reply type %u\n", m.type);
	rw_wire_msg_free(&m);
	return 1;
}

int main(int argc, char **argv)
{
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int status;

	if (argc == 3 && !strcmp(argv[2], "root"))
		return hello(argv[1], true);
	if (argc != 4) {
		fprintf(stderr, "usage: %s SOCKET root | SOCKET UID GID\n",
			argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		printf("SKIP: needs root\n");
		return 77;
	}
	uid = (uid_t)strtoul(argv[2], NULL, 10);
	gid = (gid_t)strtoul(argv[3], NULL, 10);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return perror("fork"), 1;
	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(gid, gid, gid) ||
		    setresuid(uid, uid, 0)) {
			perror("dropping privileges");
			fflush(stdout);
			_exit(77);
		}
		setfsuid(0);
		if (setfsuid((uid_t)-1) != 0 || geteuid() != uid) {
			printf("SKIP: cannot keep fsuid 0 with euid %u\n",
			       (unsigned)uid);
			fflush(stdout);
			_exit(77);
		}
		status = hello(argv[1], false);
		fflush(stdout);
		_exit(status);
	}
	if (waitpid(pid, &status, 0) != pid)
		return perror("waitpid"), 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
