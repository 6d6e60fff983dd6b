// SPDX-License-Identifier: MIT
/*
 * rewire apply: make a process hold a desired patch state, idempotently.
 *
 *	rewire apply PID PATCH.so... [--check] [--persist] [--timeout SEC]
 *	rewire apply PID --absent NAME|PATCH.so... [--check] [--persist]
 *
 * Each PATCH.so is to be loaded and enabled in the process; with --absent
 * each named patch is to be gone. The command reads what the process has
 * (one LS request), decides per patch what to do, does only that, and
 * says whether anything changed: configuration tools (the Ansible module)
 * call it again and again and must see "unchanged" when the state holds.
 *
 * "The same patch" is the same name and the same file identity (FILE_ID:
 * the GNU build-id of the file, else its size and hash, patchfile.h); a
 * server too old to report FILE_ID is compared by the path it loaded.
 * Patches not named are left alone.
 *
 * --persist also makes the process's patch directory (HELLO's PATCH_DIR,
 * the directory its control server applies at start) hold the same:
 * DIR/NAME.so written atomically (a temporary file in DIR, fsync, rename)
 * or removed. The directory is reached through /proc/PID/root when the
 * process runs in another mount namespace, resolved inside that root so
 * that links in the container cannot point out of it.
 *
 * Live changes come first and the directory second, patch by patch: a
 * patch that fails is not persisted, and the command stops at the first
 * failure (exit 1), having undone what that patch's own step did.
 */
#include "patchfile.h"

#include <rewire/livepatch.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum {
	OPT_TIMEOUT = 10, /* as cmd_patch.c's */
	OPT_CHECK,
	OPT_PERSIST,
	OPT_ABSENT,
	OPT_ALLOW_INLINED,
};
static const struct opt apply_opts[] = {
	{ "timeout", 't', true, OPT_TIMEOUT },
	{ "check", 0, false, OPT_CHECK },
	{ "persist", 0, false, OPT_PERSIST },
	{ "absent", 0, false, OPT_ABSENT },
	{ "allow-inlined", 0, false, OPT_ALLOW_INLINED },
	{ NULL, 0, false, 0 },
};

/* What one patch needs, live. */
enum live_action {
	ACT_NONE,
	ACT_LOAD_ENABLE,
	ACT_ENABLE,
	ACT_REPLACE,
	ACT_DISABLE_UNLOAD,
	ACT_UNLOAD,
};
static const char *const action_names[] = {
	[ACT_NONE] = "",
	[ACT_LOAD_ENABLE] = "load+enable",
	[ACT_ENABLE] = "enable",
	[ACT_REPLACE] = "replace",
	[ACT_DISABLE_UNLOAD] = "disable+unload",
	[ACT_UNLOAD] = "unload",
};

/* One patch named on the command line. */
struct target {
	const char *arg;
	bool absent;
	char path[PATH_MAX];   /* present (or a file given to --absent) */
	struct patchfile pf;   /* name; present: file_id and fd */
	bool loaded;	       /* cur holds the process's patch */
	struct patch_info cur; /* before, then after */
	bool persisted;	       /* DIR/NAME.so holds this file (absent:
				 exists), before, then after */
	enum live_action act;
	int persist_act; /* 0, 1 persist, -1 unpersist */
	bool act_done, persist_done;
	uint64_t act_ms, persist_ms;
	/* The before view, for the document. */
	char before_state[16], before_id[160];
	bool before_persisted;
};

struct apply {
	struct conn c;
	struct target *t;
	int n;
	bool check, persist;
	uint64_t load_flags;
	int dfd; /* the patch directory, -1 */
	char dir_shown[4096 + 64];
};

static uint64_t ms_since(uint64_t start)
{
	return now_ms() - start;
}

static bool is_file_arg(const char *arg)
{
	size_t n = strlen(arg);

	return strchr(arg, '/') || (n > 3 && !strcmp(arg + n - 3, ".so"));
}

/* ---- The patch directory ------------------------------------------------ */

/*
 * Opens the process's patch directory (as it sees it): directly, or inside
 * its root (conn's where.root, /proc/PID/root, when it runs in other
 * namespaces) with RESOLVE_IN_ROOT so that its links resolve there.
 * Returns a descriptor or a negative errno; @shown gets the path from
 * here, for messages.
 */
static int open_patch_dir(const struct conn *c, char *shown, size_t size)
{
	const char *dir = c->patch_dir, *root = c->where.root;
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int rfd, fd;

	if (!*root) {
		snprintf(shown, size, "%s", dir);
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	snprintf(shown, size, "%s%s", root, dir);
	rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return -errno;
	fd = (int)syscall(SYS_openat2, rfd, dir, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(rfd, dir[0] == '/' ? dir + 1 : dir,
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		fd = -errno;
	close(rfd);
	return fd;
}

/* Whether @name in @dfd is a regular file with the bytes of @fd. */
static bool same_file(int dfd, const char *name, int fd)
{
	char a[65536], b[65536];
	struct stat sa, sb;
	off_t off = 0;
	int ffd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	bool same = false;

	if (ffd < 0)
		return false;
	if (fstat(ffd, &sa) || fstat(fd, &sb) || !S_ISREG(sa.st_mode) ||
	    sa.st_size != sb.st_size)
		goto out;
	for (;;) {
		ssize_t x = pread(ffd, a, sizeof(a), off);
		ssize_t y = pread(fd, b, sizeof(b), off);

		if (x < 0 || x != y || memcmp(a, b, (size_t)x))
			goto out;
		if (!x)
			break;
		off += x;
	}
	same = true;
out:
	close(ffd);
	return same;
}

static void persisted_name(const struct target *t, char *out, size_t size)
{
	snprintf(out, size, "%s.so", t->pf.name);
}

static bool persisted_now(const struct apply *a, const struct target *t)
{
	char name[160];
	struct stat st;

	if (a->dfd < 0)
		return false;
	persisted_name(t, name, sizeof(name));
	if (t->absent)
		return !fstatat(a->dfd, name, &st, AT_SYMLINK_NOFOLLOW);
	return same_file(a->dfd, name, t->pf.fd);
}

/* DIR/NAME.so := the patch file, atomically: a temporary file in DIR
 * with its bytes, mode 0644, owned by the process's user when we are
 * root, fsync'ed, renamed over the name, the directory fsync'ed. */
static int persist_write(struct apply *a, struct target *t)
{
	char name[160], tmp[200], buf[65536];
	off_t off = 0;
	int fd = -1, err = 0;

	persisted_name(t, name, sizeof(name));
	for (int i = 0; fd < 0 && i < 100; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(tmp, sizeof(tmp), ".%s.%d.%ld.tmp", name,
			 (int)getpid(), (long)(ts.tv_nsec + i));
		fd = openat(a->dfd, tmp,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
				    O_NOFOLLOW,
			    0644);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0)
		return fail(EX_FAIL, -errno, "--persist: %s/%s: %s",
			    a->dir_shown, name, strerror(errno));
	for (;;) {
		ssize_t got = pread(t->pf.fd, buf, sizeof(buf), off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = -errno;
			break;
		}
		if (!got)
			break;
		for (ssize_t put = 0; put < got;) {
			ssize_t w = write(fd, buf + put, (size_t)(got - put));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				err = -errno;
				break;
			}
			put += w;
		}
		if (err)
			break;
		off += got;
	}
	if (!err && fchmod(fd, 0644))
		err = -errno;
	if (!err && geteuid() == 0 && a->c.uid != 0 &&
	    fchown(fd, a->c.uid, (gid_t)-1))
		err = -errno;
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && renameat(a->dfd, tmp, a->dfd, name))
		err = -errno;
	if (err) {
		unlinkat(a->dfd, tmp, 0);
		return fail(EX_FAIL, err, "--persist: writing %s/%s: %s",
			    a->dir_shown, name, strerror(-err));
	}
	fsync(a->dfd);
	return 0;
}

static int persist_remove(struct apply *a, struct target *t)
{
	char name[160];

	persisted_name(t, name, sizeof(name));
	if (unlinkat(a->dfd, name, 0) && errno != ENOENT)
		return fail(EX_FAIL, -errno, "--persist: removing %s/%s: %s",
			    a->dir_shown, name, strerror(errno));
	fsync(a->dfd);
	return 0;
}

/* ---- The process's patches ----------------------------------------------- */

/* LS: fills each target's cur and loaded. */
static int read_loaded(struct apply *a)
{
	struct patch_info *pi = xmalloc(sizeof(*pi));
	struct rw_wire_msg m;
	struct rw_wire_iter it;
	struct rw_wire_field f;
	int ret;

	for (int i = 0; i < a->n; i++)
		a->t[i].loaded = false;
	conn_begin(&a->c, RW_MSG_LS);
	ret = conn_request(&a->c, &m, "ls");
	if (ret) {
		free(pi);
		return ret;
	}
	rw_wire_iter_init(&it, m.payload, m.len);
	while (rw_wire_next(&it, &f)) {
		if (f.tag != RW_TAG_PATCH || f.kind != RW_WK_GROUP)
			continue;
		patch_info_read(f.data, f.len, pi);
		for (int i = 0; i < a->n; i++) {
			struct target *t = &a->t[i];

			/* A replaced patch under the name loses to a live
			 * one: the name is taken by at most one of each. */
			if (strcmp(pi->name, t->pf.name) ||
			    (t->loaded && pi->state == RW_PATCH_REPLACED))
				continue;
			t->cur = *pi;
			t->loaded = true;
		}
	}
	rw_wire_msg_free(&m);
	free(pi);
	return 0;
}

/* Whether the loaded patch is the file of @t. */
static bool same_build(const struct target *t)
{
	if (*t->cur.file_id)
		return !strcmp(t->cur.file_id, t->pf.file_id);
	/* A server without FILE_ID: the file it loaded, by path. */
	return !strcmp(t->cur.path, t->path);
}

static void plan(struct apply *a, struct target *t)
{
	t->act = ACT_NONE;
	t->persist_act = 0;
	if (t->absent) {
		if (t->loaded) {
			switch (t->cur.state) {
			case RW_PATCH_ENABLED:
			case RW_PATCH_ENABLING:
			case RW_PATCH_DISABLING:
				t->act = ACT_DISABLE_UNLOAD;
				break;
			default:
				t->act = ACT_UNLOAD;
				break;
			}
		}
		if (a->persist && t->persisted)
			t->persist_act = -1;
		return;
	}
	if (!t->loaded)
		t->act = ACT_LOAD_ENABLE;
	else if (!same_build(t) || t->cur.state == RW_PATCH_REPLACED)
		t->act = ACT_REPLACE;
	else if (t->cur.state == RW_PATCH_LOADED ||
		 t->cur.state == RW_PATCH_DISABLED ||
		 t->cur.state == RW_PATCH_DISABLING)
		t->act = ACT_ENABLE;
	/* ENABLED: nothing; ENABLING: wait for it, nothing to send. */
	if (a->persist && !t->persisted)
		t->persist_act = 1;
}

/* ---- Doing it ------------------------------------------------------------ */

static int op(struct apply *a, uint16_t type, const char *verb,
	      struct patch_info *pi)
{
	char what[256];
	int ret = patch_op(&a->c, type, pi->name, pi);

	if (ret == EX_FAIL) {
		snprintf(what, sizeof(what), "%s %s", verb, pi->name);
		ret = conn_fail(&a->c, what);
	}
	return ret;
}

/* Brings the loaded patch @pi to DISABLED (from ENABLED, ENABLING or
 * DISABLING; other states are left). */
static int disable(struct apply *a, struct patch_info *pi)
{
	int ret;

	if (pi->state == RW_PATCH_ENABLED || pi->state == RW_PATCH_ENABLING) {
		ret = op(a, RW_MSG_PATCH_DISABLE, "disable", pi);
		if (ret)
			return ret;
	}
	if (pi->state == RW_PATCH_DISABLING)
		return patch_wait(&a->c, pi, false, 0, true);
	return 0;
}

/* ENABLE and wait. */
static int enable(struct apply *a, struct patch_info *pi)
{
	int ret = op(a, RW_MSG_PATCH_ENABLE, "enable", pi);

	if (ret)
		return ret;
	return pi->state == RW_PATCH_ENABLED
		       ? 0
		       : patch_wait(&a->c, pi, true, 0, true);
}

/* PATCH_LOAD of @path (the descriptor @fd, -1: the path), ENABLE, wait.
 * A patch that loads but cannot be enabled is unloaded again. */
static int load_enable(struct apply *a, const char *path, int fd,
		       struct patch_info *pi)
{
	struct rw_wire_msg m;
	char what[PATH_MAX + 16], warning[512], name[sizeof(pi->name)];
	int ret = patch_load(&a->c, path, fd, a->load_flags, &m);

	if (ret == EX_FAIL) {
		if (strstr(a->c.errmsg, path))
			snprintf(what, sizeof(what), "load");
		else
			snprintf(what, sizeof(what), "load %s", path);
		return conn_fail(&a->c, what);
	}
	if (ret)
		return ret;
	patch_info_read(m.payload, m.len, pi);
	if (rw_wire_find_str(m.payload, m.len, RW_TAG_MESSAGE, warning,
			     sizeof(warning)))
		msg("warning: %s", warning);
	rw_wire_msg_free(&m);
	if (!*pi->name)
		return fail(EX_PROTO, -EPROTO,
			    "process %d: PATCH_LOAD's reply has no name",
			    (int)a->c.pid);
	snprintf(name, sizeof(name), "%s", pi->name);
	ret = op(a, RW_MSG_PATCH_ENABLE, "enable", pi);
	if (ret == EX_FAIL) {
		int err = a->c.err;

		/* Leave the process as it was. */
		if (!patch_op(&a->c, RW_MSG_PATCH_UNLOAD, name, NULL))
			msg("patch %s unloaded again", name);
		else
			msg("patch %s stays loaded: unload it with `rewire "
			    "unpatch %d %s`",
			    name, (int)a->c.pid, name);
		a->c.err = err;
		return ret;
	}
	if (ret)
		return ret;
	return pi->state == RW_PATCH_ENABLED
		       ? 0
		       : patch_wait(&a->c, pi, true, 0, true);
}

static int unload(struct apply *a, struct patch_info *pi)
{
	return patch_op(&a->c, RW_MSG_PATCH_UNLOAD, pi->name, NULL) == EX_FAIL
		       ? conn_fail(&a->c, "unload")
		       : 0;
}

/*
 * Replaces the loaded @t->cur by @t's file: disable, unload, load, enable.
 * When the new build cannot be loaded or enabled, the old one is loaded
 * again from the path the process loaded it from, so that the process
 * keeps the fix it had.
 */
static int replace(struct apply *a, struct target *t)
{
	struct patch_info *old = xmalloc(sizeof(*old));
	int ret;

	*old = t->cur;
	ret = disable(a, &t->cur);
	if (!ret)
		ret = unload(a, &t->cur);
	if (ret)
		goto out;
	ret = load_enable(a, t->path, t->pf.fd, &t->cur);
	if (ret == EX_FAIL && old->state != RW_PATCH_REPLACED && *old->path) {
		struct patch_info *back = xmalloc(sizeof(*back));
		int saved = a->c.err;

		if (!load_enable(a, old->path, -1, back))
			msg("patch %s: the previous build (%s) is %s again",
			    old->name, old->path,
			    patch_state_name(back->state));
		else
			msg("patch %s: the previous build (%s) could not be "
			    "restored: the process runs without the patch",
			    old->name, old->path);
		a->c.err = saved;
		free(back);
	}
out:
	free(old);
	return ret;
}

static int do_live(struct apply *a, struct target *t)
{
	switch (t->act) {
	case ACT_NONE:
		/* Enabling already: see it through. */
		if (!t->absent && t->cur.state == RW_PATCH_ENABLING)
			return patch_wait(&a->c, &t->cur, true, 0, true);
		return 0;
	case ACT_LOAD_ENABLE:
		return load_enable(a, t->path, t->pf.fd, &t->cur);
	case ACT_ENABLE:
		if (t->cur.state == RW_PATCH_DISABLING) {
			int ret = patch_wait(&a->c, &t->cur, false, 0, true);

			if (ret)
				return ret;
		}
		return enable(a, &t->cur);
	case ACT_REPLACE:
		return replace(a, t);
	case ACT_DISABLE_UNLOAD: {
		int ret = disable(a, &t->cur);

		return ret ? ret : unload(a, &t->cur);
	}
	case ACT_UNLOAD:
		return unload(a, &t->cur);
	}
	return 0;
}

static int execute(struct apply *a)
{
	for (int i = 0; i < a->n; i++) {
		struct target *t = &a->t[i];
		uint64_t start = now_ms();
		int ret = do_live(a, t);

		t->act_ms = ms_since(start);
		if (ret)
			return ret;
		t->act_done = t->act != ACT_NONE;
		start = now_ms();
		if (t->persist_act > 0)
			ret = persist_write(a, t);
		else if (t->persist_act < 0)
			ret = persist_remove(a, t);
		t->persist_ms = ms_since(start);
		if (ret)
			return ret;
		t->persist_done = t->persist_act != 0;
	}
	return 0;
}

/* ---- Output -------------------------------------------------------------- */

/* Whether the process (or its directory) changed: an action done, or,
 * after a failure midway (a replace whose new build failed), a state
 * other than before. With --check: whether an action is planned. */
static bool changes(const struct apply *a)
{
	for (int i = 0; i < a->n; i++) {
		const struct target *t = &a->t[i];
		const char *now = t->loaded ? patch_state_name(t->cur.state)
					    : "absent";

		if (a->check ? t->act || t->persist_act
			     : t->act_done || t->persist_done ||
				       (*t->before_state &&
					(strcmp(now, t->before_state) ||
					 strcmp(t->loaded ? t->cur.file_id : "",
						t->before_id) ||
					 t->persisted != t->before_persisted)))
			return true;
	}
	return false;
}

static void state_json(struct json *j, const char *name, const char *state,
		       const char *id, bool persisted)
{
	json_obj_begin(j);
	json_kstr(j, "name", name);
	json_kstr(j, "state", state);
	json_key(j, "file_id");
	if (id && *id)
		json_str(j, id);
	else
		json_null(j);
	json_kbool(j, "persisted", persisted);
	json_obj_end(j);
}

static void action_json(struct json *j, const char *patch, const char *action,
			bool done, uint64_t ms)
{
	json_obj_begin(j);
	json_kstr(j, "patch", patch);
	json_kstr(j, "action", action);
	json_kbool(j, "done", done);
	json_ku64(j, "ms", ms);
	json_obj_end(j);
}

static void print_json(const struct apply *a, int code, const char *error)
{
	bool changed = changes(a);
	struct json j;

	json_init(&j, stdout);
	json_obj_begin(&j);
	json_ku64(&j, "pid", (uint64_t)a->c.pid);
	json_kbool(&j, "changed", changed);
	json_kbool(&j, "check", a->check);
	json_key(&j, "actions");
	json_arr_begin(&j);
	for (int i = 0; i < a->n; i++) {
		const struct target *t = &a->t[i];

		if (t->act)
			action_json(&j, t->pf.name, action_names[t->act],
				    t->act_done, t->act_ms);
		if (t->persist_act)
			action_json(&j, t->pf.name,
				    t->persist_act > 0 ? "persist"
						       : "unpersist",
				    t->persist_done, t->persist_ms);
	}
	json_arr_end(&j);
	json_key(&j, "before");
	json_arr_begin(&j);
	for (int i = 0; i < a->n; i++) {
		const struct target *t = &a->t[i];

		state_json(&j, t->pf.name, t->before_state, t->before_id,
			   t->before_persisted);
	}
	json_arr_end(&j);
	json_key(&j, "after");
	json_arr_begin(&j);
	for (int i = 0; i < a->n; i++) {
		const struct target *t = &a->t[i];

		if (a->check) /* what it would be */
			state_json(&j, t->pf.name,
				   t->absent ? "absent" : "enabled",
				   t->absent ? NULL : t->pf.file_id,
				   t->persist_act ? t->persist_act > 0
						  : t->persisted);
		else
			state_json(&j, t->pf.name,
				   t->loaded ? patch_state_name(t->cur.state)
					     : "absent",
				   t->loaded ? t->cur.file_id : NULL,
				   t->persisted);
	}
	json_arr_end(&j);
	json_key(&j, "patch_dir");
	if (*a->c.patch_dir)
		json_str(&j, a->c.patch_dir);
	else
		json_null(&j);
	if (code) {
		json_ki64(&j, "exit", code);
		json_kstr(&j, "error", error);
	}
	json_obj_end(&j);
	json_done(&j);
}

/* "PID COMM changed: load+enable fix_value" /
 * "PID COMM unchanged: fix_value enabled". */
static void print_text(const struct apply *a)
{
	bool changed = changes(a);
	char comm[64];
	const char *sep = "";

	thread_comm(a->c.pid, a->c.pid, comm, sizeof(comm));
	printf("%d %s %s:", (int)a->c.pid, comm,
	       !changed	  ? "unchanged"
	       : a->check ? "would-change"
			  : "changed");
	for (int i = 0; i < a->n; i++) {
		const struct target *t = &a->t[i];
		bool act = a->check ? t->act : t->act_done;
		bool pact = a->check ? t->persist_act : t->persist_done;

		if (!changed) {
			printf("%s %s %s", sep, t->pf.name,
			       t->loaded ? patch_state_name(t->cur.state)
					 : "absent");
			sep = ",";
			continue;
		}
		if (act) {
			printf("%s %s %s", sep, action_names[t->act],
			       t->pf.name);
			sep = ",";
		}
		if (pact) {
			printf("%s %s %s", sep,
			       t->persist_act > 0 ? "persist" : "unpersist",
			       t->pf.name);
			sep = ",";
		}
	}
	putchar('\n');
	fflush(stdout);
}

/* ---- The command --------------------------------------------------------- */

static int prepare(struct apply *a, struct optv *v)
{
	for (int i = 0; i < a->n; i++) {
		struct target *t = &a->t[i];
		const char *arg = v->pos[i + 1];
		int ret;

		t->arg = arg;
		t->absent = v->set[OPT_ABSENT];
		t->pf.fd = -1;
		if (t->absent && !is_file_arg(arg)) {
			if (strlen(arg) >= sizeof(t->pf.name))
				return usage_error("patch name '%.40s...' is "
						   "too long",
						   arg);
			snprintf(t->pf.name, sizeof(t->pf.name), "%s", arg);
		} else {
			if (!realpath(arg, t->path))
				return fail(EX_FAIL, -errno,
					    "patch file %s: %s", arg,
					    strerror(errno));
			ret = patchfile_open(&t->pf, t->path);
			if (ret)
				return ret;
		}
		for (int k = 0; k < i; k++)
			if (!strcmp(a->t[k].pf.name, t->pf.name))
				return usage_error("patch %s is named twice "
						   "(%s and %s)",
						   t->pf.name, a->t[k].arg,
						   arg);
	}
	return 0;
}

int cmd_apply(int argc, char **argv)
{
	struct apply a = { .dfd = -1 };
	struct optv v;
	uint64_t timeout_ms;
	pid_t pid;
	int ret = opts_parse(argc, argv, apply_opts, &v, false);

	a.c.fd = -1;
	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.npos < 2)
		return usage_error(v.set[OPT_ABSENT]
					   ? "expected PID --absent NAME..."
					   : "expected PID PATCH.so...");
	if (!parse_pid(v.pos[0], &pid))
		return usage_error("'%s' is not a process id", v.pos[0]);
	ret = patch_timeout(v.set[OPT_TIMEOUT] ? v.arg[OPT_TIMEOUT] : NULL,
			    &timeout_ms);
	if (ret)
		return ret;
	a.check = v.set[OPT_CHECK];
	a.persist = v.set[OPT_PERSIST];
	a.load_flags = v.set[OPT_ALLOW_INLINED] ? RW_PATCH_LOAD_ALLOW_INLINED
						: 0;
	a.n = v.npos - 1;
	a.t = xmalloc(sizeof(*a.t) * (size_t)a.n);
	memset(a.t, 0, sizeof(*a.t) * (size_t)a.n);
	for (int i = 0; i < a.n; i++)
		a.t[i].pf.fd = -1;
	ret = prepare(&a, &v);
	if (ret)
		goto out;

	ret = conn_open_until(pid, &a.c,
			      timeout_ms ? now_ms() + timeout_ms : 0);
	if (ret)
		goto out;
	/* From here on the document is printed whatever happens, with the
	 * error in it: the error object of fail() would be a second one. */
	if (g.json)
		g.json_reported = 1;
	ret = read_loaded(&a);
	if (ret)
		goto report;
	for (int i = 0; i < a.n; i++) {
		struct target *t = &a.t[i];

		snprintf(t->before_state, sizeof(t->before_state), "%s",
			 t->loaded ? patch_state_name(t->cur.state) : "absent");
		snprintf(t->before_id, sizeof(t->before_id), "%s",
			 t->loaded ? t->cur.file_id : "");
	}
	if (a.persist) {
		if (!*a.c.patch_dir) {
			ret = fail(EX_FAIL, -ENOENT,
				   "--persist: process %d has no patch "
				   "directory: start it with "
				   "REWIRE_PATCH_DIR=DIR in its environment "
				   "(or `rewire run --patch-dir DIR`); "
				   "nothing was changed",
				   (int)pid);
			goto report;
		}
		a.dfd = open_patch_dir(&a.c, a.dir_shown, sizeof(a.dir_shown));
		if (a.dfd < 0) {
			ret = fail(EX_FAIL, a.dfd,
				   "--persist: the patch directory of process "
				   "%d, %s: %s; nothing was changed",
				   (int)pid, a.dir_shown, strerror(-a.dfd));
			goto report;
		}
	}
	for (int i = 0; i < a.n; i++) {
		struct target *t = &a.t[i];

		t->persisted = persisted_now(&a, t);
		t->before_persisted = t->persisted;
		plan(&a, t);
	}
	if (!a.check) {
		ret = execute(&a);
		/* What the process has now: the truth, not the plan. */
		if (a.c.fd >= 0 && !read_loaded(&a))
			for (int i = 0; i < a.n; i++)
				a.t[i].persisted = persisted_now(&a, &a.t[i]);
	}
report:
	if (g.json)
		print_json(&a, ret, g.last_error);
	else if (!ret)
		print_text(&a);
out:
	for (int i = 0; a.t && i < a.n; i++)
		patchfile_close(&a.t[i].pf);
	free(a.t);
	if (a.dfd >= 0)
		close(a.dfd);
	conn_close(&a.c);
	return ret;
}
