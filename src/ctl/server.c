/* SPDX-License-Identifier: MIT */
/*
 * The control server (rewire/ctl.h): one thread, one UNIX socket, requests
 * in the wire format of wire.h served one at a time.
 *
 * The thread's loop:
 *  1. poll() the wake-up pipe, the listening socket (unless accepting is
 *     paused, below) and every connection; with a timeout of 100 ms while
 *     a patch transition is in progress, else until the next connection
 *     times out or the pause ends;
 *  2. a readable connection: read one message (bounded in size and in
 *     time), answer it; close the connection on EOF, on a message that
 *     does not parse, or when the handshake fails;
 *  3. a new connection: read its credentials (SO_PEERCRED); refuse (and
 *     log) a peer that is neither this process's user nor root, or one too
 *     many; else add it, waiting for HELLO;
 *  4. close the connections that timed out (below);
 *  5. drive each transition in progress one round (rw_patch_wait(p, 0)).
 *
 * Idle connections. A connection must say HELLO within HELLO_TIMEOUT_MS
 * of its accept, and a connection without a trace session is closed when
 * it sent no request for IDLE_TIMEOUT_MS after the last reply: every
 * client of the rewire command sends its requests back to back, so such
 * a connection is one that was forgotten or one that only holds a slot.
 * A connection with a trace session is never idle in that sense: its
 * client reads the rings and sends nothing until TRACE_STOP; it ends when
 * the client closes it. When every slot is taken and one of them times
 * out within HELLO_TIMEOUT_MS, a new connection waits in the listen
 * backlog until then instead of being refused; otherwise it is accepted
 * and answered -EBUSY.
 *
 * Out of descriptors. accept4() failing with EMFILE leaves the connection
 * in the backlog and the listening socket readable: polling it again would
 * spin. The thread keeps one spare descriptor (/dev/null): on EMFILE it
 * closes it, accepts, answers -EMFILE ("out of file descriptors"), closes
 * the connection and reopens the spare. When that is not possible either
 * (ENFILE, ENOMEM, or another thread took the spare's number), it stops
 * polling the listening socket for a pause that doubles from 10 ms up to
 * 1 s, and tries again after it.
 *
 * A connection's trace session (TRACE_START) ends with TRACE_STOP or when
 * the connection closes, so a client killed with SIGKILL leaves no probe
 * attached.
 *
 * fork(). A server started by REWIRE_CTL=1 (`rewire run`) follows fork():
 * the child of such a process starts its own server (its own socket,
 * DIR/CHILDPID.sock) from rewire's fork handler, once the library's other
 * fork handlers made the child's state consistent (fork_child, registered
 * at level RW__FORK_CTL, whose child handler runs last). So a daemon that forks and lets
 * its parent exit (daemon(3), `memcached -d`, double forks) keeps a
 * server, and so does each worker of a program that forks workers. The
 * child also watches its parent (a pidfd): when the parent exits without
 * removing its socket (daemon(3)'s parent calls _exit), the child removes
 * it once nobody listens there. A server started by rw_ctl_start() does
 * not follow fork: the program decides. In every case a server starting
 * removes the sockets of its directory whose process is gone.
 *
 * The patch directory (patchdir.c, rewire/ctl.h). The first start in the
 * process applies it, under ctl_lock, before the socket exists (a client
 * never sees the program half patched) and before the control thread runs
 * (which is why the thread looks for a transition in progress from its
 * first round). A child of fork() has the patches already and never
 * applies it again; HELLO names the directory (PATCH_DIR).
 *
 * Locks: ctl_lock (a mutex) serializes rw_ctl_start/stop and the fork
 * handler; the state below is written under it while the thread does not
 * run, and read by the thread.
 */
#include "../arch/arch.h"
#include "../internal.h"
#include "../objects.h"
#include "agg.h"
#include "ring.h"
#include "filter.h"
#include "patchdir.h"
#include "sockdir.h"
#include "trace.h"
#include "wire.h"

#include <rewire/config.h>
#include <rewire/ctl.h>
#include <rewire/ftrace.h>
#include <rewire/livepatch.h>
#include <rewire/static_call.h>
#include <rewire/static_key.h>
#include <rewire/threads.h>
#include <rewire/tracepoint.h>

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 16
/* A request is read within this time once its first byte arrived. */
#define RECV_TIMEOUT_MS 2000
/* HELLO comes within this time of the accept, or the connection is
 * closed. */
#define HELLO_TIMEOUT_MS 2000
/* A connection without a trace session that sends no request for this
 * time after its last reply is closed (see "Idle connections" above). */
#define IDLE_TIMEOUT_MS 5000
/* Out of descriptors: the longest pause before accepting again. */
#define ACCEPT_PAUSE_MAX_MS 1000
/* A reply is sent within this time, or the connection is closed. */
#define SEND_TIMEOUT_S 5
/* How often the thread drives a transition in progress. */
#define DRIVE_MS 100
#define MAX_PATTERNS 64

struct client {
	int fd;
	bool hello;
	pid_t pid;
	uid_t uid;
	struct rw__trace *trace;
	struct rw__agg *agg; /* funccount / funclatency */
	/* SNAPSHOT: the number of the session this connection took a
	 * snapshot of (for FUNCS), 0 none. A number, not a pointer: the
	 * session belongs to another connection and may stop at any time. */
	uint64_t snap_session;
	/* CLOCK_MONOTONIC ms: when the connection times out unless it
	 * sends a request; 0 never (a trace session). */
	int64_t expires;
	/* The trace or aggregate session, for LS (TRACE_SESSION): its
	 * number, when it started (CLOCK_MONOTONIC ns), the function
	 * patterns it was given (@npats strings one after the other,
	 * malloc'ed). */
	uint64_t session;
	int64_t since_ns;
	char *pats;
	size_t npats;
};

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
/* Written under ctl_lock while the thread does not run. */
static bool running;
static pthread_t ctl_thread;
static int listen_fd = -1;
static int wake_pipe[2] = { -1, -1 };
static pid_t owner_pid;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static bool atexit_done;
static char last_error[256];
/* The server was started by REWIRE_CTL=1: it follows fork(). */
static bool from_env;
/* The patch directory (absolute, "" none), set by the first start; and
 * whether it was applied (once per process: a child of fork() has the
 * patches already). Written under ctl_lock before the thread starts. */
static char patch_dir[PATH_MAX];
static bool patch_dir_done;
/* In librewire's constructor (REWIRE_CTL=1), before main(). */
static bool in_ctor;
/* This thread applies the patch directory, under ctl_lock: a patch's
 * constructor that starts or stops the server would wait for itself. */
static __thread bool applying;
/* After fork(): the parent's pid and socket, for the child's server to
 * remove when the parent exits without removing it (0 and "": none). */
static pid_t parent_pid;
static char parent_sock[sizeof(sock_path)];
/* The thread's own. */
static struct client clients[MAX_CLIENTS];
static struct rw_wire_buf reply;
static int spare_fd = -1, parent_pidfd = -1;
static int accept_pause_ms;
static int64_t accept_paused_until;

/* --- Replies --------------------------------------------------------------
 */

/* Returns 0, or a negative errno when the reply was not sent (the
 * connection is then closed by the caller: the stream may be cut in the
 * middle of a message). */
static int send_reply(struct client *c, int pass_fd)
{
	int err = rw_wire_finish(&reply);

	if (err) {
		/* The reply did not fit: say so instead. */
		rw_wire_begin(&reply, RW_MSG_ERROR);
		rw_wire_i64(&reply, RW_TAG_ERRNO, err);
		rw_wire_str(&reply, RW_TAG_MESSAGE,
			    "the reply does not fit in a message");
		if (rw_wire_finish(&reply))
			return -ENOMEM;
		pass_fd = -1;
	}
	return rw_wire_send(c->fd, &reply, pass_fd);
}

static int send_error(struct client *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int send_error(struct client *c, int err, const char *fmt, ...)
{
	char msg[RW_WIRE_MAX_STR];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rw_wire_begin(&reply, RW_MSG_ERROR);
	rw_wire_i64(&reply, RW_TAG_ERRNO, err);
	rw_wire_str(&reply, RW_TAG_MESSAGE, msg);
	return send_reply(c, -1);
}

/* A string field that must fit @out whole: a name cut short could name
 * something else. */
static bool find_str(const struct rw_wire_msg *m, uint16_t tag, char *out,
		     size_t size)
{
	struct rw_wire_field f;

	return rw_wire_find(m->payload, m->len, tag, &f) &&
	       f.kind == RW_WK_STR && f.len < size &&
	       rw_wire_get_str(&f, out, size);
}

/* --- Names ------------------------------------------------------------------
 */

static void exe_path(char *out, size_t size)
{
	ssize_t n = readlink("/proc/thread-self/exe", out, size - 1);

	out[n > 0 ? n : 0] = '\0';
}

static void object_of(const void *addr, char *out, size_t size)
{
	Dl_info info;

	if (dladdr(addr, &info) && info.dli_fname && *info.dli_fname)
		snprintf(out, size, "%s", info.dli_fname);
	else /* the main program: dladdr gives "" (or argv[0]) */
		exe_path(out, size);
}

static const char *basename_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static bool is_tracepoint_key(const struct rw_static_key *k)
{
	return k->name && !strncmp(k->name, "rw__tpkey_", 10);
}

static bool is_tracepoint_call(const struct rw_static_call *c)
{
	return c->name && !strncmp(c->name, "rw__tpcall_", 11);
}

/* "name" or "name@object" (object: a file's base name). */
static bool name_matches(const char *have, const void *addr, const char *want)
{
	const char *at = strchr(want, '@');
	char obj[4096];

	if (!have)
		return false;
	if (!at)
		return !strcmp(have, want);
	if (strlen(have) != (size_t)(at - want) ||
	    strncmp(have, want, (size_t)(at - want)))
		return false;
	object_of(addr, obj, sizeof(obj));
	return !strcmp(basename_of(obj), at + 1) || !strcmp(obj, at + 1);
}

/*
 * The one item of @v (pointers to structures whose const char * name is at
 * @name_off) that @want names. A key or call declared in a header and seen
 * by several objects is one item: matches are counted by address. Returns
 * 0 and the item in *@out, -ENOENT, or -RW_ERR_AMBIGUOUS with the count in
 * *@found.
 */
static int lookup(void *const *v, size_t n, size_t name_off, const char *want,
		  void **out, size_t *found)
{
	*out = NULL;
	*found = 0;
	for (size_t i = 0; i < n; i++) {
		const char *have =
			*(const char *const *)((const char *)v[i] + name_off);

		if (!name_matches(have, v[i], want))
			continue;
		if (*out != v[i])
			(*found)++;
		*out = v[i];
	}
	return !*found ? -ENOENT : *found > 1 ? -RW_ERR_AMBIGUOUS : 0;
}

static int lookup_failed(struct client *c, int err, size_t found,
			 const char *what, const char *name)
{
	if (err == -ENOENT)
		return send_error(c, err, "no %s named '%s'", what, name);
	return send_error(c, err,
			  "%zu %ss are named '%s'; say which with "
			  "NAME@OBJECT (see rewire ls)",
			  found, what, name);
}

/* The name of a call's target: a registered name, "null", "ret0", the
 * dynamic symbol, or the address. */
static void target_name(const struct rw__objects_snapshot *s,
			const struct rw_static_call *sc, void *func, char *out,
			size_t size)
{
	Dl_info info;

	if (!func) {
		snprintf(out, size, "null");
		return;
	}
	if (func == RW_STATIC_CALL_RET0) {
		snprintf(out, size, "ret0");
		return;
	}
	for (size_t i = 0; i < s->ntargets; i++) {
		if (s->targets[i]->call == sc && s->targets[i]->func == func) {
			snprintf(out, size, "%s", s->targets[i]->name);
			return;
		}
	}
	if (dladdr(func, &info) && info.dli_sname && info.dli_saddr == func)
		snprintf(out, size, "%s", info.dli_sname);
	else
		snprintf(out, size, "%#lx", (unsigned long)(uintptr_t)func);
}

static void func_name(const struct rw_tracepoint *tp, void *func, char *out,
		      size_t size)
{
	Dl_info info;

	if (rw__trace_is_probe_of(tp, func)) {
		snprintf(out, size, "rewire-trace");
		return;
	}
	if (dladdr(func, &info) && info.dli_sname && info.dli_saddr == func)
		snprintf(out, size, "%s", info.dli_sname);
	else
		snprintf(out, size, "%#lx", (unsigned long)(uintptr_t)func);
}

static void thread_comm(pid_t tid, char *out, size_t size)
{
	ssize_t n = rw__task_read(tid, "comm", out, size);

	if (n <= 0)
		out[0] = '\0';
	else if (out[n - 1] == '\n')
		out[n - 1] = '\0';
}

static char thread_state(pid_t tid)
{
	int state = rw__task_state(tid);

	return state > 0 ? (char)state : '?';
}

/* --- Requests ---------------------------------------------------------------
 */

static void put_fields(const struct rw_tracepoint *tp)
{
	for (unsigned i = 0; i < tp->nargs; i++) {
		rw_wire_group_begin(&reply, RW_TAG_FIELD);
		rw_wire_str(&reply, RW_TAG_NAME, tp->fields[i].name);
		/* The type is stringified after macro expansion: bool is
		 * _Bool there. */
		rw_wire_str(&reply, RW_TAG_CTYPE,
			    strcmp(tp->fields[i].type, "_Bool")
				    ? tp->fields[i].type
				    : "bool");
		rw_wire_u64(&reply, RW_TAG_KIND, (uint64_t)tp->fields[i].kind);
		rw_wire_group_end(&reply);
	}
}

/* The fields of a patch's state (PATCH_STATE's reply, LS's PATCH). */
static void put_patch(struct rw_patch *p)
{
	struct rw_patch_info info;
	char comm[32];

	if (rw_patch_state(p, &info))
		return;
	rw_wire_str(&reply, RW_TAG_NAME, info.name);
	rw_wire_str(&reply, RW_TAG_PATH, info.path);
	rw_wire_u64(&reply, RW_TAG_STATE, (uint64_t)info.state);
	rw_wire_u64(&reply, RW_TAG_FORCED, (uint64_t)info.forced);
	rw_wire_u64(&reply, RW_TAG_REPLACE, (uint64_t)info.replace);
	rw_wire_u64(&reply, RW_TAG_NFUNCS, info.nfuncs);
	rw_wire_u64(&reply, RW_TAG_TARGET_PATCHED,
		    (uint64_t)info.target_patched);
	rw_wire_u64(&reply, RW_TAG_TOTAL, info.threads_total);
	rw_wire_u64(&reply, RW_TAG_SWITCHED, info.threads_switched);
	rw_wire_u64(&reply, RW_TAG_TRANSITION_NS, info.transition_ns);
	rw_wire_u64(&reply, RW_TAG_ATTEMPTS, info.attempts);
	rw_wire_str(&reply, RW_TAG_FILE_ID, rw__patch_file_id(p));
	rw_wire_u64(&reply, RW_TAG_FROM_DIR, rw__patch_from_dir(p));
	for (size_t i = 0; i < info.npending && i < RW_PATCH_INFO_THREADS;
	     i++) {
		const struct rw_patch_thread *t = &info.pending[i];

		thread_comm(t->tid, comm, sizeof(comm));
		rw_wire_group_begin(&reply, RW_TAG_PENDING);
		rw_wire_u64(&reply, RW_TAG_TID, (uint64_t)t->tid);
		rw_wire_str(&reply, RW_TAG_NAME, comm);
		rw_wire_u64(&reply, RW_TAG_WHY, (uint64_t)t->why);
		rw_wire_strn(&reply, RW_TAG_FUNC, t->func,
			     strnlen(t->func, sizeof(t->func)));
		rw_wire_u64(&reply, RW_TAG_IP, t->ip);
		rw_wire_group_end(&reply);
	}
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static void put_threads(void)
{
	struct rw_patch *top = NULL, *list[256];
	struct rw_patch_thread *pt = NULL;
	size_t np = rw_patch_list(list, RW_ARRAY_SIZE(list));
	long npt = 0;
	pid_t *tids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	char comm[32];

	if (np)
		top = list[(np < RW_ARRAY_SIZE(list) ? np : RW_ARRAY_SIZE(list)) -
			   1];
	if (top) {
		npt = rw_patch_threads(top, NULL, 0);
		if (npt > 0) {
			pt = calloc((size_t)npt + 64, sizeof(*pt));
			npt = pt ? rw_patch_threads(top, pt, (size_t)npt + 64)
				 : 0;
			if (npt < 0)
				npt = 0;
		}
	}
	d = opendir("/proc/self/task");
	while (d && (de = readdir(d))) {
		long tid = strtol(de->d_name, NULL, 10);

		if (tid <= 0)
			continue;
		if (n == cap) {
			pid_t *v = realloc(tids, (cap ? cap * 2 : 64) *
							 sizeof(*tids));

			if (!v)
				break;
			tids = v;
			cap = cap ? cap * 2 : 64;
		}
		tids[n++] = (pid_t)tid;
	}
	if (d)
		closedir(d);
	if (n)
		qsort(tids, n, sizeof(*tids), cmp_pid);
	for (size_t i = 0; i < n; i++) {
		char st[2] = { thread_state(tids[i]), '\0' };

		thread_comm(tids[i], comm, sizeof(comm));
		rw_wire_group_begin(&reply, RW_TAG_THREAD);
		rw_wire_u64(&reply, RW_TAG_TID, (uint64_t)tids[i]);
		rw_wire_str(&reply, RW_TAG_NAME, comm);
		rw_wire_str(&reply, RW_TAG_STATE, st);
		for (long j = 0; pt && j < npt; j++) {
			if (pt[j].tid == tids[i]) {
				rw_wire_i64(&reply, RW_TAG_PATCHED,
					    pt[j].patched);
				break;
			}
		}
		rw_wire_group_end(&reply);
	}
	free(tids);
	free(pt);
}

static void put_sessions(void);

static int do_ls(struct client *c)
{
	struct rw__objects_snapshot s;
	struct rw_patch *list[256];
	size_t np;
	char obj[4096], name[256];
	void *probes[64];
	int err;

	err = rw__objects_snapshot(&s);
	if (err)
		return send_error(c, err, "cannot list the objects: %s",
				  rw_strerror(err));
	rw_wire_begin(&reply, RW_MSG_OK);
	for (size_t i = 0; i < s.nkeys; i++) {
		struct rw_static_key *k = s.keys[i];

		if (is_tracepoint_key(k))
			continue;
		object_of(k, obj, sizeof(obj));
		rw_wire_group_begin(&reply, RW_TAG_KEY);
		rw_wire_str(&reply, RW_TAG_NAME, k->name);
		rw_wire_str(&reply, RW_TAG_OBJECT, obj);
		rw_wire_u64(&reply, RW_TAG_ENABLED, rw_static_key_enabled(k));
		rw_wire_i64(&reply, RW_TAG_COUNT, rw_static_key_count(k));
		rw_wire_u64(&reply, RW_TAG_INITIAL, k->initial != 0);
		rw_wire_u64(&reply, RW_TAG_SITES,
			    (uint64_t)rw_static_key_sites(k));
		rw_wire_group_end(&reply);
	}
	for (size_t i = 0; i < s.ncalls; i++) {
		struct rw_static_call *sc = s.calls[i];

		if (is_tracepoint_call(sc))
			continue;
		object_of(sc, obj, sizeof(obj));
		target_name(&s, sc, rw__static_call_query(sc), name,
			    sizeof(name));
		rw_wire_group_begin(&reply, RW_TAG_CALL);
		rw_wire_str(&reply, RW_TAG_NAME, sc->name);
		rw_wire_str(&reply, RW_TAG_OBJECT, obj);
		rw_wire_str(&reply, RW_TAG_TARGET, name);
		for (size_t j = 0; j < s.ntargets; j++) {
			bool dup = false;

			if (s.targets[j]->call != sc)
				continue;
			for (size_t k = 0; k < j && !dup; k++)
				dup = s.targets[k]->call == sc &&
				      !strcmp(s.targets[k]->name,
					      s.targets[j]->name);
			if (!dup)
				rw_wire_str(&reply, RW_TAG_CANDIDATE,
					    s.targets[j]->name);
		}
		rw_wire_group_end(&reply);
	}
	for (size_t i = 0; i < s.ntps; i++) {
		struct rw_tracepoint *tp = s.tps[i];
		size_t n =
			rw__tp_probe_funcs(tp, probes, RW_ARRAY_SIZE(probes));

		object_of(tp, obj, sizeof(obj));
		rw_wire_group_begin(&reply, RW_TAG_TRACEPOINT);
		rw_wire_str(&reply, RW_TAG_NAME, tp->name);
		rw_wire_str(&reply, RW_TAG_OBJECT, obj);
		put_fields(tp);
		rw_wire_u64(&reply, RW_TAG_PROBES, n);
		for (size_t j = 0; j < n && j < RW_ARRAY_SIZE(probes); j++) {
			func_name(tp, probes[j], name, sizeof(name));
			rw_wire_str(&reply, RW_TAG_PROBE, name);
		}
		rw_wire_group_end(&reply);
	}
	np = rw_patch_list(list, RW_ARRAY_SIZE(list));
	for (size_t i = 0; i < np && i < RW_ARRAY_SIZE(list); i++) {
		rw_wire_group_begin(&reply, RW_TAG_PATCH);
		put_patch(list[i]);
		rw_wire_group_end(&reply);
	}
	put_threads();
	put_sessions();
	rw__objects_snapshot_free(&s);
	return send_reply(c, -1);
}

static int do_key(struct client *c, const struct rw_wire_msg *m)
{
	struct rw__objects_snapshot s;
	struct rw_static_key *key = NULL;
	char name[256], obj[4096];
	size_t found = 0;
	uint64_t value;
	bool was;
	int err;

	if (!find_str(m, RW_TAG_NAME, name, sizeof(name)) ||
	    !rw_wire_find_u64(m->payload, m->len, RW_TAG_VALUE, &value) ||
	    value > 1)
		return send_error(c, -EINVAL,
				  "KEY needs NAME and VALUE (0 or 1)");
	err = rw__objects_snapshot(&s);
	if (err)
		return send_error(c, err, "cannot list the keys: %s",
				  rw_strerror(err));
	err = lookup((void *const *)s.keys, s.nkeys,
		     offsetof(struct rw_static_key, name), name, (void **)&key,
		     &found);
	rw__objects_snapshot_free(&s);
	if (err)
		return lookup_failed(c, err, found, "static key", name);
	if (is_tracepoint_key(key))
		return send_error(c, -EPERM,
				  "'%s' belongs to a tracepoint: attach a "
				  "probe instead (rewire trace)",
				  name);
	object_of(key, obj, sizeof(obj));
	was = rw_static_key_enabled(key);
	err = value ? rw_static_key_enable(key) : rw_static_key_disable(key);
	if (err)
		return send_error(c, err, "cannot %s '%s': %s",
				  value ? "enable" : "disable", name,
				  rw_strerror(err));
	rw__log("key %s %s -> %s (peer pid %d)", key->name, was ? "on" : "off",
		value ? "on" : "off", (int)c->pid);
	rw_wire_begin(&reply, RW_MSG_OK);
	rw_wire_str(&reply, RW_TAG_NAME, key->name);
	rw_wire_str(&reply, RW_TAG_OBJECT, obj);
	rw_wire_u64(&reply, RW_TAG_OLD, was);
	rw_wire_u64(&reply, RW_TAG_ENABLED, rw_static_key_enabled(key));
	rw_wire_u64(&reply, RW_TAG_SITES, (uint64_t)rw_static_key_sites(key));
	return send_reply(c, -1);
}

static int do_call(struct client *c, const struct rw_wire_msg *m)
{
	struct rw__objects_snapshot s;
	struct rw_static_call *sc = NULL;
	struct rw_static_call_target *t = NULL;
	char name[256], target[256], old[256], list[RW_WIRE_MAX_STR / 2];
	size_t found = 0, off = 0;
	int err;

	if (!find_str(m, RW_TAG_NAME, name, sizeof(name)) ||
	    !find_str(m, RW_TAG_TARGET, target, sizeof(target)))
		return send_error(c, -EINVAL, "CALL needs NAME and TARGET");
	err = rw__objects_snapshot(&s);
	if (err)
		return send_error(c, err, "cannot list the static calls: %s",
				  rw_strerror(err));
	err = lookup((void *const *)s.calls, s.ncalls,
		     offsetof(struct rw_static_call, name), name, (void **)&sc,
		     &found);
	if (err || is_tracepoint_call(sc)) {
		rw__objects_snapshot_free(&s);
		if (err)
			return lookup_failed(c, err, found, "static call",
					     name);
		return send_error(c, -EPERM, "'%s' belongs to a tracepoint",
				  name);
	}
	list[0] = '\0';
	for (size_t i = 0; i < s.ntargets; i++) {
		if (s.targets[i]->call != sc)
			continue;
		if (!strcmp(s.targets[i]->name, target))
			t = s.targets[i];
		if (off < sizeof(list))
			off += (size_t)snprintf(list + off, sizeof(list) - off,
						"%s%s", off ? ", " : "",
						s.targets[i]->name);
	}
	target_name(&s, sc, rw__static_call_query(sc), old, sizeof(old));
	rw__objects_snapshot_free(&s);
	if (!t)
		return send_error(c, -RW_ERR_SYMBOL,
				  "'%s' is not a target of static call '%s' "
				  "(registered with RW_STATIC_CALL_TARGET: "
				  "%s)",
				  target, name, *list ? list : "none");
	err = rw__static_call_update(sc, t->func);
	if (err)
		return send_error(c, err, "cannot switch '%s' to '%s': %s",
				  name, target, rw_strerror(err));
	rw__log("call %s: %s -> %s (peer pid %d)", sc->name, old, t->name,
		(int)c->pid);
	rw_wire_begin(&reply, RW_MSG_OK);
	rw_wire_str(&reply, RW_TAG_NAME, sc->name);
	rw_wire_str(&reply, RW_TAG_OLD, old);
	rw_wire_str(&reply, RW_TAG_TARGET, t->name);
	return send_reply(c, -1);
}

/* The patterns of the request's @tag fields, copied into @buf. */
struct patterns {
	char buf[MAX_PATTERNS][256];
	const char *pat[MAX_PATTERNS];
	size_t n;
};

static int read_patterns(struct client *c, const struct rw_wire_msg *m,
			 uint16_t tag, const char *what, struct patterns *p)
{
	struct rw_wire_iter it;
	struct rw_wire_field f;

	p->n = 0;
	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		char *b = p->buf[p->n];

		if (f.tag != tag)
			continue;
		if (p->n == MAX_PATTERNS)
			return send_error(c, -E2BIG, "at most %d %s patterns",
					  MAX_PATTERNS, what);
		if (f.len >= sizeof(p->buf[0]) ||
		    !rw_wire_get_str(&f, b, sizeof(p->buf[0])) || !b[0])
			return send_error(c, -EINVAL,
					  "a %s pattern is empty, too long "
					  "or not a string",
					  what);
		p->pat[p->n++] = b;
	}
	return 0;
}

/* The request patterns, for the server thread only (too large for its
 * stack frames to hold two). */
static struct patterns tp_pat, fn_pat;
static char err_msg[RW_WIRE_MAX_STR];

/* An error of --filter: MESSAGE and the COLUMN it points at. */
static int send_filter_error(struct client *c, int err, unsigned column,
			     const char *msg)
{
	rw_wire_begin(&reply, RW_MSG_ERROR);
	rw_wire_i64(&reply, RW_TAG_ERRNO, err);
	rw_wire_str(&reply, RW_TAG_MESSAGE, msg);
	rw_wire_u64(&reply, RW_TAG_COLUMN, column);
	return send_reply(c, -1);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A session started on @c: remember what LS shows of it. */
static void session_begin(struct client *c, uint64_t number,
			  const struct patterns *fn)
{
	size_t len = 0;

	free(c->pats);
	c->pats = NULL;
	c->npats = 0;
	c->session = number;
	c->since_ns = now_ns();
	for (size_t i = 0; i < fn->n; i++)
		len += strlen(fn->pat[i]) + 1;
	if (len && (c->pats = malloc(len))) {
		char *p = c->pats;

		for (size_t i = 0; i < fn->n; i++)
			p = stpcpy(p, fn->pat[i]) + 1;
		c->npats = fn->n;
	}
}

static void session_end(struct client *c)
{
	free(c->pats);
	c->pats = NULL;
	c->npats = 0;
	c->session = 0;
}

/* LS: a TRACE_SESSION group for each trace or aggregate session that runs
 * (an aggregate stopped with AGG_STOP keeps its totals, not its probe). */
static void put_sessions(void)
{
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		const struct client *o = &clients[i];
		const char *p = o->pats;

		if (o->fd < 0 ||
		    (!o->trace && !(o->agg && rw__agg_ftrace(o->agg))))
			continue;
		rw_wire_group_begin(&reply, RW_TAG_TRACE_SESSION);
		rw_wire_u64(&reply, RW_TAG_SESSION, o->session);
		rw_wire_u64(&reply, RW_TAG_OWNER,
			    (uint64_t)(o->pid > 0 ? o->pid : 0));
		rw_wire_str(&reply, RW_TAG_KIND,
			    o->agg     ? "aggregate"
			    : o->npats ? "functions"
				       : "trace");
		rw_wire_u64(&reply, RW_TAG_OVERWRITE,
			    o->trace && rw__trace_overwrite(o->trace));
		for (size_t k = 0; o->trace && k < rw__trace_count(o->trace);
		     k++)
			rw_wire_str(&reply, RW_TAG_NAME,
				    rw__trace_tp(o->trace, k)->name);
		for (size_t k = 0; p && k < o->npats; k++, p += strlen(p) + 1)
			rw_wire_str(&reply, RW_TAG_PATTERN, p);
		rw_wire_u64(&reply, RW_TAG_SINCE_NS, (uint64_t)o->since_ns);
		rw_wire_group_end(&reply);
	}
}

static int do_trace_start(struct client *c, const struct rw_wire_msg *m)
{
	static char filter[RW_FILTER_MAX_EXPR + 1];
	uint64_t ring = 0, graph = 0, clock = 0, overwrite = 0;
	struct rw__trace_opts o = { 0 };
	struct rw_wire_field ff;
	unsigned column = 0;
	int err;

	if (c->trace || c->agg)
		return send_error(c, -EBUSY,
				  "this connection is tracing already");
	err = read_patterns(c, m, RW_TAG_NAME, "tracepoint", &tp_pat);
	if (!err)
		err = read_patterns(c, m, RW_TAG_PATTERN, "function", &fn_pat);
	if (err || tp_pat.n + fn_pat.n == 0)
		return err ? err
			   : send_error(c, -EINVAL,
					"TRACE_START needs a NAME or PATTERN");
	rw_wire_find_u64(m->payload, m->len, RW_TAG_RING_SIZE, &ring);
	rw_wire_find_u64(m->payload, m->len, RW_TAG_GRAPH, &graph);
	rw_wire_find_u64(m->payload, m->len, RW_TAG_CLOCK, &clock);
	rw_wire_find_u64(m->payload, m->len, RW_TAG_OVERWRITE, &overwrite);
	if (ring > (1ull << 30))
		return send_error(c, -EINVAL, "ring size over 1 GiB");
	if (clock > UINT_MAX)
		return send_error(c, -EINVAL, "unknown trace clock");
	/* --filter: the expression (src/ctl/filter.h). */
	filter[0] = '\0';
	if (rw_wire_find(m->payload, m->len, RW_TAG_FILTER, &ff) &&
	    !find_str(m, RW_TAG_FILTER, filter, sizeof(filter)))
		return send_filter_error(c, -E2BIG, RW_FILTER_MAX_EXPR + 1,
					 "--filter: the expression is longer "
					 "than 1024 bytes");
	err_msg[0] = '\0';
	o.patterns = tp_pat.pat;
	o.npatterns = tp_pat.n;
	o.funcs = fn_pat.pat;
	o.nfuncs = fn_pat.n;
	o.graph = graph != 0;
	o.ring_bytes = (size_t)ring;
	o.clock = (unsigned)clock;
	o.overwrite = overwrite != 0;
	o.filter = filter;
	o.filter_column = &column;
	err = rw__trace_start_opts(&o, &c->trace, err_msg, sizeof(err_msg));
	if (err) {
		c->trace = NULL;
		if (column)
			return send_filter_error(c, err, column, err_msg);
		return send_error(c, err, "%s",
				  *err_msg ? err_msg : rw_strerror(err));
	}
	session_begin(c, rw__trace_session(c->trace), &fn_pat);
	if (fn_pat.n)
		rw__log("tracing %zu functions (peer pid %d)",
			rw__trace_nfuncs(c->trace), (int)c->pid);
	rw_wire_begin(&reply, RW_MSG_OK);
	rw_wire_u64(&reply, RW_TAG_SHM_SIZE, rw__trace_size(c->trace));
	if (fn_pat.n)
		rw_wire_u64(&reply, RW_TAG_NFUNCS, rw__trace_nfuncs(c->trace));
	for (size_t i = 0; i < rw__trace_count(c->trace); i++) {
		const struct rw_tracepoint *tp = rw__trace_tp(c->trace, i);

		rw_wire_group_begin(&reply, RW_TAG_TRACEPOINT);
		rw_wire_u64(&reply, RW_TAG_ID, i);
		rw_wire_str(&reply, RW_TAG_NAME, tp->name);
		put_fields(tp);
		if (rw__trace_filter_state(c->trace, i))
			rw_wire_u64(&reply, RW_TAG_FILTERED,
				    (uint64_t)rw__trace_filter_state(c->trace,
								     i));
		rw_wire_group_end(&reply);
	}
	err = send_reply(c, rw__trace_fd(c->trace));
	if (err) {
		rw__trace_stop(c->trace);
		c->trace = NULL;
		session_end(c);
	}
	return err;
}

static int do_trace_stop(struct client *c)
{
	struct rw_ftrace_stats st = { 0, 0 };
	const struct rw_ftrace *ft;
	uint64_t dropped, filtered;

	if (!c->trace)
		return send_error(c, -ENOENT, "this connection is not tracing");
	ft = rw__trace_ftrace(c->trace);
	if (ft)
		rw_ftrace_get_stats(ft, &st);
	/* Before the stop frees the session: counted up to this request. */
	filtered = rw__trace_filtered(c->trace);
	dropped = rw__trace_stop(c->trace);
	c->trace = NULL;
	session_end(c);
	rw_wire_begin(&reply, RW_MSG_OK);
	rw_wire_u64(&reply, RW_TAG_DROPPED, dropped);
	if (filtered)
		rw_wire_u64(&reply, RW_TAG_FILTERED, filtered);
	if (ft) {
		rw_wire_u64(&reply, RW_TAG_RECURSION, st.recursion);
		rw_wire_u64(&reply, RW_TAG_SHADOW_FULL, st.shadow_full);
	}
	return send_reply(c, -1);
}

/* --- Snapshots ----------------------------------------------------------------
 * The flight recorder: `rewire trace --snapshot` keeps an overwrite session
 * on its connection without reading it; `rewire snapshot`, on another
 * connection, gets that session's memfd and descriptions (SNAPSHOT) and
 * copies the rings itself (ring.h S1-S4). Nothing of the session is shared
 * with the asking connection but the memfd, which the kernel duplicates
 * into the client with SCM_RIGHTS: the session may stop, unmap and close
 * its own descriptor at any time, the client's mapping keeps the pages.
 * FUNCS on the asking connection finds the session again by its number.
 */

/* The header of @t's shared memory (written once before the memfd was
 * handed out; the counters that follow are not needed). */
static bool snap_header(const struct rw__trace *t, struct rw_trace_shm *h)
{
	size_t n = offsetof(struct rw_trace_shm, dropped_noslot);

	memset(h, 0, sizeof(*h));
	return pread(rw__trace_fd(t), h, n, 0) == (ssize_t)n &&
	       !memcmp(h->magic, RW_TRACE_MAGIC, sizeof(h->magic));
}

static bool snap_overwrite(const struct rw__trace *t, uint64_t *number)
{
	struct rw_trace_shm h;

	if (!snap_header(t, &h) || h.version < 2 ||
	    !(h.flags & RW_TRACE_F_OVERWRITE))
		return false;
	*number = h.session;
	return true;
}

static struct rw__trace *snap_session_find(uint64_t number)
{
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		uint64_t n;

		if (clients[i].fd >= 0 && clients[i].trace &&
		    snap_overwrite(clients[i].trace, &n) && n == number)
			return clients[i].trace;
	}
	return NULL;
}

/* "3 (rewire pid 812: kv_request kv_done, 12 functions)" for each overwrite
 * session, for the messages of do_snapshot. */
static void snap_list(char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < MAX_CLIENTS && len + 1 < size; i++) {
		const struct client *o = &clients[i];
		uint64_t n;
		size_t ntp;

		if (o->fd < 0 || !o->trace || !snap_overwrite(o->trace, &n))
			continue;
		ntp = rw__trace_count(o->trace);
		len += (size_t)snprintf(
			out + len, size - len,
			"%s%llu (rewire pid %d:", len ? "; " : "",
			(unsigned long long)n, (int)o->pid);
		for (size_t k = 0; k < ntp && k < 4 && len + 1 < size; k++)
			len += (size_t)snprintf(
				out + len, size - len, " %s",
				rw__trace_tp(o->trace, k)->name);
		if (ntp > 4 && len + 1 < size)
			len += (size_t)snprintf(out + len, size - len, " ...");
		if (rw__trace_nfuncs(o->trace) && len + 1 < size)
			len += (size_t)snprintf(out + len, size - len,
						"%s%zu functions",
						ntp ? ", " : " ",
						rw__trace_nfuncs(o->trace));
		if (len + 1 < size)
			len += (size_t)snprintf(out + len, size - len, ")");
	}
}

static int do_snapshot(struct client *c, const struct rw_wire_msg *m)
{
	static char list[2048];
	const struct client *owner = NULL;
	uint64_t want = 0, number = 0;
	size_t found = 0, streaming = 0;
	bool pick = rw_wire_find_u64(m->payload, m->len, RW_TAG_SESSION, &want);
	struct rw__trace *t;
	int pid = (int)getpid();

	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		const struct client *o = &clients[i];
		uint64_t n;

		if (o->fd < 0 || !o->trace)
			continue;
		if (!snap_overwrite(o->trace, &n)) {
			streaming++;
			continue;
		}
		found++;
		if (!pick || n == want) {
			owner = o;
			number = n;
		}
	}
	snap_list(list, sizeof(list));
	if (pick && !owner)
		return send_error(c, -ENOENT,
				  "process %d has no flight-recorder session "
				  "%llu%s%s",
				  pid, (unsigned long long)want,
				  found ? "; it has: " : "", list);
	if (!found)
		return send_error(
			c, -ENOENT,
			"process %d has no flight-recorder session%s: "
			"start one with `rewire trace %d TRACEPOINT... "
			"--snapshot`",
			pid,
			streaming ? " (its trace sessions stream "
				    "their events, they keep none)"
				  : "",
			pid);
	if (found > 1 && !pick)
		return send_error(
			c, -RW_ERR_AMBIGUOUS,
			"process %d has %zu flight-recorder sessions: "
			"%s; pick one with --session N",
			pid, found, list);
	t = owner->trace;
	rw_wire_begin(&reply, RW_MSG_OK);
	rw_wire_u64(&reply, RW_TAG_SESSION, number);
	rw_wire_u64(&reply, RW_TAG_OWNER, (uint64_t)owner->pid);
	rw_wire_u64(&reply, RW_TAG_SHM_SIZE, rw__trace_size(t));
	if (rw__trace_nfuncs(t))
		rw_wire_u64(&reply, RW_TAG_NFUNCS, rw__trace_nfuncs(t));
	for (size_t i = 0; i < rw__trace_count(t); i++) {
		const struct rw_tracepoint *tp = rw__trace_tp(t, i);

		rw_wire_group_begin(&reply, RW_TAG_TRACEPOINT);
		rw_wire_u64(&reply, RW_TAG_ID, i);
		rw_wire_str(&reply, RW_TAG_NAME, tp->name);
		put_fields(tp);
		rw_wire_group_end(&reply);
	}
	c->snap_session = number;
	return send_reply(c, rw__trace_fd(t));
}

/* --- Function tracing -------------------------------------------------------
 * Replies that list functions are cut in pages: at most REPLY_FUNCS groups
 * and REPLY_BYTES bytes each (well under RW_WIRE_MAX_PAYLOAD and
 * RW_WIRE_MAX_FIELDS), with NEXT saying where the next page starts.
 */
#define REPLY_BYTES (RW_WIRE_MAX_PAYLOAD - 64 * 1024)
#define REPLY_FUNCS 4096

static bool reply_full(size_t groups)
{
	return groups >= REPLY_FUNCS || reply.len >= REPLY_BYTES;
}

static void put_func(const struct rw_ftrace_func *f)
{
	rw_wire_u64(&reply, RW_TAG_ADDR, f->addr);
	rw_wire_u64(&reply, RW_TAG_SIZE, f->size);
	rw_wire_str(&reply, RW_TAG_NAME, f->name);
	if (f->demangled && f->name && strcmp(f->demangled, f->name))
		rw_wire_str(&reply, RW_TAG_DEMANGLED, f->demangled);
	rw_wire_str(&reply, RW_TAG_OBJECT, f->object);
}

static struct rw__trace *snap_session_find(uint64_t number);

static const struct rw_ftrace *client_ftrace(const struct client *c)
{
	struct rw__trace *t;

	if (c->trace || c->agg || !c->snap_session)
		return c->trace ? rw__trace_ftrace(c->trace)
				: rw__agg_ftrace(c->agg);
	/* The session a snapshot was taken of, while it runs. */
	t = snap_session_find(c->snap_session);
	return t ? rw__trace_ftrace(t) : NULL;
}

static int do_funcs(struct client *c, const struct rw_wire_msg *m)
{
	const struct rw_ftrace *ft = client_ftrace(c);
	uint64_t from = 0;
	size_t n, i, groups = 0;

	if (!ft && c->snap_session && !c->trace && !c->agg)
		return send_error(c, -ENOENT,
				  "session %llu stopped: its function table "
				  "is gone",
				  (unsigned long long)c->snap_session);
	if (!ft)
		return send_error(c, -ENOENT,
				  "this connection traces no function");
	rw_wire_find_u64(m->payload, m->len, RW_TAG_FROM, &from);
	n = rw_ftrace_nfuncs(ft);
	rw_wire_begin(&reply, RW_MSG_OK);
	for (i = from < n ? (size_t)from : n; i < n && !reply_full(groups);
	     i++, groups++) {
		rw_wire_group_begin(&reply, RW_TAG_FUNCTION);
		rw_wire_u64(&reply, RW_TAG_ID, i);
		put_func(rw_ftrace_func_at(ft, i));
		rw_wire_group_end(&reply);
	}
	rw_wire_u64(&reply, RW_TAG_NEXT, i);
	return send_reply(c, -1);
}

/*
 * SYMBOLIZE: every function of the process (rw_ftrace_list, which reads
 * the symbol tables, static functions included), sorted by address, built
 * on the first request and again when an address is not found and the
 * table is more than a second old (a library loaded since).
 */
struct sym {
	uintptr_t addr;
	size_t size;
	char *name;
};
static struct sym *syms;
static size_t nsyms, syms_cap;
static int64_t syms_built;

static int sym_add(void *arg, const struct rw_ftrace_func *f)
{
	const char *name = f->demangled ? f->demangled : f->name;

	(void)arg;
	if (!name || !f->addr)
		return 0;
	if (nsyms == syms_cap) {
		size_t cap = syms_cap ? 2 * syms_cap : 4096;
		struct sym *v = realloc(syms, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		syms = v;
		syms_cap = cap;
	}
	syms[nsyms].name = strdup(name);
	if (!syms[nsyms].name)
		return -ENOMEM;
	syms[nsyms].addr = f->addr;
	syms[nsyms].size = f->size;
	nsyms++;
	return 0;
}

static int sym_cmp(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void syms_free(void)
{
	for (size_t i = 0; i < nsyms; i++)
		free(syms[i].name);
	free(syms);
	syms = NULL;
	nsyms = syms_cap = 0;
}

static int64_t now_ms(void);

static void syms_build(void)
{
	syms_free();
	if (rw_ftrace_list(NULL, 0, sym_add, NULL))
		rw__log("symbol table incomplete");
	qsort(syms, nsyms, sizeof(*syms), sym_cmp);
	syms_built = now_ms();
}

static bool sym_find(uintptr_t addr, char *out, size_t size)
{
	size_t lo = 0, hi = nsyms;
	Dl_info info;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* lo - 1: the last symbol at or below addr. A symbol of size 0
	 * (hand-written assembly) is taken up to the next one. */
	if (lo &&
	    (addr - syms[lo - 1].addr < syms[lo - 1].size ||
	     (!syms[lo - 1].size && (lo == nsyms || addr < syms[lo].addr)))) {
		snprintf(out, size, "%s+%#lx", syms[lo - 1].name,
			 (unsigned long)(addr - syms[lo - 1].addr));
		return true;
	}
	if (dladdr((void *)addr, &info) && info.dli_sname && info.dli_saddr) {
		snprintf(out, size, "%s+%#lx", info.dli_sname,
			 (unsigned long)(addr - (uintptr_t)info.dli_saddr));
		return true;
	}
	out[0] = '\0';
	return false;
}

#define SYMBOLIZE_MAX 1024

static int do_symbolize(struct client *c, const struct rw_wire_msg *m)
{
	static uint64_t addrs[SYMBOLIZE_MAX];
	struct rw_wire_iter it;
	struct rw_wire_field f;
	char name[512];
	size_t n = 0;
	bool rebuilt = false;

	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		if (f.tag != RW_TAG_ADDR)
			continue;
		if (n == SYMBOLIZE_MAX || !rw_wire_get_u64(&f, &addrs[n]))
			return send_error(c, -EINVAL,
					  "SYMBOLIZE: at most %d u64 ADDRs",
					  SYMBOLIZE_MAX);
		n++;
	}
	if (!syms_built)
		syms_build();
	rw_wire_begin(&reply, RW_MSG_OK);
	for (size_t i = 0; i < n; i++) {
		if (!sym_find((uintptr_t)addrs[i], name, sizeof(name)) &&
		    !rebuilt && now_ms() - syms_built > 1000) {
			syms_build();
			rebuilt = true;
			sym_find((uintptr_t)addrs[i], name, sizeof(name));
		}
		rw_wire_str(&reply, RW_TAG_SYMBOL, name);
	}
	return send_reply(c, -1);
}

struct list_page {
	uint64_t skip; /* still to skip */
	size_t groups; /* sent */
	bool more;     /* stopped for want of room */
};

static int list_one(void *arg, const struct rw_ftrace_func *f)
{
	struct list_page *p = arg;

	if (p->skip) {
		p->skip--;
		return 0;
	}
	if (reply_full(p->groups)) {
		p->more = true;
		return 1;
	}
	rw_wire_group_begin(&reply, RW_TAG_FUNCTION);
	put_func(f);
	rw_wire_i64(&reply, RW_TAG_STATUS, f->status);
	if (f->inlined)
		rw_wire_u64(&reply, RW_TAG_INLINED, f->inlined);
	rw_wire_group_end(&reply);
	p->groups++;
	return 0;
}

static int do_func_list(struct client *c, const struct rw_wire_msg *m)
{
	struct list_page p = { 0, 0, false };
	uint64_t from = 0;
	int err;

	err = read_patterns(c, m, RW_TAG_PATTERN, "function", &fn_pat);
	if (err)
		return err;
	rw_wire_find_u64(m->payload, m->len, RW_TAG_FROM, &from);
	p.skip = from;
	rw_wire_begin(&reply, RW_MSG_OK);
	err = rw_ftrace_list(fn_pat.pat, fn_pat.n, list_one, &p);
	if (err < 0)
		return send_error(c, err, "listing functions: %s",
				  *rw_ftrace_last_error()
					  ? rw_ftrace_last_error()
					  : rw_strerror(err));
	rw_wire_u64(&reply, RW_TAG_NEXT, from + p.groups);
	rw_wire_u64(&reply, RW_TAG_MORE, p.more);
	return send_reply(c, -1);
}

static void put_hist(const struct rw__agg_hist *h)
{
	rw_wire_u64(&reply, RW_TAG_HITS, h->hits);
	if (h->total_ns)
		rw_wire_u64(&reply, RW_TAG_TOTAL_NS, h->total_ns);
	for (unsigned b = 0; b < RW__AGG_BUCKETS; b++) {
		if (!h->bucket[b])
			continue;
		rw_wire_u64(&reply, RW_TAG_BUCKET, b);
		rw_wire_u64(&reply, RW_TAG_VALUE, h->bucket[b]);
	}
}

/* AGG_READ's and AGG_STOP's reply, from function @from on. */
static int agg_reply(struct client *c, uint64_t from)
{
	struct rw_ftrace_stats st;
	struct rw__agg_hist h;
	size_t n = rw__agg_nfuncs(c->agg), i, groups = 0;

	rw_wire_begin(&reply, RW_MSG_OK);
	if (!from) {
		rw__agg_read(c->agg, SIZE_MAX, &h);
		rw_wire_group_begin(&reply, RW_TAG_HIST);
		put_hist(&h);
		rw_wire_group_end(&reply);
	}
	for (i = from < n ? (size_t)from : n; i < n && !reply_full(groups);
	     i++) {
		rw__agg_read(c->agg, i, &h);
		if (!h.hits)
			continue;
		rw_wire_group_begin(&reply, RW_TAG_HIST);
		rw_wire_u64(&reply, RW_TAG_ID, i);
		put_hist(&h);
		rw_wire_group_end(&reply);
		/* A page of histograms is up to 70 fields a group. */
		groups += rw__agg_per_func(c->agg) ? 16 : 1;
	}
	rw_wire_u64(&reply, RW_TAG_NEXT, i);
	rw__agg_stats(c->agg, &st);
	rw_wire_u64(&reply, RW_TAG_RECURSION, st.recursion);
	rw_wire_u64(&reply, RW_TAG_SHADOW_FULL, st.shadow_full);
	return send_reply(c, -1);
}

static int do_agg_start(struct client *c, const struct rw_wire_msg *m)
{
	uint64_t mode = 0, per = 0;
	int err;

	if (c->agg && !rw__agg_ftrace(c->agg)) {
		/* Stopped: its totals were for the last AGG_READs. */
		rw__agg_stop(c->agg);
		c->agg = NULL;
	}
	if (c->trace || c->agg)
		return send_error(c, -EBUSY,
				  "this connection is tracing already");
	err = read_patterns(c, m, RW_TAG_PATTERN, "function", &fn_pat);
	if (err)
		return err;
	if (!fn_pat.n)
		return send_error(c, -EINVAL, "AGG_START needs a PATTERN");
	rw_wire_find_u64(m->payload, m->len, RW_TAG_MODE, &mode);
	rw_wire_find_u64(m->payload, m->len, RW_TAG_PER_FUNCTION, &per);
	if (mode != RW__AGG_COUNT && mode != RW__AGG_LATENCY)
		return send_error(c, -EINVAL, "AGG_START: unknown MODE %llu",
				  (unsigned long long)mode);
	err_msg[0] = '\0';
	err = rw__agg_start(fn_pat.pat, fn_pat.n, (enum rw__agg_mode)mode,
			    per != 0, &c->agg, err_msg, sizeof(err_msg));
	if (err) {
		c->agg = NULL;
		return send_error(c, err, "%s",
				  *err_msg ? err_msg : rw_strerror(err));
	}
	session_begin(c, rw__trace_session_new(), &fn_pat);
	rw__log("%s: %zu functions (peer pid %d)",
		mode == RW__AGG_COUNT ? "funccount" : "funclatency",
		rw__agg_nfuncs(c->agg), (int)c->pid);
	rw_wire_begin(&reply, RW_MSG_OK);
	rw_wire_u64(&reply, RW_TAG_NFUNCS, rw__agg_nfuncs(c->agg));
	return send_reply(c, -1);
}

static int do_agg_read(struct client *c, const struct rw_wire_msg *m)
{
	uint64_t from = 0;

	if (!c->agg)
		return send_error(c, -ENOENT,
				  "this connection has no aggregate");
	rw_wire_find_u64(m->payload, m->len, RW_TAG_FROM, &from);
	return agg_reply(c, from);
}

static int do_agg_stop(struct client *c)
{
	int err;

	if (!c->agg)
		return send_error(c, -ENOENT,
				  "this connection has no aggregate");
	err = rw__agg_detach(c->agg);
	if (err)
		return send_error(c, err, "detaching: %s", rw_strerror(err));
	/* The counters stay for AGG_READ until the connection closes or
	 * starts another aggregate. */
	return agg_reply(c, 0);
}

static void patch_names(char *out, size_t size)
{
	struct rw_patch *list[64];
	struct rw_patch_info info;
	size_t n = rw_patch_list(list, RW_ARRAY_SIZE(list)), off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && i < RW_ARRAY_SIZE(list) && off < size;
	     i++) {
		if (rw_patch_state(list[i], &info))
			continue;
		off += (size_t)snprintf(out + off, size - off, "%s%s",
					off ? ", " : "", info.name);
	}
}

static int do_patch(struct client *c, const struct rw_wire_msg *m)
{
	char name[256], path[4096], names[1024], warning[512] = "";
	struct rw_patch *p = NULL;
	uint64_t timeout = 0, flags = 0;
	int err;

	if (m->type == RW_MSG_PATCH_LOAD) {
		if (!find_str(m, RW_TAG_PATH, path, sizeof(path)) ||
		    path[0] != '/')
			return send_error(c, -EINVAL,
					  "PATCH_LOAD needs an absolute PATH");
		/* Only what a client may ask for: never the owner check. */
		rw_wire_find_u64(m->payload, m->len, RW_TAG_LOAD_FLAGS, &flags);
		if (flags & ~(uint64_t)(RW_PATCH_LOAD_ALLOW_INLINED |
					RW_PATCH_LOAD_BOUND_ONLY))
			return send_error(
				c, -EINVAL,
				"PATCH_LOAD: unknown LOAD_FLAGS %#llx",
				(unsigned long long)flags);
		/* A passed descriptor is the file; PATH is the client's name
		 * of it, maybe in another mount namespace, for messages
		 * only. The descriptor is closed with the message. */
		if (m->fd >= 0)
			err = rw_patch_load_fd(m->fd, path, (unsigned)flags,
					       &p);
		else
			err = rw_patch_load(path, (unsigned)flags, &p);
		if (err) {
			const char *why = *rw_patch_last_error()
						  ? rw_patch_last_error()
						  : rw_strerror(err);

			/* Most of the loader's messages name the file. */
			if (strstr(why, path))
				return send_error(c, err, "%s", why);
			return send_error(c, err, "%s: %s", path, why);
		}
		rw__log("patch loaded from %s%s (peer pid %d)", path,
			m->fd >= 0 ? " (by descriptor)" : "", (int)c->pid);
		if (!strncmp(rw_patch_last_error(), "warning: ", 9))
			snprintf(warning, sizeof(warning), "%s",
				 rw_patch_last_error() + 9);
		goto reply;
	}
	if (!find_str(m, RW_TAG_NAME, name, sizeof(name)))
		return send_error(c, -EINVAL, "%s needs a NAME",
				  rw_wire_msg_name(m->type));
	p = rw_patch_find(name);
	if (!p) {
		patch_names(names, sizeof(names));
		return send_error(c, -ENOENT,
				  "no patch named '%s' (loaded: %s)", name,
				  *names ? names : "none");
	}
	switch (m->type) {
	case RW_MSG_PATCH_ENABLE:
		err = rw_patch_enable(p);
		break;
	case RW_MSG_PATCH_DISABLE:
		err = rw_patch_disable(p);
		break;
	case RW_MSG_PATCH_FORCE:
		err = rw_patch_force(p);
		break;
	case RW_MSG_PATCH_UNLOAD:
		err = rw_patch_unload(p);
		if (err)
			break;
		rw_wire_begin(&reply, RW_MSG_OK);
		rw_wire_str(&reply, RW_TAG_NAME, name);
		return send_reply(c, -1);
	default: /* PATCH_STATE */
		rw_wire_find_u64(m->payload, m->len, RW_TAG_TIMEOUT_MS,
				 &timeout);
		err = rw_patch_wait(p, timeout > 1000 ? 1000 : (int)timeout);
		if (err == -ETIMEDOUT)
			err = 0;
		break;
	}
	if (err)
		return send_error(c, err, "%s %s: %s",
				  rw_wire_msg_name(m->type), name,
				  *rw_patch_last_error() ? rw_patch_last_error()
							 : rw_strerror(err));
reply:
	rw_wire_begin(&reply, RW_MSG_OK);
	put_patch(p);
	if (warning[0])
		rw_wire_str(&reply, RW_TAG_MESSAGE, warning);
	return send_reply(c, -1);
}

/* The program's arguments, joined by spaces. */
static void cmdline(char *out, size_t size)
{
	ssize_t n = rw__task_read(getpid(), "cmdline", out, size);

	if (n < 0)
		n = 0;
	out[n] = '\0';
	while (n > 0 && out[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (out[i] == '\0')
			out[i] = ' ';
}

static int do_hello(struct client *c, const struct rw_wire_msg *m)
{
	char exe[4096], args[RW_WIRE_MAX_STR];
	uint64_t v = 0;

	if (!rw_wire_find_u64(m->payload, m->len, RW_TAG_VERSION, &v) ||
	    v != RW_WIRE_VERSION) {
		send_error(c, -EPROTONOSUPPORT,
			   "protocol version %llu is not spoken here (this "
			   "process speaks version %d, librewire %s)",
			   (unsigned long long)v, RW_WIRE_VERSION,
			   RW_VERSION_STRING);
		return -EPROTONOSUPPORT;
	}
	exe_path(exe, sizeof(exe));
	cmdline(args, sizeof(args));
	c->hello = true;
	rw_wire_begin(&reply, RW_MSG_OK);
	rw_wire_u64(&reply, RW_TAG_VERSION, RW_WIRE_VERSION);
	rw_wire_u64(&reply, RW_TAG_PID, (uint64_t)getpid());
	rw_wire_str(&reply, RW_TAG_PROGRAM, exe);
	rw_wire_str(&reply, RW_TAG_CMDLINE, args);
	rw_wire_str(&reply, RW_TAG_LIBVERSION, RW_VERSION_STRING);
	if (patch_dir[0])
		rw_wire_str(&reply, RW_TAG_PATCH_DIR, patch_dir);
	return send_reply(c, -1);
}

/* One request. Returns 0 to keep the connection, < 0 to close it. */
static int serve(struct client *c, const struct rw_wire_msg *m)
{
	if (!c->hello) {
		if (m->type != RW_MSG_HELLO) {
			send_error(c, -EPROTO, "say HELLO first");
			return -EPROTO;
		}
		return do_hello(c, m);
	}
	switch (m->type) {
	case RW_MSG_HELLO:
		return do_hello(c, m);
	case RW_MSG_LS:
		return do_ls(c);
	case RW_MSG_KEY:
		return do_key(c, m);
	case RW_MSG_CALL:
		return do_call(c, m);
	case RW_MSG_TRACE_START:
		return do_trace_start(c, m);
	case RW_MSG_TRACE_STOP:
		return do_trace_stop(c);
	case RW_MSG_FUNCS:
		return do_funcs(c, m);
	case RW_MSG_SYMBOLIZE:
		return do_symbolize(c, m);
	case RW_MSG_FUNC_LIST:
		return do_func_list(c, m);
	case RW_MSG_AGG_START:
		return do_agg_start(c, m);
	case RW_MSG_AGG_READ:
		return do_agg_read(c, m);
	case RW_MSG_AGG_STOP:
		return do_agg_stop(c);
	case RW_MSG_SNAPSHOT:
		return do_snapshot(c, m);
	case RW_MSG_PATCH_LOAD:
	case RW_MSG_PATCH_ENABLE:
	case RW_MSG_PATCH_DISABLE:
	case RW_MSG_PATCH_FORCE:
	case RW_MSG_PATCH_UNLOAD:
	case RW_MSG_PATCH_STATE:
		return do_patch(c, m);
	default:
		rw_wire_begin(&reply, RW_MSG_UNKNOWN);
		rw_wire_u64(&reply, RW_TAG_TYPE, m->type);
		return send_reply(c, -1);
	}
}

/* --- The thread -------------------------------------------------------------
 */

/* Is someone listening at @path? */
static bool socket_alive(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	alive = !connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	return alive;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_close(struct client *c)
{
	if (c->trace) {
		rw__trace_stop(c->trace);
		c->trace = NULL;
	}
	if (c->agg) {
		rw__agg_stop(c->agg);
		c->agg = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->pats);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Whether every slot is taken and one of them times out within
 * HELLO_TIMEOUT_MS: a new connection then waits in the backlog. */
static bool full_until_soon(int64_t now)
{
	bool soon = false;

	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i].fd < 0)
			return false;
		if (clients[i].expires &&
		    clients[i].expires - now <= HELLO_TIMEOUT_MS)
			soon = true;
	}
	return soon;
}

static void spare_open(void)
{
	if (spare_fd < 0)
		spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* accept4() failed with @err. Returns a connection accepted with the
 * spare descriptor (to be refused), or -1 with accepting paused. */
static int accept_short(int err)
{
	int fd = -1;

	if (err == EMFILE && spare_fd >= 0) {
		close(spare_fd);
		spare_fd = -1;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	}
	if (fd < 0) {
		/* Nothing taken from the backlog: do not poll it again
		 * at once. */
		accept_pause_ms = accept_pause_ms ? accept_pause_ms * 2 : 10;
		if (accept_pause_ms > ACCEPT_PAUSE_MAX_MS)
			accept_pause_ms = ACCEPT_PAUSE_MAX_MS;
		accept_paused_until = now_ms() + accept_pause_ms;
		rw__log("accept: %s; not accepting for %d ms", strerror(err),
			accept_pause_ms);
		spare_open();
	}
	return fd;
}

static void client_accept(void)
{
	struct client tmp = { .fd = -1 }, *slot = NULL;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		int err = errno;

		if (err != EMFILE && err != ENFILE && err != ENOBUFS &&
		    err != ENOMEM)
			return; /* the peer went away (ECONNABORTED), EINTR */
		fd = accept_short(err);
		if (fd < 0)
			return;
		/* A descriptor for the connection, none for anything else:
		 * refuse it with the reason, then take the spare back. */
		tmp.fd = fd;
		send_error(&tmp, -EMFILE,
			   "process %d is out of file descriptors (%s): the "
			   "connection cannot be served; try again when it "
			   "closed some",
			   (int)getpid(), strerror(err));
		close(fd);
		spare_open();
		return;
	}
	accept_pause_ms = 0;
	spare_open();
	tmp.fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    len != sizeof(cred)) {
		close(fd);
		return;
	}
	if (cred.uid != geteuid() && cred.uid != 0) {
		/* Not rw__log: refusals are always reported. */
		fprintf(stderr,
			"rewire: [%d] refused a control connection from pid "
			"%d, uid %u (only uid %u or root may connect)\n",
			(int)getpid(), (int)cred.pid, (unsigned)cred.uid,
			(unsigned)geteuid());
		send_error(&tmp, -EACCES,
			   "uid %u may not control this process (uid %u)",
			   (unsigned)cred.uid, (unsigned)geteuid());
		close(fd);
		return;
	}
	for (size_t i = 0; i < MAX_CLIENTS && !slot; i++)
		if (clients[i].fd < 0)
			slot = &clients[i];
	if (!slot) {
		size_t tracing = 0;

		for (size_t i = 0; i < MAX_CLIENTS; i++)
			tracing += clients[i].trace || clients[i].agg;
		send_error(&tmp, -EBUSY,
			   "%d control connections are open (%zu of them "
			   "tracing); an idle one is closed after %d s",
			   MAX_CLIENTS, tracing, IDLE_TIMEOUT_MS / 1000);
		close(fd);
		return;
	}
	/* A peer that stops reading must not hold the thread: a reply
	 * that cannot be sent within this time closes the connection. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO,
		   &(struct timeval){ .tv_sec = SEND_TIMEOUT_S },
		   sizeof(struct timeval));
	slot->fd = fd;
	slot->pid = cred.pid;
	slot->uid = cred.uid;
	slot->hello = false;
	slot->trace = NULL;
	slot->agg = NULL;
	slot->expires = now_ms() + HELLO_TIMEOUT_MS;
}

static void client_read(struct client *c)
{
	struct rw_wire_msg m;
	int err = rw_wire_recv(c->fd, &m, RECV_TIMEOUT_MS);

	if (err) {
		if (err != -ENODATA && err != -ECONNRESET && err != -EPIPE)
			send_error(c, err, "bad message: %s", strerror(-err));
		client_close(c);
		return;
	}
	if (serve(c, &m) < 0)
		client_close(c);
	else
		c->expires = c->trace || c->agg ? 0
						: now_ms() + IDLE_TIMEOUT_MS;
	rw_wire_msg_free(&m);
}

/* Closes the connections that timed out. Returns the ms until the next
 * one does, or -1. */
static int expire_clients(int64_t now)
{
	int64_t next = -1;

	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &clients[i];

		if (c->fd < 0 || !c->expires)
			continue;
		/* A request that came while the thread was busy with
		 * another connection's is served, late as it is. */
		if (c->expires <= now &&
		    recv(c->fd, &(char){ 0 }, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
			c->expires = now + RECV_TIMEOUT_MS;
		if (c->expires <= now) {
			rw__log("closing an idle control connection (peer "
				"pid %d%s)",
				(int)c->pid, c->hello ? "" : ", no HELLO");
			client_close(c);
			continue;
		}
		if (next < 0 || c->expires - now < next)
			next = c->expires - now;
	}
	return (int)next;
}

/* The parent, after fork(), exited: remove its socket if nobody listens
 * there (daemon(3)'s parent leaves with _exit). */
static void parent_gone(void)
{
	if (parent_sock[0] && !socket_alive(parent_sock)) {
		rw__log("parent %d exited: removing its socket %s",
			(int)parent_pid, parent_sock);
		unlink(parent_sock);
	}
	parent_sock[0] = '\0';
	parent_pid = 0;
}

/* A pidfd of the parent to poll, or -1 (none to watch, gone already, or
 * no pidfd_open). */
static int parent_watch(void)
{
	int fd;

	if (!parent_pid)
		return -1;
#ifdef SYS_pidfd_open
	fd = (int)syscall(SYS_pidfd_open, parent_pid, 0);
	if (fd >= 0)
		return fd;
	if (errno == ESRCH)
		parent_gone();
#else
	(void)fd;
#endif
	return -1;
}

/* Sockets of the directory whose process is gone and where nobody
 * listens: left by processes that ended with _exit() or a signal. */
static void remove_dead_sockets(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[sizeof(sock_path)];

	while (d && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (pid <= 0 || strcmp(end, ".sock") || pid == getpid())
			continue;
		if (!kill((pid_t)pid, 0) || errno != ESRCH)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
				     de->d_name) >= sizeof(path) ||
		    socket_alive(path))
			continue;
		rw__log("removing %s: process %ld is gone", path, pid);
		unlink(path);
	}
	if (d)
		closedir(d);
}

/* Drive every transition in progress one round. Returns whether one is. */
static bool drive_transitions(void)
{
	struct rw_patch *list[256];
	struct rw_patch_info info;
	size_t n = rw_patch_list(list, RW_ARRAY_SIZE(list));
	bool busy = false;

	for (size_t i = 0; i < n && i < RW_ARRAY_SIZE(list); i++) {
		if (rw_patch_state(list[i], &info) ||
		    (info.state != RW_PATCH_ENABLING &&
		     info.state != RW_PATCH_DISABLING))
			continue;
		if (rw_patch_wait(list[i], 0) == -ETIMEDOUT)
			busy = true;
	}
	return busy;
}

static void *ctl_main(void *arg)
{
	struct pollfd pfd[3 + MAX_CLIENTS];
	struct client *who[3 + MAX_CLIENTS];
	/* A transition may be in progress already (one of the patch
	 * directory's, or one the program started): look from the start. */
	bool busy = true;

	(void)arg;
	/* Registering for membarrier SYNC_CORE waits for an RCU grace period
	 * in the kernel, seconds on a loaded machine: pay it now, not in the
	 * first request that changes code. */
	rw__arch_sync_prepare();
	spare_open();
	parent_pidfd = parent_watch();
	for (;;) {
		int64_t now = now_ms();
		int timeout = expire_clients(now);
		nfds_t n = 0, first;
		int r;

		pfd[n] = (struct pollfd){ wake_pipe[0], POLLIN, 0 };
		who[n++] = NULL;
		pfd[n] = (struct pollfd){ -1, POLLIN, 0 };
		who[n++] = NULL;
		pfd[n] = (struct pollfd){ parent_pidfd, POLLIN, 0 };
		who[n++] = NULL;
		first = n;
		/* The listening socket, unless accepting is paused (out of
		 * descriptors) or would only refuse a connection that can
		 * get a slot soon (see "Idle connections"). */
		if (accept_paused_until > now) {
			int left = (int)(accept_paused_until - now);

			if (timeout < 0 || left < timeout)
				timeout = left;
		} else if (!full_until_soon(now)) {
			pfd[1].fd = listen_fd;
		}
		for (size_t i = 0; i < MAX_CLIENTS; i++) {
			if (clients[i].fd < 0)
				continue;
			pfd[n] = (struct pollfd){ clients[i].fd, POLLIN, 0 };
			who[n++] = &clients[i];
		}
		if (busy && (timeout < 0 || timeout > DRIVE_MS))
			timeout = DRIVE_MS;
		r = poll(pfd, n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && pfd[0].revents)
			break;
		if (r > 0 && pfd[2].revents) {
			close(parent_pidfd);
			parent_pidfd = -1;
			parent_gone();
		}
		/* Connections first: a peer that hung up frees its slot
		 * for one that is waiting to be accepted. */
		for (nfds_t i = first; r > 0 && i < n; i++)
			if (pfd[i].revents)
				client_read(who[i]);
		if (r > 0 && (pfd[1].revents & POLLIN))
			client_accept();
		busy = drive_transitions();
	}
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			client_close(&clients[i]);
	if (parent_pidfd >= 0)
		close(parent_pidfd);
	if (spare_fd >= 0)
		close(spare_fd);
	spare_fd = parent_pidfd = -1;
	return NULL;
}

/* --- Start, stop, fork, exit ------------------------------------------------
 */

static void cleanup_locked(void)
{
	if (listen_fd >= 0)
		close(listen_fd);
	for (int i = 0; i < 2; i++)
		if (wake_pipe[i] >= 0)
			close(wake_pipe[i]);
	listen_fd = wake_pipe[0] = wake_pipe[1] = -1;
	if (sock_path[0] && owner_pid == getpid())
		unlink(sock_path);
	sock_path[0] = '\0';
	running = false;
}

static void at_exit(void)
{
	/* Only the socket: the thread may be serving; the process ends. */
	if (running && owner_pid == getpid() && sock_path[0])
		unlink(sock_path);
}

/* The child of fork() has no control thread: forget the parent's without
 * touching the socket (the parent still serves it). A server started by
 * the environment is then started again by restart_after_fork(). */
static void forget_parent_server(void)
{
	pthread_mutex_init(&ctl_lock, NULL);
	parent_pid = 0;
	parent_sock[0] = '\0';
	if (!running)
		return;
	if (listen_fd >= 0)
		close(listen_fd);
	for (int i = 0; i < 2; i++)
		if (wake_pipe[i] >= 0)
			close(wake_pipe[i]);
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		/* Their trace sessions stay attached in the child's copy
		 * of the tracepoints; nobody reads them. */
		if (clients[i].fd >= 0)
			close(clients[i].fd);
		free(clients[i].pats);
		memset(&clients[i], 0, sizeof(clients[i]));
		clients[i].fd = -1;
	}
	if (spare_fd >= 0)
		close(spare_fd);
	if (parent_pidfd >= 0)
		close(parent_pidfd);
	spare_fd = parent_pidfd = -1;
	accept_pause_ms = 0;
	accept_paused_until = 0;
	listen_fd = wake_pipe[0] = wake_pipe[1] = -1;
	if (from_env) {
		parent_pid = owner_pid;
		memcpy(parent_sock, sock_path, sizeof(parent_sock));
	}
	sock_path[0] = '\0';
	running = false;
}

static int fail(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return err;
}

static void rcu_thread_named(void)
{
	char name[16] = "";

	if (prctl(PR_GET_NAME, name) || prctl(PR_SET_NAME, "rewire-rcu")) {
		rw__rcu_callback_thread();
		return;
	}
	rw__rcu_callback_thread();
	prctl(PR_SET_NAME, name);
}

static int start_locked(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	sigset_t all, old;
	char msg[256];
	int err;

	if (running)
		return 0;
	last_error[0] = '\0';
	err = rw_sockdir_ensure(geteuid(), msg, sizeof(msg));
	if (err)
		return fail(-EOPNOTSUPP, "%s", msg);
	err = rw_sockdir_socket(geteuid(), getpid(), sock_path,
				sizeof(sock_path));
	if (err) {
		sock_path[0] = '\0';
		return fail(err, "the socket's path is too long");
	}
	owner_pid = getpid();
	if (socket_alive(sock_path)) {
		err = fail(-EADDRINUSE, "%s: another process answers there",
			   sock_path);
		sock_path[0] = '\0';
		return err;
	}
	/* A socket left by an earlier process that had this pid. */
	unlink(sock_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0) {
		err = fail(-errno, "socket: %s", strerror(errno));
		goto fail;
	}
	memcpy(a.sun_path, sock_path, strlen(sock_path) + 1);
	if (bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) ||
	    chmod(sock_path, 0600) || listen(listen_fd, 16)) {
		err = fail(-errno, "%s: %s", sock_path, strerror(errno));
		goto fail;
	}
	if (pipe2(wake_pipe, O_CLOEXEC)) {
		err = fail(-errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		memset(&clients[i], 0, sizeof(clients[i]));
		clients[i].fd = -1;
	}
	*strrchr(a.sun_path, '/') = '\0';
	remove_dead_sockets(a.sun_path);
	/* Both threads started here inherit this mask: they never take the
	 * program's signals (a SIGTERM the program handles with a signalfd
	 * would kill it there), only rewire's and the synchronous ones. */
	sigfillset(&all);
	sigdelset(&all, rw_threads_signal());
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* liburcu's callback thread, if it does not run yet: started from
	 * the control thread later, it would be named like it. A thread
	 * inherits its creator's name: this one's is lent to it for the
	 * moment, so that `ps -L` and `rewire ls --threads` show it as
	 * rewire's, not as one of the program's. */
	rcu_thread_named();
	err = -pthread_create(&ctl_thread, NULL, ctl_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		fail(err, "pthread_create: %s", strerror(-err));
		goto fail;
	}
	pthread_setname_np(ctl_thread, "rewire-ctl");
	running = true;
	if (!atexit_done)
		atexit_done = !atexit(at_exit);
	rw__log("control socket %s", sock_path);
	return 0;
fail:
	cleanup_locked();
	return err;
}

static void restart_after_fork(void);

static void fork_child(void)
{
	forget_parent_server();
	restart_after_fork();
}

static const struct rw__fork_handlers ctl_fork = { .child = fork_child };

/*
 * The patch directory of @opts (or $REWIRE_PATCH_DIR) into patch_dir, then
 * applied, once per process, before the server starts: a client never sees
 * the program half patched, and the program serves patched from its first
 * request when this runs before main() (REWIRE_CTL=1). A failure is
 * reported and does not stop the start.
 */
static void patch_dir_locked(const struct rw_ctl_options *opts)
{
	const char *dir = NULL;
	int err;

	if (patch_dir_done)
		return;
	patch_dir_done = true;
	if (opts && opts->size >= offsetof(struct rw_ctl_options, patch_dir) +
					  sizeof(opts->patch_dir))
		dir = opts->patch_dir;
	if (!dir)
		dir = getenv("REWIRE_PATCH_DIR");
	if (!dir || !dir[0])
		return;
	err = rw__patchdir_resolve(dir, patch_dir, sizeof(patch_dir));
	if (err) {
		fprintf(stderr,
			"rewire: [%d] patch dir %s: %s; no patch applied\n",
			(int)getpid(), dir, strerror(-err));
		patch_dir[0] = '\0';
		return;
	}
	applying = true;
	rw__patchdir_apply(patch_dir, in_ctor);
	applying = false;
}

RW_EXPORT int rw_ctl_start_opts(const struct rw_ctl_options *opts)
{
	int err;

	if (applying)
		return fail(-EDEADLK, "called while the patch directory is "
				      "applied (from a patch's constructor)");
	pthread_mutex_lock(&ctl_lock);
	rw__fork_handlers_register(RW__FORK_CTL, &ctl_fork);
	if (!running)
		patch_dir_locked(opts);
	err = start_locked();
	pthread_mutex_unlock(&ctl_lock);
	return err;
}

RW_EXPORT int rw_ctl_start(void)
{
	return rw_ctl_start_opts(NULL);
}

RW_EXPORT int rw_ctl_patch_dir(char *buf, size_t len)
{
	int err = 0;

	if (applying) /* set already, and not changed while it is applied */
		return (size_t)snprintf(buf, len, "%s", patch_dir) >= len
			       ? -ENAMETOOLONG
			       : 0;
	pthread_mutex_lock(&ctl_lock);
	if (!patch_dir[0])
		err = -ENOENT;
	else if ((size_t)snprintf(buf, len, "%s", patch_dir) >= len)
		err = -ENAMETOOLONG;
	pthread_mutex_unlock(&ctl_lock);
	return err;
}

/* In the child of fork(), liburcu's fork handler has started a new
 * callback thread from this one, under its name: the only other thread
 * there is. Name it as rewire's. */
static void rcu_thread_renamed(void)
{
	char mine[32], comm[32], path[64];
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;

	thread_comm(rw__gettid(), mine, sizeof(mine));
	while (d && (de = readdir(d))) {
		long tid = strtol(de->d_name, NULL, 10);
		int fd;

		if (tid <= 0 || tid == rw__gettid())
			continue;
		thread_comm((pid_t)tid, comm, sizeof(comm));
		if (strcmp(comm, mine))
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%ld/comm", tid);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (write(fd, "rewire-rcu", 10) < 0)
			rw__log("%s: %s", path, strerror(errno));
		close(fd);
	}
	if (d)
		closedir(d);
}

/* In the child, after every other part of the library made its state
 * consistent: threads can be created and the library's locks taken. The
 * child is single-threaded. A server that came from the environment
 * starts again here (see fork() at the top); a failure is reported and
 * the child runs on without it. */
static void restart_after_fork(void)
{
	char msg[sizeof(last_error) + 96];
	int err, n;

	if (!from_env || !parent_pid)
		return;
	rcu_thread_renamed();
	err = start_locked();
	if (!err)
		return;
	/* Not stdio: a thread of the parent may have held stderr's lock
	 * at the fork. */
	n = snprintf(msg, sizeof(msg),
		     "rewire: [%d] control socket not started after fork: %s\n",
		     (int)getpid(),
		     *last_error ? last_error : rw_strerror(err));
	if (n > 0 &&
	    write(STDERR_FILENO, msg,
		  (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1) < 0)
		rw__log("%s", msg);
}

RW_EXPORT int rw_ctl_stop(void)
{
	char b = 0;

	if (applying)
		return -EDEADLK;
	pthread_mutex_lock(&ctl_lock);
	if (!running) {
		pthread_mutex_unlock(&ctl_lock);
		return 0;
	}
	if (pthread_equal(pthread_self(), ctl_thread)) {
		pthread_mutex_unlock(&ctl_lock);
		return -EDEADLK;
	}
	while (write(wake_pipe[1], &b, 1) < 0 && errno == EINTR)
		;
	pthread_join(ctl_thread, NULL);
	cleanup_locked();
	rw_wire_free(&reply);
	pthread_mutex_unlock(&ctl_lock);
	return 0;
}

RW_EXPORT int rw_ctl_socket_path(char *buf, size_t len)
{
	int err = 0;

	pthread_mutex_lock(&ctl_lock);
	if (!running)
		err = -ENOTCONN;
	else if ((size_t)snprintf(buf, len, "%s", sock_path) >= len)
		err = -ENAMETOOLONG;
	pthread_mutex_unlock(&ctl_lock);
	return err;
}

RW_EXPORT const char *rw_ctl_last_error(void)
{
	return last_error;
}

/* REWIRE_CTL=1 (set by `rewire run`) starts the server as the library
 * loads. A failure is reported and the program runs on without it. */
__attribute__((constructor)) static void ctl_from_env(void)
{
	const char *v = getenv("REWIRE_CTL");
	int err;

	if (!v || strcmp(v, "1"))
		return;
	from_env = true;
	in_ctor = true;
	err = rw_ctl_start();
	in_ctor = false;
	if (err)
		fprintf(stderr, "rewire: control socket not started: %s\n",
			*last_error ? last_error : rw_strerror(err));
}
