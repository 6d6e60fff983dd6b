/* SPDX-License-Identifier: MIT */
/*
 * The control server in-process (rewire/ctl.h), spoken to with the wire
 * format's own code: the directory checks, the handshake (first message,
 * version), unknown commands, malformed and oversized messages, a full
 * table of connections, LS, KEY, CALL (registered targets only), trace
 * sessions ended by TRACE_STOP and by a closed connection, the patch
 * requests' argument errors, stop and the socket's removal, and a forked
 * child without a server. The hardening of issue 12: a process out of
 * file descriptors (the control thread does not spin and serves again
 * once descriptors are back), idle connections that time out (sixteen
 * silent connections do not lock out a real client; a tracing one is not
 * idle), the cap on the trace sessions' shared memory, and liburcu's
 * thread named as rewire's.
 */
#include <rewire/rewire.h>

#include "check.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

RW_DEFINE_STATIC_KEY_FALSE(ctl_test_key);

static int answer_a(int x)
{
	return x + 1;
}

static int answer_b(int x)
{
	return x + 100;
}

static int answer_hidden(int x)
{
	return -x;
}

RW_DEFINE_STATIC_CALL(ctl_test_call, answer_a);
RW_STATIC_CALL_TARGET(ctl_test_call, answer_a);
RW_STATIC_CALL_TARGET(ctl_test_call, answer_b);

RW_DECLARE_TRACEPOINT(ctl_test_tp, (int, seq), (const char *, what));
RW_DEFINE_TRACEPOINT(ctl_test_tp, (int, seq), (const char *, what));

__attribute__((noinline)) static int keyed(void)
{
	return rw_static_branch_unlikely(ctl_test_key) ? 1 : 0;
}

static char sock[108];
static struct rw_wire_buf out;

static int connect_ctl(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	CHECK_OK(connect(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0);
	return fd;
}

/* Send the message in @out, receive the reply into @m. */
static void roundtrip(int fd, struct rw_wire_msg *m)
{
	CHECK_OK(rw_wire_finish(&out));
	CHECK_OK(rw_wire_send(fd, &out, -1));
	CHECK_OK(rw_wire_recv(fd, m, 10000));
}

static int64_t error_of(const struct rw_wire_msg *m, char *msg, size_t size)
{
	int64_t e = 0;

	CHECK_EQ(m->type, RW_MSG_ERROR);
	CHECK(rw_wire_find_i64(m->payload, m->len, RW_TAG_ERRNO, &e));
	CHECK(rw_wire_find_str(m->payload, m->len, RW_TAG_MESSAGE, msg, size));
	return e;
}

static int hello(void)
{
	struct rw_wire_msg m;
	uint64_t pid = 0;
	int fd = connect_ctl();

	rw_wire_begin(&out, RW_MSG_HELLO);
	rw_wire_u64(&out, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_str(&out, RW_TAG_CLIENT, "test_ctl");
	roundtrip(fd, &m);
	if (m.type != RW_MSG_OK) {
		char msg[512] = "";

		rw_wire_find_str(m.payload, m.len, RW_TAG_MESSAGE, msg,
				 sizeof(msg));
		fprintf(stderr, "HELLO refused: %s\n", msg);
	}
	CHECK_EQ(m.type, RW_MSG_OK);
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_PID, &pid));
	CHECK_EQ(pid, getpid());
	rw_wire_msg_free(&m);
	return fd;
}

/* The peer closed the connection: the next read sees EOF. */
static void check_closed(int fd)
{
	struct rw_wire_msg m;

	CHECK_EQ(rw_wire_recv(fd, &m, 10000), -ENODATA);
	close(fd);
}

/* Every thread rw_ctl_start() started (the control thread, liburcu's
 * callback thread) blocks the program's signals: a SIGTERM that the
 * program waits for with a signalfd must not land there and kill it. The
 * control thread takes rewire's own signal, once it runs its loop (a new
 * thread blocks everything while the pthread_create wrapper registers
 * it): returns whether it does yet. */
static bool threads_block_signals(void)
{
	char path[300], line[256], comm[64];
	unsigned long long blk;
	struct dirent *de;
	int ctl = 0, rcu = 0;
	bool ok = true;
	DIR *d = opendir("/proc/self/task");
	FILE *f;

	CHECK(d);
	while ((de = readdir(d))) {
		if (atoi(de->d_name) <= 0 || atoi(de->d_name) == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status",
			 de->d_name);
		f = fopen(path, "r");
		CHECK(f);
		blk = 0;
		comm[0] = '\0';
		while (fgets(line, sizeof(line), f)) {
			sscanf(line, "Name: %63s", comm);
			if (sscanf(line, "SigBlk: %llx", &blk) == 1)
				break;
		}
		fclose(f);
		CHECK(blk & (1ull << (SIGTERM - 1)));
		CHECK(blk & (1ull << (SIGINT - 1)));
		if (!strcmp(comm, "rewire-ctl")) {
			ok = !(blk & (1ull << (rw_threads_signal() - 1)));
			ctl++;
		}
		/* liburcu's callback thread is named as rewire's, not
		 * after the program (test_ctl). */
		CHECK(strcmp(comm, "test_ctl"));
		rcu += !strcmp(comm, "rewire-rcu");
	}
	closedir(d);
	CHECK_EQ(ctl, 1);
	/* At least: TSan's own background thread, started while the name
	 * was lent, may carry it too. */
	CHECK(rcu >= 1);
	return ok;
}

static void check_threads_block_signals(void)
{
	int i = 0;

	while (!threads_block_signals() && i++ < 500)
		usleep(10000);
	CHECK(threads_block_signals());
}

static void test_dir_checks(const char *base)
{
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/loose", base);
	CHECK_OK(mkdir(dir, 0755));
	setenv("REWIRE_CTL_DIR", dir, 1);
	CHECK_EQ(rw_ctl_start(), -EOPNOTSUPP);
	CHECK(strstr(rw_ctl_last_error(), "0755"));
	CHECK_EQ(rw_ctl_socket_path(sock, sizeof(sock)), -ENOTCONN);
	snprintf(dir, sizeof(dir), "%s/link", base);
	CHECK_OK(symlink("/tmp", dir));
	setenv("REWIRE_CTL_DIR", dir, 1);
	CHECK_EQ(rw_ctl_start(), -EOPNOTSUPP);
	CHECK(strstr(rw_ctl_last_error(), "not a directory"));
	/* Another user's, pre-created (root can make one). */
	if (geteuid() == 0) {
		snprintf(dir, sizeof(dir), "%s/theirs", base);
		CHECK_OK(mkdir(dir, 0700));
		CHECK_OK(chown(dir, 65534, 65534));
		setenv("REWIRE_CTL_DIR", dir, 1);
		CHECK_EQ(rw_ctl_start(), -EOPNOTSUPP);
		CHECK(strstr(rw_ctl_last_error(), "owned by uid 65534"));
		CHECK_OK(rmdir(dir));
	}
}

static void test_handshake(void)
{
	struct rw_wire_msg m;
	char msg[512];
	uint8_t junk[RW_WIRE_HDR_SIZE];
	int fd;

	/* Anything before HELLO: an error, then the connection closes. */
	fd = connect_ctl();
	rw_wire_begin(&out, RW_MSG_LS);
	roundtrip(fd, &m);
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -EPROTO);
	CHECK(strstr(msg, "HELLO"));
	rw_wire_msg_free(&m);
	check_closed(fd);

	/* Another version. */
	fd = connect_ctl();
	rw_wire_begin(&out, RW_MSG_HELLO);
	rw_wire_u64(&out, RW_TAG_VERSION, 99);
	roundtrip(fd, &m);
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -EPROTONOSUPPORT);
	CHECK(strstr(msg, "99"));
	rw_wire_msg_free(&m);
	check_closed(fd);

	/* A header that is not ours. */
	fd = connect_ctl();
	memset(junk, 'x', sizeof(junk));
	CHECK_EQ(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	CHECK_OK(rw_wire_recv(fd, &m, 10000));
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -EPROTO);
	rw_wire_msg_free(&m);
	check_closed(fd);

	/* A length over the limit: refused from the header alone. */
	fd = hello();
	memcpy(junk, RW_WIRE_MAGIC, 4);
	junk[4] = RW_WIRE_VERSION;
	junk[5] = 0;
	junk[6] = RW_MSG_LS;
	junk[7] = 0;
	memset(junk + 8, 0xff, 4);
	memset(junk + 12, 0, 4);
	CHECK_EQ(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	CHECK_OK(rw_wire_recv(fd, &m, 10000));
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -EMSGSIZE);
	rw_wire_msg_free(&m);
	check_closed(fd);

	/* An unknown command: UNKNOWN with its type; the connection lives. */
	fd = hello();
	rw_wire_begin(&out, 0x77);
	roundtrip(fd, &m);
	CHECK_EQ(m.type, RW_MSG_UNKNOWN);
	uint64_t t = 0;
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_TYPE, &t));
	CHECK_EQ(t, 0x77);
	rw_wire_msg_free(&m);
	rw_wire_begin(&out, RW_MSG_LS);
	roundtrip(fd, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	rw_wire_msg_free(&m);
	close(fd);
}

/* Find the group of @tag whose NAME is @name in a reply. */
static bool find_group(const struct rw_wire_msg *m, uint16_t tag,
		       const char *name, struct rw_wire_field *g)
{
	struct rw_wire_iter it;
	char have[256];

	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, g)) {
		if (g->tag != tag)
			continue;
		if (rw_wire_find_str(g->data, g->len, RW_TAG_NAME, have,
				     sizeof(have)) &&
		    !strcmp(have, name))
			return true;
	}
	return false;
}

static void test_ls(int fd)
{
	struct rw_wire_msg m;
	struct rw_wire_field g, f;
	struct rw_wire_iter it;
	char s[256];
	uint64_t v;
	int cands = 0, fields = 0;
	bool me = false;

	rw_wire_begin(&out, RW_MSG_LS);
	roundtrip(fd, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	CHECK(find_group(&m, RW_TAG_KEY, "ctl_test_key", &g));
	CHECK(rw_wire_find_u64(g.data, g.len, RW_TAG_ENABLED, &v));
	CHECK_EQ(v, 0);
	CHECK(rw_wire_find_u64(g.data, g.len, RW_TAG_SITES, &v));
	CHECK_EQ(v, RW_TEST_SITES(1));
	CHECK(rw_wire_find_str(g.data, g.len, RW_TAG_OBJECT, s, sizeof(s)));
	CHECK(strstr(s, "test_ctl"));
	/* A tracepoint's own key and call are not listed. */
	CHECK(!find_group(&m, RW_TAG_KEY, "rw__tpkey_ctl_test_tp", &g));
	CHECK(!find_group(&m, RW_TAG_CALL, "rw__tpcall_ctl_test_tp", &g));

	CHECK(find_group(&m, RW_TAG_CALL, "ctl_test_call", &g));
	CHECK(rw_wire_find_str(g.data, g.len, RW_TAG_TARGET, s, sizeof(s)));
	CHECK(!strcmp(s, "answer_a"));
	rw_wire_iter_group(&it, &g);
	while (rw_wire_next(&it, &f)) {
		if (f.tag != RW_TAG_CANDIDATE)
			continue;
		CHECK(rw_wire_get_str(&f, s, sizeof(s)));
		CHECK(!strcmp(s, "answer_a") || !strcmp(s, "answer_b"));
		cands++;
	}
	CHECK_EQ(cands, 2);

	CHECK(find_group(&m, RW_TAG_TRACEPOINT, "ctl_test_tp", &g));
	CHECK(rw_wire_find_u64(g.data, g.len, RW_TAG_PROBES, &v));
	CHECK_EQ(v, 0);
	rw_wire_iter_group(&it, &g);
	while (rw_wire_next(&it, &f)) {
		if (f.tag != RW_TAG_FIELD)
			continue;
		CHECK(rw_wire_find_str(f.data, f.len, RW_TAG_NAME, s,
				       sizeof(s)));
		CHECK(!strcmp(s, fields ? "what" : "seq"));
		CHECK(rw_wire_find_u64(f.data, f.len, RW_TAG_KIND, &v));
		CHECK_EQ(v, fields ? RW_TP_STRING : RW_TP_SIGNED);
		fields++;
	}
	CHECK_EQ(fields, 2);

	/* This thread and the control thread, by name. */
	rw_wire_iter_init(&it, m.payload, m.len);
	while (rw_wire_next(&it, &g)) {
		if (g.tag != RW_TAG_THREAD)
			continue;
		CHECK(rw_wire_find_u64(g.data, g.len, RW_TAG_TID, &v));
		if (v == (uint64_t)getpid())
			me = true;
	}
	CHECK(me);
	CHECK(find_group(&m, RW_TAG_THREAD, "rewire-ctl", &g));
	rw_wire_msg_free(&m);
}

static int64_t key_req(int fd, const char *name, uint64_t value, char *msg,
		       size_t size)
{
	struct rw_wire_msg m;
	int64_t e = 0;

	rw_wire_begin(&out, RW_MSG_KEY);
	rw_wire_str(&out, RW_TAG_NAME, name);
	rw_wire_u64(&out, RW_TAG_VALUE, value);
	roundtrip(fd, &m);
	if (m.type != RW_MSG_OK)
		e = error_of(&m, msg, size);
	rw_wire_msg_free(&m);
	return e;
}

static void test_key(int fd)
{
	char msg[512];

	CHECK_EQ(keyed(), 0);
	CHECK_EQ(key_req(fd, "ctl_test_key", 1, msg, sizeof(msg)), 0);
	CHECK(rw_static_key_enabled(&ctl_test_key));
	CHECK_EQ(keyed(), 1);
	CHECK_EQ(key_req(fd, "ctl_test_key@test_ctl", 0, msg, sizeof(msg)), 0);
	CHECK_EQ(keyed(), 0);
	CHECK_EQ(key_req(fd, "ctl_test_key@libnothing.so", 1, msg, sizeof(msg)),
		 -ENOENT);
	CHECK_EQ(key_req(fd, "no_such_key", 1, msg, sizeof(msg)), -ENOENT);
	CHECK(strstr(msg, "no_such_key"));
	CHECK_EQ(key_req(fd, "rw__tpkey_ctl_test_tp", 1, msg, sizeof(msg)),
		 -EPERM);
	CHECK(!rw_tracepoint_enabled(ctl_test_tp));
	CHECK_EQ(key_req(fd, "ctl_test_key", 2, msg, sizeof(msg)), -EINVAL);
	/* A name longer than any the server holds is refused whole, not
	 * cut to a prefix that could name another key. */
	char longname[400];
	memset(longname, 'k', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ(key_req(fd, longname, 1, msg, sizeof(msg)), -EINVAL);
	CHECK_EQ(keyed(), 0);
}

static int64_t call_req(int fd, const char *name, const char *target, char *msg,
			size_t size)
{
	struct rw_wire_msg m;
	int64_t e = 0;

	rw_wire_begin(&out, RW_MSG_CALL);
	rw_wire_str(&out, RW_TAG_NAME, name);
	rw_wire_str(&out, RW_TAG_TARGET, target);
	roundtrip(fd, &m);
	if (m.type != RW_MSG_OK)
		e = error_of(&m, msg, size);
	else
		CHECK(rw_wire_find_str(m.payload, m.len, RW_TAG_OLD, msg,
				       size));
	rw_wire_msg_free(&m);
	return e;
}

static void test_call(int fd)
{
	char msg[512];

	CHECK_EQ(rw_static_call(ctl_test_call)(1), 2);
	CHECK_EQ(call_req(fd, "ctl_test_call", "answer_b", msg, sizeof(msg)),
		 0);
	CHECK(!strcmp(msg, "answer_a"));
	CHECK_EQ(rw_static_call(ctl_test_call)(1), 101);
	/* A function of the right type that was not registered. */
	CHECK_EQ(call_req(fd, "ctl_test_call", "answer_hidden", msg,
			  sizeof(msg)),
		 -RW_ERR_SYMBOL);
	CHECK(strstr(msg, "answer_a") && strstr(msg, "answer_b"));
	CHECK_EQ(call_req(fd, "ctl_test_call", "abort", msg, sizeof(msg)),
		 -RW_ERR_SYMBOL);
	CHECK_EQ(call_req(fd, "no_call", "answer_a", msg, sizeof(msg)),
		 -ENOENT);
	CHECK_EQ(rw_static_call(ctl_test_call)(1), 101);
	CHECK_EQ(call_req(fd, "ctl_test_call", "answer_a", msg, sizeof(msg)),
		 0);
	CHECK_EQ(rw_static_call(ctl_test_call)(1), 2);
	(void)answer_hidden;
}

static void test_trace(void)
{
	struct rw_wire_msg m;
	char msg[512];
	uint64_t size = 0;
	int fd = hello();

	rw_wire_begin(&out, RW_MSG_TRACE_START);
	rw_wire_str(&out, RW_TAG_NAME, "nothing_matches_*");
	roundtrip(fd, &m);
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -ENOENT);
	rw_wire_msg_free(&m);
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ctl_test_tp)), 0);

	rw_wire_begin(&out, RW_MSG_TRACE_START);
	rw_wire_str(&out, RW_TAG_NAME, "ctl_test_*");
	roundtrip(fd, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	CHECK(m.fd >= 0);
	CHECK(rw_wire_find_u64(m.payload, m.len, RW_TAG_SHM_SIZE, &size));
	CHECK(size > 0);
	rw_wire_msg_free(&m);
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ctl_test_tp)), 1);
	rw_trace_ctl_test_tp(1, "one");

	/* A second start on the same connection. */
	rw_wire_begin(&out, RW_MSG_TRACE_START);
	rw_wire_str(&out, RW_TAG_NAME, "ctl_test_tp");
	roundtrip(fd, &m);
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -EBUSY);
	rw_wire_msg_free(&m);

	rw_wire_begin(&out, RW_MSG_TRACE_STOP);
	roundtrip(fd, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	rw_wire_msg_free(&m);
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ctl_test_tp)), 0);

	/* A client that goes away while tracing leaves no probe behind. */
	rw_wire_begin(&out, RW_MSG_TRACE_START);
	rw_wire_str(&out, RW_TAG_NAME, "ctl_test_tp");
	roundtrip(fd, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	rw_wire_msg_free(&m);
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ctl_test_tp)), 1);
	close(fd);
	for (int i = 0; i < 1000 && rw_tracepoint_probe_count(
					    rw_tracepoint_ptr(ctl_test_tp));
	     i++)
		usleep(10000);
	CHECK_EQ(rw_tracepoint_probe_count(rw_tracepoint_ptr(ctl_test_tp)), 0);
}

static int64_t patch_req(int fd, uint16_t type, uint16_t tag, const char *s,
			 char *msg, size_t size)
{
	struct rw_wire_msg m;
	int64_t e = 0;

	rw_wire_begin(&out, type);
	if (s)
		rw_wire_str(&out, tag, s);
	roundtrip(fd, &m);
	if (m.type != RW_MSG_OK)
		e = error_of(&m, msg, size);
	rw_wire_msg_free(&m);
	return e;
}

static void test_patch_errors(int fd)
{
	char msg[512];

	CHECK_EQ(patch_req(fd, RW_MSG_PATCH_LOAD, RW_TAG_PATH, "fix.so", msg,
			   sizeof(msg)),
		 -EINVAL);
	CHECK(strstr(msg, "absolute"));
	CHECK(patch_req(fd, RW_MSG_PATCH_LOAD, RW_TAG_PATH, "/nonexistent.so",
			msg, sizeof(msg)) < 0);
	CHECK(strstr(msg, "/nonexistent.so"));
	CHECK_EQ(patch_req(fd, RW_MSG_PATCH_ENABLE, RW_TAG_NAME, "nopatch", msg,
			   sizeof(msg)),
		 -ENOENT);
	CHECK(strstr(msg, "nopatch"));
	CHECK_EQ(patch_req(fd, RW_MSG_PATCH_STATE, 0, NULL, msg, sizeof(msg)),
		 -EINVAL);
}

/* Connections beyond the table get -EBUSY and are closed; the others
 * still work. */
static void test_full(void)
{
	int fds[16], extra;
	struct rw_wire_msg m;
	char msg[256];

	for (int i = 0; i < 16; i++)
		fds[i] = hello();
	extra = connect_ctl();
	CHECK_OK(rw_wire_recv(extra, &m, 10000));
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -EBUSY);
	rw_wire_msg_free(&m);
	check_closed(extra);
	for (int i = 0; i < 16; i++)
		close(fds[i]);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The control thread's id. */
static pid_t ctl_tid(void)
{
	char path[300], comm[64];
	struct dirent *de;
	pid_t tid = 0;
	DIR *d = opendir("/proc/self/task");
	FILE *f;

	CHECK(d);
	while (!tid && (de = readdir(d))) {
		if (atoi(de->d_name) <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) &&
		    !strcmp(comm, "rewire-ctl\n"))
			tid = atoi(de->d_name);
		fclose(f);
	}
	closedir(d);
	CHECK(tid > 0);
	return tid;
}

/* utime + stime, in clock ticks, of the thread whose stat file is open as
 * @fd (read again from offset 0: no descriptor needed). */
static unsigned long long cpu_ticks(int fd)
{
	char buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	CHECK(n > 0);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	CHECK(p);
	/* After "(comm) ": state, then fields 4..13; utime and stime are
	 * fields 14 and 15. */
	CHECK_EQ(sscanf(p + 2,
			"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			&ut, &st),
		 2);
	return ut + st;
}

/* Out of file descriptors: accept4() fails with EMFILE and leaves the
 * connection in the backlog. The control thread must not spin on the
 * readable listening socket; it answers with the reason, and serves
 * again once descriptors are back. */
static void test_emfile(void)
{
	struct rlimit old, low;
	int pre[3], statfd, *fill, nfill = 0, maxfd = 0;
	char path[128], msg[512];
	struct rw_wire_msg m;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	unsigned long long t0, t1;
	long hz = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)ctl_tid());
	statfd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(statfd >= 0);
	for (int i = 0; i < 3; i++) {
		pre[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(pre[i] >= 0);
		if (pre[i] > maxfd)
			maxfd = pre[i];
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	/* Room for a few more descriptors, then none. */
	CHECK_OK(getrlimit(RLIMIT_NOFILE, &old));
	low = old;
	low.rlim_cur = (rlim_t)maxfd + 64;
	if (low.rlim_cur > old.rlim_cur)
		low.rlim_cur = old.rlim_cur;
	CHECK_OK(setrlimit(RLIMIT_NOFILE, &low));
	fill = calloc(low.rlim_cur, sizeof(*fill));
	CHECK(fill);
	/* Twice: the server may still be closing connections of the tests
	 * before, which frees descriptors. */
	for (int round = 0; round < 2; round++) {
		for (;;) {
			int fd = dup(statfd);

			if (fd < 0) {
				CHECK_EQ(errno, EMFILE);
				break;
			}
			fill[nfill++] = fd;
		}
		usleep(200000);
	}

	/* Connections while the table is full: the thread stays idle. */
	t0 = cpu_ticks(statfd);
	for (int i = 0; i < 3; i++) {
		CHECK_OK(connect(pre[i], (struct sockaddr *)&a, sizeof(a))
				 ? -errno
				 : 0);
		usleep(330000);
	}
	t1 = cpu_ticks(statfd);
	fprintf(stderr,
		"control thread out of descriptors: %llu ticks in 1 s "
		"(%ld a second)\n",
		t1 - t0, hz);
	CHECK(t1 - t0 <= (unsigned long long)hz / 5);
	/* Each was refused with the reason (or, without a spare, is still
	 * waiting in the backlog: no reply yet). */
	CHECK_OK(rw_wire_recv(pre[0], &m, 5000));
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -EMFILE);
	CHECK(strstr(msg, "out of file descriptors"));
	rw_wire_msg_free(&m);

	/* Descriptors back: served again. */
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	free(fill);
	CHECK_OK(setrlimit(RLIMIT_NOFILE, &old));
	for (int i = 0; i < 3; i++)
		close(pre[i]);
	close(statfd);
	close(hello());
}

static void trace_start_req(int fd, struct rw_wire_msg *m)
{
	rw_wire_begin(&out, RW_MSG_TRACE_START);
	rw_wire_str(&out, RW_TAG_NAME, "ctl_test_tp");
	roundtrip(fd, m);
}

/* Sixteen connections that never send do not lock a real client out:
 * they time out (no HELLO within 2 s) and the client, waiting in the
 * backlog meanwhile, is served within its own HELLO timeout. A connection
 * that said HELLO and then nothing is closed after 5 s; one with a trace
 * session is not idle and stays. */
static void test_idle(void)
{
	int silent[16], tracing, quiet, fd;
	struct rw_wire_msg m;
	double t0, t;

	for (int i = 0; i < 16; i++)
		silent[i] = connect_ctl();
	t = now_s();
	fd = hello();
	t = now_s() - t;
	fprintf(stderr,
		"a client after 16 silent connections: served in "
		"%.2f s\n",
		t);
	/* The rewire command waits 5 s for HELLO's answer. */
	CHECK(t < 4.0);
	for (int i = 0; i < 16; i++)
		check_closed(silent[i]);
	close(fd);

	tracing = hello();
	quiet = hello();
	t0 = now_s();
	trace_start_req(tracing, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	rw_wire_msg_free(&m);
	/* 5 s after its HELLO, the quiet one is closed. */
	t = 5.5 - (now_s() - t0);
	if (t > 0)
		usleep((useconds_t)(t * 1e6));
	check_closed(quiet);
	rw_wire_begin(&out, RW_MSG_TRACE_STOP);
	roundtrip(tracing, &m);
	CHECK_EQ(m.type, RW_MSG_OK);
	rw_wire_msg_free(&m);
	close(tracing);
}

/* The trace sessions' shared memory is capped in total. */
static void test_trace_cap(void)
{
	int fds[3];
	struct rw_wire_msg m;
	char msg[512];

	/* A session of 64 slots of 256 KiB rings is 16 MiB and a little. */
	setenv("REWIRE_TRACE_MEM_MAX", "40M", 1);
	for (int i = 0; i < 3; i++)
		fds[i] = hello();
	for (int i = 0; i < 2; i++) {
		trace_start_req(fds[i], &m);
		CHECK_EQ(m.type, RW_MSG_OK);
		rw_wire_msg_free(&m);
	}
	trace_start_req(fds[2], &m);
	CHECK_EQ(error_of(&m, msg, sizeof(msg)), -ENOMEM);
	rw_wire_msg_free(&m);
	fprintf(stderr, "third session: %s\n", msg);
	CHECK(strstr(msg, "capped at 40.0 MiB"));
	CHECK(strstr(msg, "in use by 2 sessions"));
	CHECK(strstr(msg, "REWIRE_TRACE_MEM_MAX"));
	CHECK(strstr(msg, "--ring-size"));
	/* A session that ends gives its share back. */
	close(fds[0]);
	for (int i = 0; i < 100; i++) {
		trace_start_req(fds[2], &m);
		if (m.type == RW_MSG_OK)
			break;
		rw_wire_msg_free(&m);
		usleep(20000);
	}
	CHECK_EQ(m.type, RW_MSG_OK);
	rw_wire_msg_free(&m);
	close(fds[1]);
	close(fds[2]);
	unsetenv("REWIRE_TRACE_MEM_MAX");
}

int main(void)
{
	char base[] = "/tmp/rw-test-ctl-XXXXXX", dir[256];
	struct stat st;
	pid_t child;
	int fd, status;

	CHECK(mkdtemp(base));
	test_dir_checks(base);
	snprintf(dir, sizeof(dir), "%s/ok", base);
	setenv("REWIRE_CTL_DIR", dir, 1);
	CHECK_OK(rw_ctl_start());
	CHECK_OK(rw_ctl_start()); /* running already: 0 */
	check_threads_block_signals();
	CHECK_OK(stat(dir, &st));
	CHECK_EQ(st.st_mode & 07777, 0700);
	CHECK_OK(rw_ctl_socket_path(sock, sizeof(sock)));
	CHECK(strstr(sock, dir) == sock);
	CHECK_OK(stat(sock, &st));
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600);

	test_handshake();
	fd = hello();
	test_ls(fd);
	test_key(fd);
	test_call(fd);
	test_patch_errors(fd);
	close(fd);
	test_trace();
	test_full();
	test_emfile();
	test_idle();
	test_trace_cap();

	/* A child of fork() has no server; the parent's still answers.
	 * (TSan refuses the threads liburcu restarts in a forked child.) */
#ifndef __SANITIZE_THREAD__
	child = fork();
	CHECK(child >= 0);
	if (!child)
		_exit(rw_ctl_socket_path(dir, sizeof(dir)) == -ENOTCONN ? 0
									: 1);
	CHECK_EQ(waitpid(child, &status, 0), child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#else
	(void)child;
	(void)status;
#endif
	close(hello());

	CHECK_OK(rw_ctl_stop());
	CHECK(stat(sock, &st) && errno == ENOENT);
	CHECK_EQ(rw_ctl_socket_path(sock, sizeof(sock)), -ENOTCONN);
	rw_wire_free(&out);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/loose", base);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/link", base);
	unlink(dir);
	rmdir(base);
	puts("test_ctl: ok");
	return 0;
}
