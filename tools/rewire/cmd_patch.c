// SPDX-License-Identifier: MIT
/*
 * rewire patch, unpatch, force: live patches and their transitions.
 *
 * Waiting for a transition is a loop of PATCH_STATE requests with
 * TIMEOUT_MS = 200: the process drives the transition for up to 200 ms
 * (rw_patch_wait) and answers with where it stands. The loop
 *   1. stops when the patch reached the target state (done), when the
 *      state moved elsewhere (someone reversed it: failure), on
 *      --timeout (exit 5) or on Ctrl-C (exit 130);
 *   2. shows progress on stderr: one updating line on a terminal, a line
 *      a second otherwise;
 *   3. lists the pending threads once per stall: when no thread switched
 *      for STALL_MS.
 * Stopping to wait never stops the transition: the process's control
 * server keeps driving it, unless --revert-on-timeout asks to reverse it.
 *
 * --timeout bounds the whole command: every connect, send and receive
 * (conn_open_until), so a process that stops answering (SIGSTOP, a
 * debugger) cannot hold it past the deadline.
 */
#include "rewire.h"

#include <rewire/livepatch.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATE_POLL_MS 200
#define STALL_MS 2000
#define DEFAULT_TIMEOUT_S 60.0

enum {
	OPT_TIMEOUT = 10,
	OPT_NO_WAIT,
	OPT_KEEP_LOADED,
	OPT_ALLOW_INLINED,
	OPT_REVERT
};
static const struct opt patch_opts[] = {
	{ "timeout", 't', true, OPT_TIMEOUT },
	{ "no-wait", 0, false, OPT_NO_WAIT },
	{ "allow-inlined", 0, false, OPT_ALLOW_INLINED },
	{ "revert-on-timeout", 0, false, OPT_REVERT },
	{ NULL, 0, false, 0 },
};
static const struct opt unpatch_opts[] = {
	{ "timeout", 't', true, OPT_TIMEOUT },
	{ "no-wait", 0, false, OPT_NO_WAIT },
	{ "keep-loaded", 0, false, OPT_KEEP_LOADED },
	{ NULL, 0, false, 0 },
};
static const struct opt force_opts[] = {
	{ NULL, 0, false, 0 },
};

const char *patch_state_name(uint64_t state)
{
	switch (state) {
	case RW_PATCH_LOADED:
		return "loaded";
	case RW_PATCH_ENABLING:
		return "enabling";
	case RW_PATCH_ENABLED:
		return "enabled";
	case RW_PATCH_DISABLING:
		return "disabling";
	case RW_PATCH_DISABLED:
		return "disabled";
	case RW_PATCH_REPLACED:
		return "replaced";
	default:
		return "unknown";
	}
}

const char *patch_why_name(uint64_t why)
{
	switch (why) {
	case RW_PT_SWITCHED:
		return "switched";
	case RW_PT_NOT_CHECKED:
		return "not checked yet";
	case RW_PT_ON_STACK:
		return "patched function on its stack";
	case RW_PT_UNWIND_FAILED:
		return "stack could not be unwound";
	case RW_PT_BUSY:
		return "busy (in a dispatcher, or moved while checked)";
	case RW_PT_NO_ANSWER:
		return "did not answer rewire's signal";
	default:
		return "unknown reason";
	}
}

void patch_info_read(const uint8_t *p, size_t n, struct patch_info *pi)
{
	struct rw_wire_iter it;
	struct rw_wire_field f;

	memset(pi, 0, sizeof(*pi));
	rw_wire_find_str(p, n, RW_TAG_NAME, pi->name, sizeof(pi->name));
	rw_wire_find_str(p, n, RW_TAG_PATH, pi->path, sizeof(pi->path));
	rw_wire_find_u64(p, n, RW_TAG_STATE, &pi->state);
	rw_wire_find_u64(p, n, RW_TAG_FORCED, &pi->forced);
	rw_wire_find_u64(p, n, RW_TAG_REPLACE, &pi->replace);
	rw_wire_find_u64(p, n, RW_TAG_NFUNCS, &pi->nfuncs);
	rw_wire_find_u64(p, n, RW_TAG_TARGET_PATCHED, &pi->target_patched);
	rw_wire_find_u64(p, n, RW_TAG_TOTAL, &pi->total);
	rw_wire_find_u64(p, n, RW_TAG_SWITCHED, &pi->switched);
	rw_wire_find_u64(p, n, RW_TAG_TRANSITION_NS, &pi->transition_ns);
	rw_wire_find_u64(p, n, RW_TAG_ATTEMPTS, &pi->attempts);
	rw_wire_find_str(p, n, RW_TAG_FILE_ID, pi->file_id,
			 sizeof(pi->file_id));
	rw_wire_find_u64(p, n, RW_TAG_FROM_DIR, &pi->from_dir);
	rw_wire_iter_init(&it, p, n);
	while (rw_wire_next(&it, &f)) {
		struct patch_pending *pp;

		if (f.tag != RW_TAG_PENDING || f.kind != RW_WK_GROUP)
			continue;
		pi->npending_all++;
		if (pi->npending >= PATCH_PENDING_MAX)
			continue;
		pp = &pi->pending[pi->npending++];
		rw_wire_find_u64(f.data, f.len, RW_TAG_TID, &pp->tid);
		rw_wire_find_str(f.data, f.len, RW_TAG_NAME, pp->comm,
				 sizeof(pp->comm));
		rw_wire_find_u64(f.data, f.len, RW_TAG_WHY, &pp->why);
		rw_wire_find_str(f.data, f.len, RW_TAG_FUNC, pp->func,
				 sizeof(pp->func));
		rw_wire_find_u64(f.data, f.len, RW_TAG_IP, &pp->ip);
	}
}

void patch_info_json(struct json *j, const struct patch_info *pi)
{
	json_obj_begin(j);
	json_kstr(j, "name", pi->name);
	json_kstr(j, "path", pi->path);
	json_kstr(j, "state", patch_state_name(pi->state));
	json_kbool(j, "forced", pi->forced);
	json_kbool(j, "replace", pi->replace);
	json_ku64(j, "nfuncs", pi->nfuncs);
	json_kbool(j, "target_patched", pi->target_patched);
	json_ku64(j, "threads_total", pi->total);
	json_ku64(j, "threads_switched", pi->switched);
	json_ku64(j, "transition_ns", pi->transition_ns);
	json_ku64(j, "attempts", pi->attempts);
	json_key(j, "file_id");
	if (*pi->file_id)
		json_str(j, pi->file_id);
	else
		json_null(j);
	json_kbool(j, "from_dir", pi->from_dir);
	json_key(j, "pending");
	json_arr_begin(j);
	for (size_t i = 0; i < pi->npending; i++) {
		const struct patch_pending *pp = &pi->pending[i];

		json_obj_begin(j);
		json_ku64(j, "tid", pp->tid);
		json_kstr(j, "name", pp->comm);
		json_ku64(j, "why", pp->why);
		json_kstr(j, "reason", patch_why_name(pp->why));
		json_kstr(j, "func", pp->func);
		json_ku64(j, "ip", pp->ip);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static uint64_t ms_of(uint64_t ns)
{
	return ns / 1000000;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * How long the transition took: the process's figure, unless this command
 * saw it take less (a transition reversed midway keeps the time since it
 * first started).
 */
static uint64_t took_ns(const struct patch_info *pi, uint64_t since_ns)
{
	uint64_t wall = now_ns() - since_ns;

	return pi->transition_ns < wall ? pi->transition_ns : wall;
}

/* "0.4" below 10 ms, "120" above. */
static const char *ms_str(uint64_t ns, char *buf, size_t size)
{
	if (ns < 10000000)
		snprintf(buf, size, "%.1f", (double)ns / 1e6);
	else
		snprintf(buf, size, "%llu", (unsigned long long)ms_of(ns));
	return buf;
}

/* The threads that block the transition, on stderr. */
static void print_pending(const struct conn *c, const struct patch_info *pi)
{
	static const char *head[] = { "TID", "NAME", "REASON", "FUNCTION" };
	uint64_t waiting = pi->total > pi->switched ? pi->total - pi->switched
						    : pi->npending_all;
	struct table t;

	fprintf(stderr, "patch %s: %s waits for %llu thread%s of process %d:\n",
		pi->name, patch_state_name(pi->state),
		(unsigned long long)waiting, waiting == 1 ? "" : "s",
		(int)c->pid);
	table_init(&t, 4, head);
	for (size_t i = 0; i < pi->npending; i++) {
		const struct patch_pending *pp = &pi->pending[i];
		char tid[32], comm[64], func[160];
		const char *cells[4] = { tid, comm, patch_why_name(pp->why),
					 func };

		snprintf(tid, sizeof(tid), "%llu", (unsigned long long)pp->tid);
		if (*pp->comm)
			snprintf(comm, sizeof(comm), "%s", pp->comm);
		else
			thread_comm(c->pid, (pid_t)pp->tid, comm, sizeof(comm));
		if (*pp->func)
			snprintf(func, sizeof(func), "%s", pp->func);
		else if (pp->ip)
			snprintf(func, sizeof(func), "0x%llx",
				 (unsigned long long)pp->ip);
		else
			snprintf(func, sizeof(func), "-");
		table_add(&t, cells);
	}
	table_print(&t, stderr);
	if (waiting > pi->npending)
		fprintf(stderr, "(and %llu more)\n",
			(unsigned long long)(waiting - pi->npending));
}

static void hint_after_wait(const struct conn *c, const struct patch_info *pi,
			    bool enabling)
{
	fprintf(stderr,
		"The transition goes on in process %d (its control server "
		"keeps driving it).\n"
		"  follow it:   rewire ls %d --patches\n",
		(int)c->pid, (int)c->pid);
	if (enabling)
		fprintf(stderr, "  revert it:   rewire unpatch %d %s\n",
			(int)c->pid, pi->name);
	else
		fprintf(stderr, "  re-enable:   rewire patch %d %s\n",
			(int)c->pid, *pi->path ? pi->path : pi->name);
	fprintf(stderr,
		"  complete it without the pending threads (they may then "
		"run old and new code mixed):\n"
		"               rewire force %d %s\n",
		(int)c->pid, pi->name);
}

/*
 * A request of @type on @name (with TIMEOUT_MS if @timeout_ms > 0) whose
 * reply is the PATCH fields, read into @pi (NULL: ignored). PATCH_STATE's
 * reply always describes the patch; the others' may be empty, which leaves
 * @pi as it was.
 */
static int patch_request(struct conn *c, uint16_t type, const char *name,
			 int timeout_ms, struct patch_info *pi)
{
	struct rw_wire_msg m;
	int ret;

	conn_begin(c, type);
	rw_wire_str(&c->buf, RW_TAG_NAME, name);
	if (timeout_ms > 0)
		rw_wire_u64(&c->buf, RW_TAG_TIMEOUT_MS, (uint64_t)timeout_ms);
	ret = conn_call(c, &m, -1);
	if (ret)
		return ret;
	if (pi && (m.len || type == RW_MSG_PATCH_STATE)) {
		patch_info_read(m.payload, m.len, pi);
		if (!*pi->name)
			snprintf(pi->name, sizeof(pi->name), "%s", name);
	}
	rw_wire_msg_free(&m);
	return 0;
}

/* PATCH_STATE of @name, driving the transition for @timeout_ms first. */
static int patch_state(struct conn *c, const char *name, int timeout_ms,
		       struct patch_info *pi)
{
	return patch_request(c, RW_MSG_PATCH_STATE, name, timeout_ms, pi);
}

int patch_op(struct conn *c, uint16_t type, const char *name,
	     struct patch_info *pi)
{
	return patch_request(c, type, name, 0, pi);
}

static void progress(const struct patch_info *pi, bool tty)
{
	if (g.quiet)
		return;
	fprintf(stderr, "%spatch %s: %s, %llu/%llu threads switched, %llu ms%s",
		tty ? "\r\033[K" : "", pi->name, patch_state_name(pi->state),
		(unsigned long long)pi->switched, (unsigned long long)pi->total,
		(unsigned long long)ms_of(pi->transition_ns), tty ? "" : "\n");
	fflush(stderr);
}

int patch_wait(struct conn *c, struct patch_info *pi, bool enabling,
	       uint64_t timeout_ms, bool hint)
{
	uint64_t target = enabling ? RW_PATCH_ENABLED : RW_PATCH_DISABLED;
	uint64_t via = enabling ? RW_PATCH_ENABLING : RW_PATCH_DISABLING;
	uint64_t start = now_ms(), last_move = start, last_line = start;
	uint64_t last_switched = UINT64_MAX;
	bool tty = isatty(STDERR_FILENO), stall_shown = false, shown = false;
	char name[sizeof(pi->name)];
	int ret, drive;

	snprintf(name, sizeof(name), "%s", pi->name);
	g_interrupted = 0;
	sig_catch();
	for (;;) {
		uint64_t now;

		if (pi->state == target)
			break;
		if (pi->state != via) {
			if (shown && tty && !g.quiet)
				fputc('\n', stderr);
			return fail(
				EX_FAIL, -EBUSY,
				"patch %s: the transition did not complete: "
				"the patch is now %s (reversed or replaced "
				"by another request?)",
				name, patch_state_name(pi->state));
		}
		now = now_ms();
		if (pi->switched != last_switched) {
			last_switched = pi->switched;
			last_move = now;
			stall_shown = false;
		}
		if (tty || now - last_line >= 1000) {
			progress(pi, tty);
			last_line = now;
			shown = true;
		}
		if (!stall_shown && now - last_move >= STALL_MS) {
			if (tty && !g.quiet)
				fputc('\n', stderr);
			print_pending(c, pi);
			stall_shown = true;
		}
		if ((timeout_ms && now - start >= timeout_ms) ||
		    (c->deadline_ms && now >= c->deadline_ms)) {
			if (tty && !g.quiet)
				fputc('\n', stderr);
			/* Listed already if nothing moved since. */
			if (!stall_shown)
				print_pending(c, pi);
			ret = fail(
				EX_TIMEOUT, -ETIMEDOUT,
				"patch %s: still %s after %.1f s (--timeout)",
				name, patch_state_name(pi->state),
				(double)(now - start) / 1000);
			if (hint)
				hint_after_wait(c, pi, enabling);
			return ret;
		}
		if (g_interrupted)
			goto interrupted;
		/* The process drives the transition for up to this long
		 * before it answers: at most half of what is left before
		 * the deadline, so that its answer comes before it. */
		drive = conn_ms_left(c, -1);
		drive = drive < 0 || drive / 2 > STATE_POLL_MS ? STATE_POLL_MS
							       : drive / 2;
		c->timeout_quiet = true;
		ret = patch_state(c, name, drive ? drive : 1, pi);
		c->timeout_quiet = false;
		if (ret == EX_TIMEOUT && !*stopped_note(c->pid) &&
		    c->deadline_ms && now_ms() >= c->deadline_ms)
			continue; /* the deadline: said at the top */
		if (ret == EX_TIMEOUT)
			fail(EX_TIMEOUT, c->err, "%s", c->errmsg);
		if (ret == EX_INTR)
			goto interrupted;
		if (ret == EX_FAIL)
			return conn_fail(c, "patch state");
		if (ret == EX_TIMEOUT && hint)
			hint_after_wait(c, pi, enabling);
		if (ret)
			return ret;
	}
	/* The result line replaces the progress line. */
	if (shown && tty && !g.quiet)
		fputs("\r\033[K", stderr);
	return EX_OK;

interrupted:
	if (tty && !g.quiet)
		fputc('\n', stderr);
	ret = fail(EX_INTR, -EINTR, "patch %s: interrupted; stopped waiting",
		   name);
	hint_after_wait(c, pi, enabling);
	return ret;
}

int patch_timeout(const char *arg, uint64_t *ms)
{
	double s = DEFAULT_TIMEOUT_S;

	if (arg && !parse_seconds(arg, &s))
		return usage_error("--timeout: '%s' is not a number of seconds",
				   arg);
	*ms = (uint64_t)(s * 1000);
	if (s > 0 && !*ms)
		*ms = 1;
	return 0;
}

int patch_load(struct conn *c, const char *path, int fd, uint64_t flags,
	       struct rw_wire_msg *m)
{
	conn_begin(c, RW_MSG_PATCH_LOAD);
	rw_wire_str(&c->buf, RW_TAG_PATH, path);
	if (flags)
		rw_wire_u64(&c->buf, RW_TAG_LOAD_FLAGS, flags);
	/* The process loads the file this command opened: a process in
	 * another mount namespace cannot see @path, and the file cannot be
	 * swapped under the path between our checks and its load. Older
	 * servers ignore the descriptor and load PATH. */
	c->pass_fd = fd;
	return conn_call(c, m, -1);
}

/* Opens the result object on stdout with "patch": @pi. */
static void result_begin(struct json *j, const struct patch_info *pi)
{
	json_init(j, stdout);
	json_obj_begin(j);
	json_key(j, "patch");
	patch_info_json(j, pi);
}

static void result_end(struct json *j)
{
	json_obj_end(j);
	json_done(j);
}

static void result_json(const struct patch_info *pi, const char *result,
			uint64_t elapsed_ms)
{
	struct json j;

	result_begin(&j, pi);
	json_kstr(&j, "result", result);
	json_ku64(&j, "elapsed_ms", elapsed_ms);
	result_end(&j);
}

/* --no-wait: the transition started and goes on in the process. */
static void result_started(const struct patch_info *pi, pid_t pid,
			   uint64_t start)
{
	if (g.json)
		result_json(pi, "started", now_ms() - start);
	else if (!g.quiet)
		fprintf(stderr,
			"patch %s: %s, %llu/%llu threads switched; "
			"follow it with `rewire ls %d --patches`\n",
			pi->name, patch_state_name(pi->state),
			(unsigned long long)pi->switched,
			(unsigned long long)pi->total, (int)pid);
}

/* "patch NAME enabled in 0.4 ms (7 threads)" on stdout. */
static void result_done(const struct patch_info *pi, const char *state,
			uint64_t t0)
{
	char msbuf[32];

	printf("patch %s %s in %s ms (%llu thread%s)\n", pi->name, state,
	       ms_str(took_ns(pi, t0), msbuf, sizeof(msbuf)),
	       (unsigned long long)pi->total, pi->total == 1 ? "" : "s");
}

/*
 * PATCH_LOAD failed with -EEXIST: a patch of that name is loaded already.
 * Says which, in what state, and what to do. Returns EX_FAIL.
 */
static int already_loaded(struct conn *c, const char *path, const char *file)
{
	struct rw_wire_msg m;
	struct rw_wire_iter it;
	struct rw_wire_field f;
	struct patch_info *pi = xmalloc(sizeof(*pi)), *hit = NULL;
	char quoted[sizeof(pi->name) + 2], msgbuf[sizeof(c->errmsg)];
	int pid = (int)c->pid, ret;

	snprintf(msgbuf, sizeof(msgbuf), "%s", c->errmsg);
	conn_begin(c, RW_MSG_LS);
	if (!conn_call(c, &m, -1)) {
		rw_wire_iter_init(&it, m.payload, m.len);
		while (!hit && rw_wire_next(&it, &f)) {
			if (f.tag != RW_TAG_PATCH || f.kind != RW_WK_GROUP)
				continue;
			patch_info_read(f.data, f.len, pi);
			snprintf(quoted, sizeof(quoted), "'%s'", pi->name);
			/* Loaded from this file, or named in the loader's
			 * message. */
			if (pi->state != RW_PATCH_REPLACED &&
			    (!strcmp(pi->path, path) || strstr(msgbuf, quoted)))
				hit = pi;
		}
		rw_wire_msg_free(&m);
	}
	if (!hit) {
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", msgbuf);
		c->err = -EEXIST;
		free(pi);
		return conn_fail(c, "load");
	}
	switch (hit->state) {
	case RW_PATCH_ENABLED:
		ret = fail(EX_FAIL, -EEXIST,
			   "patch %s is already loaded in process %d (from "
			   "%s) and enabled: nothing to do. To load the file "
			   "anew, remove it first: `rewire unpatch %d %s`, "
			   "then `rewire patch %d %s`",
			   hit->name, pid, hit->path, pid, hit->name, pid,
			   file);
		break;
	case RW_PATCH_ENABLING:
	case RW_PATCH_DISABLING:
		ret = fail(EX_FAIL, -EEXIST,
			   "patch %s is already loaded in process %d (from "
			   "%s) and %s: follow it with `rewire ls %d "
			   "--patches`, revert it with `rewire unpatch %d %s`, "
			   "or complete it with `rewire force %d %s`",
			   hit->name, pid, hit->path,
			   patch_state_name(hit->state), pid, pid, hit->name,
			   pid, hit->name);
		break;
	default:
		ret = fail(
			EX_FAIL, -EEXIST,
			"patch %s is already loaded in process %d (from "
			"%s) and %s: unload it with `rewire unpatch %d %s`, "
			"then `rewire patch %d %s` loads and enables it anew",
			hit->name, pid, hit->path, patch_state_name(hit->state),
			pid, hit->name, pid, file);
		break;
	}
	free(pi);
	return ret;
}

/*
 * --revert-on-timeout: the enabling of @pi timed out (kpatch's behaviour
 * on a stalled transition): disable it, which reverses the threads that
 * switched, wait for that with a deadline as long as --timeout again, and
 * unload it. Returns EX_TIMEOUT whatever happens (the patch was not
 * enabled), with what was done printed.
 */
static int revert_after_timeout(struct conn *c, struct patch_info *pi,
				uint64_t timeout_ms)
{
	char name[sizeof(pi->name)];
	int pid = (int)c->pid, ret;

	snprintf(name, sizeof(name), "%s", pi->name);
	c->deadline_ms = now_ms() + (timeout_ms > 1000 ? timeout_ms : 1000);
	msg("patch %s: reverting the transition (--revert-on-timeout)", name);
	ret = patch_op(c, RW_MSG_PATCH_DISABLE, name, pi);
	if (ret == EX_FAIL) {
		/* Not in a transition any more, and not enabled: a patch
		 * that is loaded or disabled only needs unloading. */
		if (c->err != -EINVAL && c->err != -EALREADY)
			return conn_fail(c, "revert"), EX_TIMEOUT;
	} else if (ret) {
		msg("patch %s: process %d does not answer: it was not "
		    "reverted (it may still serve the last request when it "
		    "runs again); see `rewire ls %d --patches`",
		    name, pid, pid);
		return EX_TIMEOUT;
	} else if (pi->state != RW_PATCH_DISABLED) {
		ret = patch_wait(c, pi, false, 0, false);
		if (ret) {
			msg("patch %s: the revert did not complete either; "
			    "it goes on in process %d: `rewire ls %d "
			    "--patches`, `rewire force %d %s`",
			    name, pid, pid, pid, name);
			return EX_TIMEOUT;
		}
	}
	ret = patch_op(c, RW_MSG_PATCH_UNLOAD, name, NULL);
	if (ret == EX_FAIL) {
		conn_fail(c, "unload");
		msg("patch %s: reverted (disabled) but still loaded", name);
		return EX_TIMEOUT;
	}
	if (ret)
		return EX_TIMEOUT;
	if (g.json)
		result_json(pi, "reverted", 0);
	msg("patch %s: reverted and unloaded (--revert-on-timeout): process "
	    "%d runs the old functions",
	    name, pid);
	return EX_TIMEOUT;
}

int cmd_patch(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct patch_info *pi = NULL;
	char path[PATH_MAX], what[PATH_MAX + 16], warning[512];
	uint64_t timeout_ms, start, t0;
	struct rw_wire_msg m;
	bool revert;
	pid_t pid;
	int fd = -1, ret = opts_parse_pid(argc, argv, patch_opts, &v, 2,
					  "expected PID FILE.so", &pid);

	if (ret)
		return ret < 0 ? EX_OK : ret;
	ret = patch_timeout(v.set[OPT_TIMEOUT] ? v.arg[OPT_TIMEOUT] : NULL,
			    &timeout_ms);
	if (ret)
		return ret;
	revert = v.set[OPT_REVERT];
	if (revert && !timeout_ms)
		return usage_error("--revert-on-timeout needs a --timeout "
				   "other than 0");
	if (revert && v.set[OPT_NO_WAIT])
		return usage_error("--revert-on-timeout and --no-wait "
				   "exclude each other");
	if (!realpath(v.pos[1], path))
		return fail(EX_FAIL, -errno, "patch file %s: %s", v.pos[1],
			    strerror(errno));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(EX_FAIL, -errno, "patch file %s: %s", path,
			    strerror(errno));

	start = now_ms();
	ret = conn_open_until(pid, &c, timeout_ms ? start + timeout_ms : 0);
	if (ret)
		goto out;
	pi = xmalloc(sizeof(*pi));
	ret = patch_load(
		&c, path, fd,
		v.set[OPT_ALLOW_INLINED] ? RW_PATCH_LOAD_ALLOW_INLINED : 0, &m);
	if (ret == EX_FAIL && c.err == -EEXIST) {
		ret = already_loaded(&c, path, v.pos[1]);
		goto out;
	}
	if (ret == EX_FAIL) {
		/* The loader's messages name the file already. */
		if (strstr(c.errmsg, path))
			snprintf(what, sizeof(what), "load");
		else
			snprintf(what, sizeof(what), "load %s", path);
		ret = conn_fail(&c, what);
	}
	if (ret == EX_TIMEOUT)
		msg("process %d may still load %s when it runs again: see "
		    "`rewire ls %d --patches`",
		    (int)pid, path, (int)pid);
	if (ret)
		goto out;
	patch_info_read(m.payload, m.len, pi);
	/* Inlining not checked (no debug information), or allowed. */
	if (rw_wire_find_str(m.payload, m.len, RW_TAG_MESSAGE, warning,
			     sizeof(warning)))
		msg("warning: %s", warning);
	rw_wire_msg_free(&m);
	if (!*pi->name) {
		ret = fail(EX_PROTO, -EPROTO,
			   "process %d: PATCH_LOAD's reply has no name",
			   (int)pid);
		goto out;
	}

	t0 = now_ns();
	ret = patch_op(&c, RW_MSG_PATCH_ENABLE, pi->name, pi);
	if (ret == EX_FAIL) {
		char name[sizeof(pi->name)];
		int err = c.err;

		snprintf(name, sizeof(name), "%s", pi->name);
		snprintf(what, sizeof(what), "enable %s", name);
		ret = conn_fail(&c, what);
		/* Leave the process as it was: unload what we loaded. */
		if (!patch_op(&c, RW_MSG_PATCH_UNLOAD, name, NULL))
			msg("patch %s unloaded again", name);
		else
			msg("patch %s stays loaded: unload it with `rewire "
			    "unpatch %d %s`",
			    name, (int)pid, name);
		c.err = err;
		goto out;
	}
	if (ret == EX_TIMEOUT) {
		ret = revert ? revert_after_timeout(&c, pi, timeout_ms)
			     : EX_TIMEOUT;
		if (!revert)
			msg("patch %s: process %d may still enable it when it "
			    "runs again: see `rewire ls %d --patches`",
			    pi->name, (int)pid, (int)pid);
		goto out;
	}
	if (ret)
		goto out;

	if (v.set[OPT_NO_WAIT] && pi->state != RW_PATCH_ENABLED) {
		result_started(pi, pid, start);
		ret = EX_OK;
		goto out;
	}
	ret = patch_wait(&c, pi, true, 0, !revert);
	if (ret == EX_TIMEOUT && revert)
		ret = revert_after_timeout(&c, pi, timeout_ms);
	if (ret)
		goto out;
	if (g.json)
		result_json(pi, "enabled", now_ms() - start);
	else
		result_done(pi, "enabled", t0);
out:
	if (fd >= 0)
		close(fd);
	free(pi);
	conn_close(&c);
	return ret;
}

/*
 * @arg is a patch name, or the path of its file: fills @pi with the
 * patch's state (PATCH_STATE). Returns an exit code; EX_FAIL is printed.
 */
static int resolve_patch(struct conn *c, const char *arg, const char *what,
			 struct patch_info *pi)
{
	struct rw_wire_msg m;
	struct rw_wire_iter it;
	struct rw_wire_field f;
	char real[PATH_MAX], msgbuf[sizeof(c->errmsg)];
	int err, ret = patch_state(c, arg, 0, pi);

	if (ret != EX_FAIL || c->err != -ENOENT ||
	    (!strchr(arg, '/') && !strstr(arg, ".so")))
		return ret == EX_FAIL ? conn_fail(c, what) : ret;

	/* A path: find the patch loaded from it. */
	err = c->err;
	snprintf(msgbuf, sizeof(msgbuf), "%s", c->errmsg);
	if (!realpath(arg, real))
		snprintf(real, sizeof(real), "%s", arg);
	conn_begin(c, RW_MSG_LS);
	ret = conn_request(c, &m, "ls");
	if (ret)
		return ret;
	ret = -1;
	rw_wire_iter_init(&it, m.payload, m.len);
	while (rw_wire_next(&it, &f)) {
		if (f.tag != RW_TAG_PATCH || f.kind != RW_WK_GROUP)
			continue;
		patch_info_read(f.data, f.len, pi);
		if (!strcmp(pi->path, real) || !strcmp(pi->path, arg)) {
			ret = 0;
			break;
		}
	}
	rw_wire_msg_free(&m);
	if (ret) {
		c->err = err;
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", msgbuf);
		return conn_fail(c, what);
	}
	return 0;
}

int cmd_unpatch(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct patch_info *pi = NULL;
	char what[512];
	uint64_t timeout_ms, start, t0 = now_ns();
	bool keep, disabled = false;
	pid_t pid;
	int ret = opts_parse_pid(argc, argv, unpatch_opts, &v, 2,
				 "expected PID PATCH", &pid);

	if (ret)
		return ret < 0 ? EX_OK : ret;
	ret = patch_timeout(v.set[OPT_TIMEOUT] ? v.arg[OPT_TIMEOUT] : NULL,
			    &timeout_ms);
	if (ret)
		return ret;
	keep = v.set[OPT_KEEP_LOADED] || v.set[OPT_NO_WAIT];

	start = now_ms();
	ret = conn_open_until(pid, &c, timeout_ms ? start + timeout_ms : 0);
	if (ret)
		goto out;
	pi = xmalloc(sizeof(*pi));
	snprintf(what, sizeof(what), "unpatch %.200s", v.pos[1]);
	ret = resolve_patch(&c, v.pos[1], what, pi);
	if (ret)
		goto out;

	switch (pi->state) {
	case RW_PATCH_ENABLED:
	case RW_PATCH_ENABLING:
		t0 = now_ns();
		ret = patch_op(&c, RW_MSG_PATCH_DISABLE, pi->name, pi);
		if (ret == EX_FAIL) {
			snprintf(what, sizeof(what), "disable %.200s",
				 pi->name);
			ret = conn_fail(&c, what);
		}
		if (ret)
			goto out;
		disabled = true;
		break;
	case RW_PATCH_DISABLING:
		disabled = true;
		break;
	default:
		break;
	}
	if (disabled && v.set[OPT_NO_WAIT] && pi->state != RW_PATCH_DISABLED) {
		result_started(pi, pid, start);
		goto out;
	}
	if (disabled) {
		ret = patch_wait(&c, pi, false, 0, true);
		if (ret)
			goto out;
		if (!g.json)
			result_done(pi, "disabled", t0);
	}
	if (!keep) {
		ret = patch_op(&c, RW_MSG_PATCH_UNLOAD, pi->name, NULL);
		if (ret == EX_FAIL) {
			snprintf(what, sizeof(what), "unload %.200s", pi->name);
			ret = conn_fail(&c, what);
		}
		if (ret)
			goto out;
		if (!g.json)
			printf("patch %s unloaded%s\n", pi->name,
			       pi->forced ? " (it was forced: its code "
					    "stays mapped)"
					  : "");
	} else if (!disabled && !g.json) {
		printf("patch %s is %s: nothing to disable\n", pi->name,
		       patch_state_name(pi->state));
	}
	if (g.json)
		result_json(pi, keep ? patch_state_name(pi->state) : "unloaded",
			    now_ms() - start);
out:
	free(pi);
	conn_close(&c);
	return ret;
}

int cmd_force(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct patch_info *pi = NULL;
	uint64_t pending;
	char what[512];
	pid_t pid;
	int ret = opts_parse_pid(argc, argv, force_opts, &v, 2,
				 "expected PID PATCH", &pid);

	if (ret)
		return ret < 0 ? EX_OK : ret;

	ret = conn_open(pid, &c);
	if (ret)
		goto out;
	pi = xmalloc(sizeof(*pi));
	snprintf(what, sizeof(what), "force %.200s", v.pos[1]);
	ret = resolve_patch(&c, v.pos[1], what, pi);
	if (ret)
		goto out;
	if (pi->state != RW_PATCH_ENABLING && pi->state != RW_PATCH_DISABLING) {
		ret = fail(EX_FAIL, -EINVAL,
			   "force %s: the patch is %s, not in a transition: "
			   "nothing to force",
			   pi->name, patch_state_name(pi->state));
		goto out;
	}
	pending = pi->total > pi->switched ? pi->total - pi->switched : 0;
	ret = patch_op(&c, RW_MSG_PATCH_FORCE, pi->name, pi);
	if (ret == EX_FAIL)
		ret = conn_fail(&c, what);
	if (ret)
		goto out;
	/* The reply is the state right after the force. */
	if (g.json) {
		struct json j;

		result_begin(&j, pi);
		json_ku64(&j, "forced_threads", pending);
		result_end(&j);
	} else {
		printf("patch %s: transition forced, now %s (%llu thread%s "
		       "switched without a check: they may run old and new "
		       "code mixed)\n",
		       pi->name, patch_state_name(pi->state),
		       (unsigned long long)pending, pending == 1 ? "" : "s");
	}
out:
	free(pi);
	conn_close(&c);
	return ret;
}
