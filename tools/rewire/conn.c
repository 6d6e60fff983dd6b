// SPDX-License-Identifier: MIT
/*
 * Finding a process's control socket, connecting, HELLO, and one request
 * at a time.
 *
 * The socket of process PID is DIR/PID.sock, DIR being the control
 * directory of the user that owns /proc/PID (src/ctl/sockdir.h), or of
 * root for a process that dropped privileges after its server started.
 * Because $REWIRE_CTL_DIR may differ between the process and this
 * command, the directories tried are, for each of those users in turn:
 * the one this command's environment gives, the one the process's initial
 * environment gives (/proc/PID/environ, when readable), and the default
 * one.
 *
 * What can go wrong is told apart, each with its own message:
 *   - no /proc/PID                       no such process
 *   - PID is a thread                    names its process
 *   - no socket in any directory         not started with a control server
 *   - EACCES on the directory or socket  another user's process
 *   - ECONNREFUSED                       stale socket (nobody listens)
 *   - HELLO refused or closed            refused peer, version mismatch
 *
 * Nothing is sent before the socket is known to be the process's own
 * (doc/SECURITY.md). Another local user can create a user's control
 * directory before that user's processes do (/tmp/rewire-UID) and answer
 * there for any of them; the requests would tell it the paths of patch
 * files, and its replies would fool the user. So:
 *   1. the directory is opened with O_NOFOLLOW|O_DIRECTORY (a symbolic
 *      link is refused) and checked on that descriptor: owned by the
 *      process's user (the owner of /proc/PID or its effective uid) or
 *      root, no access for group or others (the server makes it 0700);
 *      the socket in it must belong to one of those users as well;
 *   2. the connection goes through that descriptor
 *      (/proc/self/fd/N/PID.sock), so a directory swapped after the check
 *      is not the one connected to;
 *   3. before HELLO, the server's credentials (SO_PEERCRED, taken by the
 *      kernel when the server called listen) must be the process's: its
 *      pid, and a uid of those users. A server of another process, or of
 *      another user, is refused: exit code 3, and it received nothing
 *      but the connection.
 */
#include "rewire.h"

#include "ctl/sockdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/openat2.h>

#ifndef REWIRE_VERSION
#define REWIRE_VERSION "unknown"
#endif

#define CONNECT_TIMEOUT_MS 5000
#define HELLO_TIMEOUT_MS 5000
#define CALL_TIMEOUT_MS 60000

/* fail(), or with c->quiet the message kept in c->errmsg. */
__attribute__((format(printf, 4, 5))) static int
cfail(struct conn *c, int code, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	c->err = err;
	if (c->quiet)
		return code;
	return fail(code, err, "%s", c->errmsg);
}

int sockdir_for(uid_t uid, const char *env_dir, char *out, size_t size)
{
	const char *cur = getenv("REWIRE_CTL_DIR");
	char *saved = cur ? strdup(cur) : NULL;
	int ret;

	if (env_dir && *env_dir)
		setenv("REWIRE_CTL_DIR", env_dir, 1);
	else
		unsetenv("REWIRE_CTL_DIR");
	ret = rw_sockdir_path(uid, out, size);
	if (saved) {
		setenv("REWIRE_CTL_DIR", saved, 1);
		free(saved);
	} else {
		unsetenv("REWIRE_CTL_DIR");
	}
	return ret;
}

/* REWIRE_CTL_DIR from the process's initial environment, if readable. */
static bool target_env_dir(pid_t pid, char *out, size_t size)
{
	char path[64], buf[65536];
	const char key[] = "REWIRE_CTL_DIR=";
	ssize_t n;
	size_t len = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
		if (!strncmp(buf + i, key, sizeof(key) - 1) &&
		    buf[i + sizeof(key) - 1]) {
			snprintf(out, size, "%s", buf + i + sizeof(key) - 1);
			return true;
		}
	}
	return false;
}

/* The state letter of /proc/PID/stat ('Z' zombie, 'X' dead), or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return 0;
	return p[2];
}

/* Alive: exists and is not a zombie. */
static bool proc_alive(pid_t pid)
{
	char s = proc_state(pid);

	return s && s != 'Z' && s != 'X';
}

/* Tgid of /proc/PID/status, or 0. */
static pid_t proc_tgid(pid_t pid)
{
	char path[64], line[256];
	long tgid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %ld", &tgid) == 1)
			break;
	fclose(f);
	return (pid_t)tgid;
}

static void proc_comm(pid_t pid, char *out, size_t size)
{
	thread_comm(pid, pid, out, size);
}

static const char *user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw && pw->pw_name)
		snprintf(buf, size, "%s, uid %u", pw->pw_name, (unsigned)uid);
	else
		snprintf(buf, size, "uid %u", (unsigned)uid);
	return buf;
}

/* The real, effective, saved and file-system uids of /proc/PID/status. */
static bool proc_uids(pid_t pid, uid_t out[4])
{
	char path[64], line[256];
	unsigned u[4];
	bool ok = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f))
		ok = sscanf(line, "Uid: %u %u %u %u", &u[0], &u[1], &u[2],
			    &u[3]) == 4;
	fclose(f);
	for (int i = 0; ok && i < 4; i++)
		out[i] = (uid_t)u[i];
	return ok;
}

/*
 * Whether @uid may own the control directory and socket of c->pid and
 * serve it: root, the owner of /proc/PID (c->uid), or the process's
 * effective uid now. (A server started before a privilege drop listens
 * with the uid it had: root, or the owner of /proc/PID, which stays root
 * for a process that is no longer dumpable.)
 */
static bool trusted_uid(const struct conn *c, uid_t uid)
{
	uid_t u[4];

	if (uid == 0 || uid == c->uid)
		return true;
	return proc_uids(c->pid, u) && uid == u[1];
}

/* "uid 1000 (alice)" */
static const char *uid_str(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw && pw->pw_name)
		snprintf(buf, size, "uid %u (%s)", (unsigned)uid, pw->pw_name);
	else
		snprintf(buf, size, "uid %u", (unsigned)uid);
	return buf;
}

/*
 * Step 1 of the checks above, on the directory open as @dfd and the
 * socket @name in it. 0, or an exit code with the reason printed.
 */
static int check_dir(struct conn *c, int dfd, const char *dir, const char *name,
		     const char *in_ns)
{
	char owner[96], proc_owner[96];
	struct stat st;

	if (fstat(dfd, &st))
		return cfail(c, EX_NOPROC, -errno, "%s%s: %s", dir, in_ns,
			     strerror(errno));
	if (!trusted_uid(c, st.st_uid))
		return cfail(
			c, EX_NOPROC, -EPERM,
			"refusing the control directory %s%s: it belongs to "
			"%s, not to the owner of process %d (%s) nor to root; "
			"another user may have created it to answer in "
			"the process's place. Nothing was sent. Remove it "
			"and restart the process's control server",
			dir, in_ns, uid_str(st.st_uid, owner, sizeof(owner)),
			(int)c->pid,
			uid_str(c->uid, proc_owner, sizeof(proc_owner)));
	if (st.st_mode & 077)
		return cfail(c, EX_NOPROC, -EPERM,
			     "refusing the control directory %s%s: its mode is "
			     "%04o; a control directory is 0700 (others could "
			     "put a socket there). Nothing was sent",
			     dir, in_ns, (unsigned)(st.st_mode & 07777));
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return cfail(c, EX_NOPROC, -errno, "%s/%s%s: %s", dir, name,
			     in_ns, strerror(errno));
	if (!S_ISSOCK(st.st_mode) || !trusted_uid(c, st.st_uid))
		return cfail(c, EX_NOPROC, -EPERM,
			     "refusing %s/%s%s: %s of %s, not a socket of the "
			     "owner of process %d (%s) or of root. Nothing "
			     "was sent",
			     dir, name, in_ns,
			     S_ISSOCK(st.st_mode) ? "a socket" : "not a socket",
			     uid_str(st.st_uid, owner, sizeof(owner)),
			     (int)c->pid,
			     uid_str(c->uid, proc_owner, sizeof(proc_owner)));
	return 0;
}

/* Step 3: the server's credentials. 0, or an exit code (printed). */
static int check_peer(struct conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char who[96], proc_owner[96];

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    len != sizeof(cred))
		return cfail(c, EX_NOPROC, -errno,
			     "%s: cannot read the server's credentials "
			     "(SO_PEERCRED: %s); nothing was sent",
			     c->sock, strerror(errno));
	if (cred.pid == c->pid && trusted_uid(c, cred.uid))
		return 0;
	return cfail(c, EX_NOPROC, -EPERM,
		     "refusing %s: the server there is process %d, %s, not "
		     "process %d of %s; another process answers in its place "
		     "(another user's, or a stale socket taken over). Nothing "
		     "was sent",
		     c->sock, (int)cred.pid,
		     uid_str(cred.uid, who, sizeof(who)), (int)c->pid,
		     uid_str(c->uid, proc_owner, sizeof(proc_owner)));
}

/* connect() with a timeout. 0 or a negative errno. */
static int connect_to(int fd, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int flags = fcntl(fd, F_GETFL);
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err = 0;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (errno != EINPROGRESS && errno != EAGAIN)
			return -errno;
		/* UNIX sockets: EAGAIN when the backlog is full. */
		if (errno == EAGAIN)
			return -EAGAIN;
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err)
			return -(err ? err : errno);
	}
	fcntl(fd, F_SETFL, flags);
	return 0;
}

static int hello(struct conn *c, int timeout_ms)
{
	struct rw_wire_buf *b = &c->buf;
	struct rw_wire_msg m = { .fd = -1 };
	char client[128];
	int ret;

	snprintf(client, sizeof(client), "rewire %s (pid %d, uid %u)",
		 REWIRE_VERSION, (int)getpid(), (unsigned)geteuid());
	rw_wire_begin(b, RW_MSG_HELLO);
	rw_wire_u64(b, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_str(b, RW_TAG_CLIENT, client);
	ret = rw_wire_finish(b);
	if (!ret)
		ret = rw_wire_send(c->fd, b, -1);
	/* A server that refuses us may have said why before it closed: read
	 * that even when our HELLO could not be sent. */
	if (!ret || ret == -EPIPE || ret == -ECONNRESET) {
		int rret = rw_wire_recv(c->fd, &m, timeout_ms);

		if (!ret || !rret)
			ret = rret;
	}
	if (ret == -ETIMEDOUT)
		return cfail(
			c, EX_TIMEOUT, ret,
			"process %d: no answer to HELLO within %d ms on %s%s%s",
			(int)c->pid, timeout_ms, c->sock,
			c->deadline_ms ? " (--timeout)" : "",
			stopped_note(c->pid));
	if (ret == -EPROTONOSUPPORT)
		return cfail(c, EX_PROTO, ret,
			     "process %d speaks another version of the control "
			     "protocol (this command: %d)",
			     (int)c->pid, RW_WIRE_VERSION);
	if (ret == -EPROTO || ret == -EMSGSIZE)
		return cfail(c, EX_PROTO, ret,
			     "process %d: malformed reply to HELLO (%s)",
			     (int)c->pid, err_desc(ret));
	if (ret == -ENODATA || ret == -ECONNRESET || ret == -EPIPE) {
		if (!proc_alive(c->pid))
			return cfail(c, EX_NOPROC, -ESRCH,
				     "process %d exited during HELLO",
				     (int)c->pid);
		return cfail(c, EX_NOPROC, ret,
			     "process %d closed the connection without "
			     "answering HELLO: it refused this peer (uid %u; "
			     "only its own user and root may connect) or is "
			     "shutting down",
			     (int)c->pid, (unsigned)geteuid());
	}
	if (ret)
		return cfail(c, EX_NOPROC, ret, "process %d: HELLO: %s",
			     (int)c->pid, err_desc(ret));
	if (m.type == RW_MSG_ERROR) {
		int64_t e = 0;
		char text[RW_WIRE_MAX_STR + 1] = "";

		rw_wire_find_i64(m.payload, m.len, RW_TAG_ERRNO, &e);
		rw_wire_find_str(m.payload, m.len, RW_TAG_MESSAGE, text,
				 sizeof(text));
		rw_wire_msg_free(&m);
		if (e == -EPROTONOSUPPORT || e == -EPROTO)
			return cfail(
				c, EX_PROTO, (int)e,
				"process %d refused the connection: %s "
				"(this command speaks protocol version %d)",
				(int)c->pid, *text ? text : err_desc((int)e),
				RW_WIRE_VERSION);
		return cfail(c, EX_NOPROC, (int)e,
			     "process %d refused the connection: %s",
			     (int)c->pid, *text ? text : err_desc((int)e));
	}
	if (m.type != RW_MSG_OK) {
		rw_wire_msg_free(&m);
		return cfail(c, EX_PROTO, -EPROTO,
			     "process %d: unexpected reply %u to HELLO",
			     (int)c->pid, m.type);
	}
	rw_wire_find_u64(m.payload, m.len, RW_TAG_VERSION, &c->version);
	rw_wire_find_str(m.payload, m.len, RW_TAG_PROGRAM, c->program,
			 sizeof(c->program));
	rw_wire_find_str(m.payload, m.len, RW_TAG_CMDLINE, c->cmdline,
			 sizeof(c->cmdline));
	rw_wire_find_str(m.payload, m.len, RW_TAG_LIBVERSION, c->libversion,
			 sizeof(c->libversion));
	rw_wire_find_str(m.payload, m.len, RW_TAG_PATCH_DIR, c->patch_dir,
			 sizeof(c->patch_dir));
	rw_wire_msg_free(&m);
	if (c->version && c->version != RW_WIRE_VERSION)
		return cfail(c, EX_PROTO, -EPROTONOSUPPORT,
			     "process %d speaks control protocol version %llu, "
			     "this command %d",
			     (int)c->pid, (unsigned long long)c->version,
			     RW_WIRE_VERSION);
	return 0;
}

int conn_connect(struct conn *c, int connect_ms, int hello_ms)
{
	char comm[64], who[128];
	pid_t pid = c->pid;
	int ret;

	proc_comm(pid, comm, sizeof(comm));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return cfail(c, EX_FAIL, -errno, "socket: %s", strerror(errno));
	ret = connect_to(c->fd, *c->via ? c->via : c->sock,
			 conn_ms_left(c, connect_ms));
	switch (ret) {
	case 0:
		break;
	case -ECONNREFUSED:
		if (!proc_alive(pid))
			return cfail(c, EX_NOPROC, -ESRCH,
				     "process %d exited (stale socket %s)",
				     (int)pid, c->sock);
		return cfail(c, EX_NOPROC, ret,
			     "stale control socket %s: nobody listens on it "
			     "(the control server of process %d (%s) stopped, "
			     "or the PID was reused)",
			     c->sock, (int)pid, comm);
	case -EACCES:
	case -EPERM:
		return cfail(c, EX_NOPROC, ret,
			     "permission denied on %s: process %d (%s) belongs "
			     "to %s; run as that user or root",
			     c->sock, (int)pid, comm,
			     user_name(c->uid, who, sizeof(who)));
	case -ENOENT:
		return cfail(c, EX_NOPROC, ret,
			     "the control socket of process %d (%s) went away",
			     (int)pid, comm);
	case -EAGAIN:
	case -ETIMEDOUT:
		return cfail(
			c, EX_NOPROC, ret,
			"process %d (%s) does not accept connections on %s "
			"(%s)",
			(int)pid, comm, c->sock, err_desc(ret));
	default:
		return cfail(c, EX_NOPROC, ret, "cannot connect to %s: %s",
			     c->sock, err_desc(ret));
	}
	ret = check_peer(c);
	if (ret)
		return ret;
	return hello(c, conn_ms_left(c, hello_ms));
}

int conn_ms_left(const struct conn *c, int ms)
{
	uint64_t now = now_ms(), left;

	if (!c->deadline_ms)
		return ms;
	left = c->deadline_ms > now ? c->deadline_ms - now : 0;
	if (left > INT_MAX)
		left = INT_MAX;
	return ms >= 0 && (uint64_t)ms < left ? ms : (int)left;
}

/* The inode of /proc/PID/ns/NAME (or of "/proc/PID/root" for "root"), 0
 * when it cannot be read (another user's process). */
static bool ns_id(pid_t pid, const char *name, dev_t *dev, ino_t *ino)
{
	char path[64];
	struct stat st;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	else
		snprintf(path, sizeof(path), "/proc/self/%s", name);
	if (stat(path, &st))
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return true;
}

/* Whether @pid's NAME (an ns/ entry, or "root") is ours. -1: cannot tell
 * (errno set). */
static int ns_same(pid_t pid, const char *name)
{
	dev_t d1, d2;
	ino_t i1, i2;

	if (!ns_id(pid, name, &d1, &i1))
		return -1;
	if (!ns_id(0, name, &d2, &i2))
		return 1;
	return d1 == d2 && i1 == i2;
}

/*
 * A uid mapped through the uid_map of process @pid when it runs in another
 * user namespace: @to_ns, one of this command's namespace as the process
 * sees it; else one of the process's namespace as this command sees it.
 * @uid itself when unmapped or in our namespace.
 */
static uid_t map_uid(pid_t pid, uid_t uid, bool to_ns)
{
	char path[64];
	unsigned long in, out, count;
	uid_t ret = uid;
	FILE *f;

	if (ns_same(pid, "ns/user") != 0)
		return uid;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return uid;
	while (fscanf(f, "%lu %lu %lu", &in, &out, &count) == 3) {
		unsigned long from = to_ns ? out : in, to = to_ns ? in : out;

		if (uid >= from && uid - from < count) {
			ret = (uid_t)(to + (uid - from));
			break;
		}
	}
	fclose(f);
	return ret;
}

/*
 * Opens @path, absolute as the process sees it, below its root open as
 * @rootfd (-1: ours, a plain open). Links inside the process's tree
 * resolve inside it (RESOLVE_IN_ROOT), and /proc's magic links are
 * refused, so that nothing there leads out of the container. Without
 * openat2 (Linux < 5.6), the path is walked one component at a time
 * refusing every symbolic link (ELOOP).
 */
static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	char buf[4096], *save = NULL, *comp, *next;
	int fd, cur;

	if (rootfd < 0)
		return open(path, flags | O_CLOEXEC);
	fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	cur = dup(rootfd);
	if (cur < 0)
		return -1;
	comp = strtok_r(buf, "/", &save);
	while (comp) {
		next = strtok_r(NULL, "/", &save);
		if (!strcmp(comp, "..")) {
			/* Not resolved without openat2: refused. */
			close(cur);
			errno = EXDEV;
			return -1;
		}
		fd = openat(cur, comp,
			    next ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
				 : flags | O_NOFOLLOW | O_CLOEXEC);
		close(cur);
		if (fd < 0)
			return -1;
		cur = fd;
		comp = next;
	}
	return cur;
}

/* The directory rules of src/ctl/sockdir.h for @nsuid (@uid from here),
 * evaluated inside the process's root (@rootfd) with @env_dir standing for
 * its $REWIRE_CTL_DIR. */
static int sockdir_in_root(int rootfd, uid_t nsuid, uid_t uid,
			   const char *env_dir, char *out, size_t size)
{
	char run[64];
	struct stat st;
	int n, fd;

	if (env_dir && *env_dir) {
		n = snprintf(out, size, "%s", env_dir);
	} else {
		snprintf(run, sizeof(run), "/run/user/%u", (unsigned)nsuid);
		fd = open_in_root(rootfd, run, O_PATH | O_DIRECTORY);
		if (fd >= 0 && !fstat(fd, &st) && S_ISDIR(st.st_mode) &&
		    st.st_uid == uid)
			n = snprintf(out, size, "%s/rewire", run);
		else
			n = snprintf(out, size, "/tmp/rewire-%u",
				     (unsigned)nsuid);
		if (fd >= 0)
			close(fd);
	}
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

const char *where_sock_name(const struct ctl_where *w, char *buf, size_t size)
{
	if (w->other_ns)
		snprintf(buf, size, "%s/%d.sock in the namespace of process %d",
			 w->dir, (int)w->nspid, (int)w->pid);
	else
		snprintf(buf, size, "%s/%d.sock", w->dir, (int)w->nspid);
	return buf;
}

__attribute__((format(printf, 5, 6))) static int
lfail(int code, int err, int *errp, struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	*errp = err;
	return code;
}

/*
 * Finds the directory that holds the socket of c->where.pid and checks it
 * (step 1 of the checks above): c->uid, c->where filled, the directory
 * open in *@dfd. 0 or an exit code, the reason in c->errmsg and *@err.
 */
static int locate(pid_t pid, struct conn *c, int *err, int *dfd_out)
{
	struct ctl_where *w = &c->where;
	char dirs[6][4096], envdir[4096], comm[64], who[128];
	char procpath[64], looked[6 * 4200] = "", sockname[32], in_ns[96] = "";
	int ndirs = 0, found_at = 0, dfd = -1, rootfd = -1, ret;
	bool denied = false, found = false, have_env;
	int same_mnt, same_pid, same_root;
	struct stat st;
	pid_t tgid;

	*dfd_out = -1;
	*err = 0;
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->nspid = pid;
	c->pid = pid;
	snprintf(procpath, sizeof(procpath), "/proc/%d", (int)pid);
	if (stat(procpath, &st))
		return lfail(EX_NOPROC, -ESRCH, err, c, "no such process: %d",
			     (int)pid);
	tgid = proc_tgid(pid);
	if (tgid > 0 && tgid != pid)
		return lfail(EX_NOPROC, -ESRCH, err, c,
			     "%d is a thread of process %d: give the "
			     "process's id",
			     (int)pid, (int)tgid);
	c->uid = w->uid = st.st_uid;
	proc_comm(pid, comm, sizeof(comm));
	if (!proc_alive(pid))
		return lfail(EX_NOPROC, -ESRCH, err, c,
			     "process %d (%s) is exiting", (int)pid, comm);

	/* Its namespaces. NSpid is readable by anyone; the ns links and
	 * the root only by its user and root (another user's process whose
	 * namespaces cannot be told is taken as ours: its directory is
	 * then refused by permissions, as before). */
	w->nspid = proc_nspid(pid, NULL);
	same_mnt = ns_same(pid, "ns/mnt");
	same_pid = ns_same(pid, "ns/pid");
	same_root = ns_same(pid, "root");
	w->other_ns = w->nspid != pid || !same_mnt || !same_pid || !same_root;
	if (w->other_ns) {
		snprintf(w->root, sizeof(w->root), "/proc/%d/root", (int)pid);
		snprintf(in_ns, sizeof(in_ns),
			 " in the namespace of process %d", (int)pid);
		rootfd = open(w->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0) {
			if (errno == ENOENT || errno == ESRCH)
				return lfail(EX_NOPROC, -ESRCH, err, c,
					     "process %d (%s) exited", (int)pid,
					     comm);
			return lfail(
				EX_NOPROC, -EACCES, err, c,
				"permission denied: process %d (%s) runs in "
				"another namespace (its own pid %d) and belongs "
				"to %s; its root %s cannot be opened (%s); run "
				"as that user or root",
				(int)pid, comm, (int)w->nspid,
				user_name(c->uid, who, sizeof(who)), w->root,
				strerror(errno));
		}
	}
	snprintf(sockname, sizeof(sockname), "%d.sock", (int)w->nspid);

	/* The candidate directories, without duplicates: the process's
	 * user's, then root's. A daemon started as root that dropped
	 * privileges (memcached -u, nginx) started its server before the
	 * drop, in root's directory, where it stays; root's directory and
	 * a root server are trusted like the user's own (step 1). In
	 * another namespace, this command's $REWIRE_CTL_DIR means nothing:
	 * only the process's and the defaults, inside its root, count. */
	have_env = target_env_dir(pid, envdir, sizeof(envdir));
	for (int u = 0; u < 2; u++) {
		uid_t uid = u ? 0 : c->uid;

		if (u && c->uid == 0)
			break;
		if (w->other_ns) {
			uid_t nsuid = u ? 0 : map_uid(pid, uid, true);
			uid_t huid = u ? map_uid(pid, 0, false) : uid;

			if (have_env &&
			    !sockdir_in_root(rootfd, nsuid, huid, envdir,
					     dirs[ndirs], sizeof(dirs[0])))
				ndirs++;
			if (!sockdir_in_root(rootfd, nsuid, huid, NULL,
					     dirs[ndirs], sizeof(dirs[0])))
				ndirs++;
			continue;
		}
		if (!sockdir_for(uid, getenv("REWIRE_CTL_DIR"), dirs[ndirs],
				 sizeof(dirs[0])))
			ndirs++;
		if (have_env &&
		    !sockdir_for(uid, envdir, dirs[ndirs], sizeof(dirs[0])))
			ndirs++;
		if (!sockdir_for(uid, NULL, dirs[ndirs], sizeof(dirs[0])))
			ndirs++;
	}
	for (int i = 0; i < ndirs; i++) {
		bool dup = false;

		for (int k = 0; k < i; k++)
			dup |= !strcmp(dirs[k], dirs[i]);
		if (dup)
			continue;
		if (*looked)
			strcat(looked, ", ");
		strcat(looked, dirs[i]);
		/* Step 1: a link there is refused (ELOOP), not followed. */
		dfd = open_in_root(rootfd, dirs[i],
				   O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (dfd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
			int lfd = open_in_root(rootfd, dirs[i],
					       O_PATH | O_NOFOLLOW);
			bool link = lfd >= 0 && !fstat(lfd, &st) &&
				    S_ISLNK(st.st_mode);

			if (lfd >= 0)
				close(lfd);
			if (link || errno == ELOOP) {
				if (rootfd >= 0)
					close(rootfd);
				return lfail(EX_NOPROC, -ELOOP, err, c,
					     "refusing the control directory "
					     "%s%s: it is a symbolic link (a "
					     "control directory is a directory "
					     "of its user, mode 0700). Nothing "
					     "was sent",
					     dirs[i], in_ns);
			}
		}
		if (dfd < 0) {
			if (errno == EACCES)
				denied = true;
			continue;
		}
		if (!fstatat(dfd, sockname, &st, AT_SYMLINK_NOFOLLOW) &&
		    S_ISSOCK(st.st_mode)) {
			found = true;
			found_at = i;
			break;
		}
		if (errno == EACCES)
			denied = true;
		close(dfd);
		dfd = -1;
	}
	if (rootfd >= 0)
		close(rootfd);
	if (!found) {
		if (denied)
			return lfail(EX_NOPROC, -EACCES, err, c,
				     "permission denied: the control directory "
				     "of process %d (%s) belongs to %s; run as "
				     "that user or root",
				     (int)pid, comm,
				     user_name(c->uid, who, sizeof(who)));
		if (c->uid != geteuid() && geteuid() != 0)
			return lfail(
				EX_NOPROC, -EACCES, err, c,
				"process %d (%s) belongs to %s: no control "
				"socket found in %s, and its environment "
				"cannot be read to find its directory; run as "
				"that user or root",
				(int)pid, comm,
				user_name(c->uid, who, sizeof(who)), looked);
		return lfail(EX_NOPROC, -ENOENT, err, c,
			     "process %d (%s) has no control socket (looked "
			     "in %s%s): start it with `rewire run`, "
			     "REWIRE_CTL=1 or rw_ctl_start()",
			     (int)pid, comm, looked, in_ns);
	}
	snprintf(w->dir, sizeof(w->dir), "%s", dirs[found_at]);
	if (snprintf(w->sock, sizeof(w->sock), "%s%s/%s", w->root, w->dir,
		     sockname) >= (int)sizeof(w->sock))
		w->sock[0] = '\0';
	where_sock_name(w, c->sock, sizeof(c->sock));
	{
		bool quiet = c->quiet;

		c->quiet = true;
		ret = check_dir(c, dfd, w->dir, sockname, in_ns);
		c->quiet = quiet;
	}
	if (ret) {
		*err = c->err;
		close(dfd);
		return ret;
	}
	*dfd_out = dfd;
	return 0;
}

int conn_locate(pid_t pid, struct ctl_where *w, int *err, char *why,
		size_t whylen)
{
	struct conn *c = xmalloc(sizeof(*c));
	int dfd, ret;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->quiet = true;
	ret = locate(pid, c, err, &dfd);
	if (dfd >= 0)
		close(dfd);
	*w = c->where;
	if (ret)
		snprintf(why, whylen, "%s", c->errmsg);
	else if (whylen)
		why[0] = '\0';
	free(c);
	return ret;
}

int conn_open(pid_t pid, struct conn *c)
{
	return conn_open_until(pid, c, 0);
}

static int open_at(pid_t pid, struct conn *c, int connect_ms, int hello_ms)
{
	int dfd, err, ret;

	ret = locate(pid, c, &err, &dfd);
	if (ret) {
		c->err = err;
		if (c->quiet)
			return ret;
		return fail(ret, err, "%s", c->errmsg);
	}
	/* Step 2: through the checked directory. */
	snprintf(c->via, sizeof(c->via), "/proc/self/fd/%d/%d.sock", dfd,
		 (int)c->where.nspid);
	ret = conn_connect(c, connect_ms, hello_ms);
	c->via[0] = '\0';
	close(dfd);
	return ret;
}

int conn_open_until(pid_t pid, struct conn *c, uint64_t deadline_ms)
{
	/* `rewire CMD --all`: the arguments were checked (select.c). */
	sel_conn_check();
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->pass_fd = -1;
	c->deadline_ms = deadline_ms;
	return open_at(pid, c, CONNECT_TIMEOUT_MS, HELLO_TIMEOUT_MS);
}

int conn_open_quiet(pid_t pid, struct conn *c, int connect_ms, int hello_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->quiet = true;
	return open_at(pid, c, connect_ms, hello_ms);
}

void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	rw_wire_free(&c->buf);
}

struct rw_wire_buf *conn_begin(struct conn *c, uint16_t type)
{
	c->req_type = type;
	c->pass_fd = -1;
	rw_wire_begin(&c->buf, type);
	return &c->buf;
}

static const char *type_name(uint16_t type)
{
	const char *n = rw_wire_msg_name(type);

	return n ? n : "?";
}

int conn_lost(struct conn *c, int err)
{
	/* A process killed by a signal closes its sockets a moment before
	 * it becomes a zombie: give it a little time. */
	for (int i = 0; i < 200 && proc_alive(c->pid); i++)
		usleep(10000);
	if (!proc_alive(c->pid))
		return fail(EX_NOPROC, -ESRCH, "process %d exited",
			    (int)c->pid);
	return fail(EX_NOPROC, err,
		    "process %d closed the control connection (%s)",
		    (int)c->pid, err_desc(err));
}

/* The process's state, for a message: " (it is stopped)" or "". */
const char *stopped_note(pid_t pid)
{
	char st = proc_state(pid);

	return st == 'T' || st == 't' ? " (it is stopped: SIGSTOP or a "
					"debugger)"
				      : "";
}

int conn_call(struct conn *c, struct rw_wire_msg *reply, int timeout_ms)
{
	uint16_t type;
	int ret, wait_ms;

	memset(reply, 0, sizeof(*reply));
	reply->fd = -1;
	c->err = 0;
	c->errmsg[0] = '\0';
	type = c->req_type;
	ret = rw_wire_finish(&c->buf);
	if (ret)
		return fail(ret == -EINVAL ? EX_USAGE : EX_FAIL, ret,
			    "cannot encode the %s request: %s%s",
			    type_name(type), err_desc(ret),
			    ret == -EINVAL ? " (a name too long?)" : "");
	wait_ms =
		conn_ms_left(c, timeout_ms < 0 ? CALL_TIMEOUT_MS : timeout_ms);
	/* A process that does not read blocks a send once the socket's
	 * buffer is full: the deadline bounds the send too. */
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO,
		   &(struct timeval){ .tv_sec = wait_ms / 1000,
				      .tv_usec = wait_ms % 1000 * 1000 +
						 (wait_ms ? 0 : 1) },
		   sizeof(struct timeval));
	ret = rw_wire_send(c->fd, &c->buf, c->pass_fd);
	c->pass_fd = -1;
	if (ret == -EINTR)
		return EX_INTR;
	if (ret == -EAGAIN || ret == -EWOULDBLOCK) {
		/* Cut short: the stream is unusable. */
		close(c->fd);
		c->fd = -1;
		return fail(EX_TIMEOUT, -ETIMEDOUT,
			    "process %d: the %s request could not be sent "
			    "within %.1f s%s%s",
			    (int)c->pid, type_name(type), wait_ms / 1000.0,
			    c->deadline_ms ? " (--timeout)" : "",
			    stopped_note(c->pid));
	}
	if (ret)
		return conn_lost(c, ret);
	/* The replies of requests that timed out come first, in order. */
	for (;;) {
		ret = rw_wire_recv(c->fd, reply,
				   conn_ms_left(c, timeout_ms < 0
							   ? CALL_TIMEOUT_MS
							   : timeout_ms));
		if (ret || !c->unanswered)
			break;
		c->unanswered--;
		rw_wire_msg_free(reply);
	}
	if (ret == -EINTR)
		return EX_INTR;
	if (ret == -ETIMEDOUT) {
		c->unanswered++;
		c->err = ret;
		snprintf(c->errmsg, sizeof(c->errmsg),
			 "process %d: no reply to %s within %.1f s%s%s",
			 (int)c->pid, type_name(type), wait_ms / 1000.0,
			 c->deadline_ms ? " (--timeout)" : "",
			 stopped_note(c->pid));
		if (c->timeout_quiet)
			return EX_TIMEOUT;
		return fail(EX_TIMEOUT, ret, "%s", c->errmsg);
	}
	if (ret == -EPROTO || ret == -EPROTONOSUPPORT || ret == -EMSGSIZE)
		return fail(EX_PROTO, ret,
			    "process %d: malformed reply to %s (%s)",
			    (int)c->pid, type_name(type), err_desc(ret));
	if (ret)
		return conn_lost(c, ret);
	switch (reply->type) {
	case RW_MSG_OK:
		return 0;
	case RW_MSG_ERROR: {
		int64_t e = 0;
		uint64_t col = 0;

		rw_wire_find_i64(reply->payload, reply->len, RW_TAG_ERRNO, &e);
		rw_wire_find_str(reply->payload, reply->len, RW_TAG_MESSAGE,
				 c->errmsg, sizeof(c->errmsg));
		rw_wire_find_u64(reply->payload, reply->len, RW_TAG_COLUMN,
				 &col);
		c->errcol = col <= RW_WIRE_MAX_STR ? (unsigned)col : 0;
		rw_wire_msg_free(reply);
		c->err = (int)e;
		if (e == -EPROTO)
			return fail(EX_PROTO, c->err,
				    "process %d could not parse the %s "
				    "request: %s",
				    (int)c->pid, type_name(type),
				    *c->errmsg ? c->errmsg : err_desc(c->err));
		return EX_FAIL;
	}
	case RW_MSG_UNKNOWN:
		rw_wire_msg_free(reply);
		return fail(EX_PROTO, -EOPNOTSUPP,
			    "process %d (librewire %s) does not know the %s "
			    "request",
			    (int)c->pid, *c->libversion ? c->libversion : "?",
			    type_name(type));
	default:
		rw_wire_msg_free(reply);
		return fail(EX_PROTO, -EPROTO,
			    "process %d: unexpected reply type %u to %s",
			    (int)c->pid, reply->type, type_name(type));
	}
}

int conn_request(struct conn *c, struct rw_wire_msg *reply, const char *fmt,
		 ...)
{
	char what[512];
	va_list ap;
	int ret = conn_call(c, reply, -1);

	if (ret != EX_FAIL)
		return ret;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return conn_fail(c, what);
}

int conn_fail(struct conn *c, const char *what)
{
	const char *m = *c->errmsg ? c->errmsg : err_desc(c->err);

	return fail(EX_FAIL, c->err, "%s: %s (%s)", what, m, err_name(c->err));
}
