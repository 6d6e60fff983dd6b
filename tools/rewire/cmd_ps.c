// SPDX-License-Identifier: MIT
/*
 * rewire ps: the rewire-enabled processes this command can see, in our
 * namespaces or in others (containers), each asked HELLO and LS: what is
 * applied (patches), traced (trace sessions) and changed (keys that are
 * not in their default state).
 *
 * The processes come from procs_scan() (procs.c): every process of /proc
 * whose socket conn_locate() finds, and the processes of other users,
 * which are listed as denied (never connected to) when /proc/net/unix
 * shows a socket of theirs. Each server must prove it is the process its
 * socket names (conn.c, SO_PEERCRED): one that does not is listed as
 * denied, with the reason; a socket where nobody listens as stale.
 *
 * The sockets of processes that are gone (one that ended with _exit() or
 * a signal, e.g. a daemon's parent) are found in the control directories
 * of this command's environment (as root: every user's, /tmp/rewire-*,
 * /run/user/UID/rewire); they are not listed but counted, and removed with
 * --clean, as are stale sockets.
 *
 * The processes are asked one after the other, each within a short
 * timeout (PS_CONNECT_MS, PS_HELLO_MS, PS_LS_MS): a process that does not
 * answer costs at most those and is listed as no-answer.
 */
#include "rewire.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rewire/livepatch.h>

#define PS_CONNECT_MS 1000
#define PS_HELLO_MS 1000
#define PS_LS_MS 2000

enum { OPT_CLEAN = 10 };
static const struct opt ps_opts[] = {
	{ "clean", 0, false, OPT_CLEAN },
	{ NULL, 0, false, 0 },
};

#define NAME_MAX_LEN 256

struct ps_patch {
	char name[NAME_MAX_LEN];
	char path[4096];
	char file_id[128];
	uint64_t state;
	bool from_dir;
};

struct ps_trace {
	uint64_t session, owner, since_ns;
	bool overwrite;
	char kind[32];
	char *names; /* comma-separated, malloc'd */
	char *patterns;
};

struct ps_key {
	char name[NAME_MAX_LEN];
	char object[512];
	bool enabled, initial;
};

struct ps_entry {
	struct proc_entry p;
	const char *status;
	char user[64];
	char container[80];
	char program[4096];
	char cmdline[4096];
	char version[64];
	char note[RW_WIRE_MAX_STR + 8];
	bool removed;
	bool listed; /* LS answered */
	struct ps_patch *patches;
	size_t npatches;
	struct ps_trace *traces;
	size_t ntraces;
	struct ps_key *keys; /* changed from their default */
	size_t nkeys;
};

struct dirlist {
	char **d;
	size_t n;
};

static void dir_add(struct dirlist *l, const char *dir)
{
	char real[4096];
	const char *d = realpath(dir, real) ? real : dir;

	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->d[i], d))
			return;
	l->d = xrealloc(l->d, sizeof(char *) * (l->n + 1));
	l->d[l->n++] = xasprintf("%s", d);
}

static void dir_glob(struct dirlist *l, const char *pattern)
{
	glob_t gl;

	if (glob(pattern, GLOB_NOSORT | GLOB_ONLYDIR, NULL, &gl))
		return;
	for (size_t i = 0; i < gl.gl_pathc; i++)
		dir_add(l, gl.gl_pathv[i]);
	globfree(&gl);
}

static void user_of(uid_t uid, char *out, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw && pw->pw_name)
		snprintf(out, size, "%s", pw->pw_name);
	else
		snprintf(out, size, "%u", (unsigned)uid);
}

/*
 * The container of a process in other namespaces: the short id (12 hex
 * digits) of a container engine's cgroup (docker, containerd, podman,
 * systemd-nspawn's machine-NAME.scope) when its cgroup differs from ours,
 * else its root as seen from here (/proc/PID/root).
 */
static void container_of(const struct ctl_where *w, char *out, size_t size)
{
	char path[64], line[1024], self[1024] = "";
	FILE *f;

	snprintf(out, size, "%s", w->root);
	f = fopen("/proc/self/cgroup", "re");
	if (f) {
		if (!fgets(self, sizeof(self), f))
			self[0] = '\0';
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)w->pid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f) && strcmp(line, self)) {
		/* The longest run of hex digits of 64: an engine's id. */
		for (const char *p = line; *p; p++) {
			size_t n = strspn(p, "0123456789abcdef");

			if (n == 64) {
				snprintf(out, size, "%.12s", p);
				break;
			}
			if (!strncmp(p, "machine-", 8)) {
				const char *e = strstr(p, ".scope");

				if (e) {
					snprintf(out, size, "%.*s",
						 (int)(e - p - 8), p + 8);
					break;
				}
			}
			p += n ? n - 1 : 0;
		}
	}
	fclose(f);
}

static char *list_add(char *list, const char *s)
{
	char *n = xasprintf("%s%s%s", list ? list : "", list ? "," : "", s);

	free(list);
	return n;
}

static void read_patch(struct ps_entry *e, const struct rw_wire_field *grp)
{
	struct ps_patch *p;
	uint64_t v = 0;

	e->patches = xrealloc(e->patches, sizeof(*p) * (e->npatches + 1));
	p = &e->patches[e->npatches++];
	memset(p, 0, sizeof(*p));
	rw_wire_find_str(grp->data, grp->len, RW_TAG_NAME, p->name,
			 sizeof(p->name));
	rw_wire_find_str(grp->data, grp->len, RW_TAG_PATH, p->path,
			 sizeof(p->path));
	rw_wire_find_str(grp->data, grp->len, RW_TAG_FILE_ID, p->file_id,
			 sizeof(p->file_id));
	rw_wire_find_u64(grp->data, grp->len, RW_TAG_STATE, &p->state);
	p->from_dir =
		rw_wire_find_u64(grp->data, grp->len, RW_TAG_FROM_DIR, &v) && v;
}

static void read_trace(struct ps_entry *e, const struct rw_wire_field *grp)
{
	char s[RW_WIRE_MAX_STR + 1];
	struct rw_wire_iter it;
	struct rw_wire_field f;
	struct ps_trace *t;
	uint64_t v = 0;

	e->traces = xrealloc(e->traces, sizeof(*t) * (e->ntraces + 1));
	t = &e->traces[e->ntraces++];
	memset(t, 0, sizeof(*t));
	rw_wire_find_u64(grp->data, grp->len, RW_TAG_SESSION, &t->session);
	rw_wire_find_u64(grp->data, grp->len, RW_TAG_OWNER, &t->owner);
	rw_wire_find_u64(grp->data, grp->len, RW_TAG_SINCE_NS, &t->since_ns);
	t->overwrite =
		rw_wire_find_u64(grp->data, grp->len, RW_TAG_OVERWRITE, &v) &&
		v;
	if (!rw_wire_find_str(grp->data, grp->len, RW_TAG_KIND, t->kind,
			      sizeof(t->kind)))
		snprintf(t->kind, sizeof(t->kind), "trace");
	rw_wire_iter_group(&it, grp);
	while (rw_wire_next(&it, &f)) {
		if ((f.tag != RW_TAG_NAME && f.tag != RW_TAG_PATTERN) ||
		    !rw_wire_get_str(&f, s, sizeof(s)))
			continue;
		if (f.tag == RW_TAG_NAME)
			t->names = list_add(t->names, s);
		else
			t->patterns = list_add(t->patterns, s);
	}
}

static void read_key(struct ps_entry *e, const struct rw_wire_field *grp)
{
	uint64_t enabled = 0, initial = 0;
	struct ps_key *k;

	rw_wire_find_u64(grp->data, grp->len, RW_TAG_ENABLED, &enabled);
	rw_wire_find_u64(grp->data, grp->len, RW_TAG_INITIAL, &initial);
	if (!enabled == !initial)
		return;
	e->keys = xrealloc(e->keys, sizeof(*k) * (e->nkeys + 1));
	k = &e->keys[e->nkeys++];
	memset(k, 0, sizeof(*k));
	rw_wire_find_str(grp->data, grp->len, RW_TAG_NAME, k->name,
			 sizeof(k->name));
	rw_wire_find_str(grp->data, grp->len, RW_TAG_OBJECT, k->object,
			 sizeof(k->object));
	k->enabled = enabled;
	k->initial = initial;
}

/* One LS, quietly (nothing printed: a failure is only a note). */
static void list(struct ps_entry *e, struct conn *c)
{
	struct rw_wire_msg m = { .fd = -1 };
	struct rw_wire_iter it;
	struct rw_wire_field f;
	int ret;

	conn_begin(c, RW_MSG_LS);
	ret = rw_wire_finish(&c->buf);
	if (!ret)
		ret = rw_wire_send(c->fd, &c->buf, -1);
	if (!ret)
		ret = rw_wire_recv(c->fd, &m, PS_LS_MS);
	if (ret || m.type != RW_MSG_OK) {
		if (!ret) {
			ret = -EPROTO;
			rw_wire_find_str(m.payload, m.len, RW_TAG_MESSAGE,
					 c->errmsg, sizeof(c->errmsg));
		}
		snprintf(e->note, sizeof(e->note), "(LS: %s)",
			 ret == -EPROTO && *c->errmsg ? c->errmsg
						      : err_desc(ret));
		if (ret == -ETIMEDOUT)
			e->status = "no-answer";
		rw_wire_msg_free(&m);
		return;
	}
	e->listed = true;
	rw_wire_iter_init(&it, m.payload, m.len);
	while (rw_wire_next(&it, &f)) {
		if (f.kind != RW_WK_GROUP)
			continue;
		if (f.tag == RW_TAG_PATCH)
			read_patch(e, &f);
		else if (f.tag == RW_TAG_TRACE_SESSION)
			read_trace(e, &f);
		else if (f.tag == RW_TAG_KEY)
			read_key(e, &f);
	}
	rw_wire_msg_free(&m);
}

/* The status of @e after conn_open_quiet or conn_connect returned @ret on
 * @c: "ok" (then HELLO's fields and LS), or the one that says why not,
 * @otherwise when no other applies. Closes and frees @c. */
static void probe_end(struct ps_entry *e, struct conn *c, int ret,
		      const char *otherwise)
{
	if (!ret) {
		e->status = "ok";
		snprintf(e->program, sizeof(e->program), "%s", c->program);
		snprintf(e->cmdline, sizeof(e->cmdline), "%s", c->cmdline);
		snprintf(e->version, sizeof(e->version), "%s", c->libversion);
		list(e, c);
	} else if (c->err == -ECONNREFUSED || c->err == -ESRCH) {
		e->status = "stale";
		snprintf(e->note, sizeof(e->note), "%s",
			 proc_exists(e->p.w.pid) ? "(not listening)"
						 : "(process gone)");
	} else if (c->err == -ETIMEDOUT || c->err == -EAGAIN) {
		e->status = "no-answer";
		snprintf(e->note, sizeof(e->note), "(%s)", c->errmsg);
	} else if (c->err == -EACCES || c->err == -EPERM ||
		   (ret == EX_NOPROC && c->err != -ENOENT)) {
		e->status = "denied";
		snprintf(e->note, sizeof(e->note), "(%s)", c->errmsg);
	} else {
		e->status = otherwise;
		snprintf(e->note, sizeof(e->note), "(%s)", c->errmsg);
	}
	conn_close(c);
	free(c);
}

/* HELLO and LS, or the status that says why not. */
static void probe(struct ps_entry *e)
{
	struct conn *c = xmalloc(sizeof(*c));

	probe_end(e, c,
		  conn_open_quiet(e->p.w.pid, c, PS_CONNECT_MS, PS_HELLO_MS),
		  "error");
}

/* A socket of a live process that procs_scan did not attribute to it
 * (another process answers there, or a leftover): asked HELLO on its
 * path, as before processes were scanned. */
static void probe_path(struct ps_entry *e)
{
	struct conn *c = xmalloc(sizeof(*c));

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->pid = e->p.w.pid;
	c->uid = e->p.w.uid;
	c->quiet = true;
	snprintf(c->sock, sizeof(c->sock), "%s", e->p.w.sock);
	probe_end(e, c, conn_connect(c, PS_CONNECT_MS, PS_HELLO_MS), "denied");
}

static int entry_cmp(const void *a, const void *b)
{
	const struct ps_entry *x = a, *y = b;

	return (x->p.w.pid > y->p.w.pid) - (x->p.w.pid < y->p.w.pid);
}

static const char *patch_cell(const struct ps_entry *e)
{
	char *s = NULL;

	for (size_t i = 0; i < e->npatches; i++) {
		char *n = xasprintf("%s%s%s[%s]", s ? s : "", s ? "," : "",
				    e->patches[i].name,
				    patch_state_name(e->patches[i].state));

		free(s);
		s = n;
	}
	return s;
}

static const char *trace_cell(const struct ps_entry *e)
{
	char *kinds = NULL, *s;

	if (!e->ntraces)
		return NULL;
	for (size_t i = 0; i < e->ntraces; i++) {
		bool dup = false;

		for (size_t k = 0; k < i; k++)
			dup |= !strcmp(e->traces[k].kind, e->traces[i].kind);
		if (!dup)
			kinds = list_add(kinds, e->traces[i].kind);
	}
	s = xasprintf("%zu:%s", e->ntraces, kinds);
	free(kinds);
	return s;
}

static const char *key_cell(const struct ps_entry *e)
{
	char *s = NULL;

	for (size_t i = 0; i < e->nkeys; i++) {
		char *n = xasprintf("%s%s%s=%s", s ? s : "", s ? "," : "",
				    e->keys[i].name,
				    e->keys[i].enabled ? "on" : "off");

		free(s);
		s = n;
	}
	return s;
}

static void json_entry(struct json *j, const struct ps_entry *e)
{
	const struct ctl_where *w = &e->p.w;

	json_obj_begin(j);
	json_ku64(j, "pid", (uint64_t)w->pid);
	json_ku64(j, "nspid", (uint64_t)w->nspid);
	json_ku64(j, "uid", (uint64_t)w->uid);
	json_kstr(j, "user", e->user);
	json_kstr(j, "status", e->status);
	json_kstr(j, "comm", e->p.comm);
	json_kstr(j, "exe", e->p.exe);
	json_kbool(j, "other_ns", w->other_ns);
	json_key(j, "container");
	if (*e->container)
		json_str(j, e->container);
	else
		json_null(j);
	json_kstr(j, "root", w->root);
	json_kstr(j, "socket", w->sock);
	json_kstr(j, "socket_dir", w->dir);
	json_kstr(j, "program", e->program);
	json_kstr(j, "cmdline", e->cmdline);
	json_kstr(j, "version", e->version);
	if (*e->note)
		json_kstr(j, "note", e->note);
	json_kbool(j, "listed", e->listed);
	json_key(j, "patches");
	json_arr_begin(j);
	for (size_t i = 0; i < e->npatches; i++) {
		const struct ps_patch *p = &e->patches[i];

		json_obj_begin(j);
		json_kstr(j, "name", p->name);
		json_kstr(j, "state", patch_state_name(p->state));
		json_kstr(j, "path", p->path);
		json_key(j, "file_id");
		if (*p->file_id)
			json_str(j, p->file_id);
		else
			json_null(j);
		json_kbool(j, "from_dir", p->from_dir);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_key(j, "traces");
	json_arr_begin(j);
	for (size_t i = 0; i < e->ntraces; i++) {
		const struct ps_trace *t = &e->traces[i];
		const char *lists[2] = { t->names, t->patterns };
		const char *keys[2] = { "tracepoints", "patterns" };

		json_obj_begin(j);
		json_ku64(j, "session", t->session);
		json_ku64(j, "owner", t->owner);
		json_kstr(j, "kind", t->kind);
		json_kbool(j, "overwrite", t->overwrite);
		json_ku64(j, "since_ns", t->since_ns);
		for (int l = 0; l < 2; l++) {
			const char *p = lists[l];

			json_key(j, keys[l]);
			json_arr_begin(j);
			while (p && *p) {
				size_t n = strcspn(p, ",");

				json_strn(j, p, n);
				p += n + (p[n] == ',');
			}
			json_arr_end(j);
		}
		json_obj_end(j);
	}
	json_arr_end(j);
	json_key(j, "keys_changed");
	json_arr_begin(j);
	for (size_t i = 0; i < e->nkeys; i++) {
		json_obj_begin(j);
		json_kstr(j, "name", e->keys[i].name);
		json_kstr(j, "object", e->keys[i].object);
		json_kbool(j, "enabled", e->keys[i].enabled);
		json_kbool(j, "default", e->keys[i].initial);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void entry_free(struct ps_entry *e)
{
	for (size_t i = 0; i < e->ntraces; i++) {
		free(e->traces[i].names);
		free(e->traces[i].patterns);
	}
	free(e->traces);
	free(e->patches);
	free(e->keys);
}

/* Whether @sock (a path from here) is the socket of an entry. */
static bool sock_known(const struct ps_entry *ents, size_t n, const char *dir,
		       const char *name)
{
	char real[4096], path[8200];

	for (size_t i = 0; i < n; i++) {
		const struct ctl_where *w = &ents[i].p.w;
		char *slash;

		if (!*w->sock)
			continue;
		snprintf(path, sizeof(path), "%s", w->sock);
		slash = strrchr(path, '/');
		if (!slash || strcmp(slash + 1, name))
			continue;
		*slash = '\0';
		if (!strcmp(path, dir) ||
		    (realpath(path, real) && !strcmp(real, dir)))
			return true;
	}
	return false;
}

int cmd_ps(int argc, char **argv)
{
	struct optv v;
	struct dirlist dirs = { 0 };
	struct proc_entry *procs = NULL;
	struct ps_entry *ents = NULL;
	size_t n = 0, nprocs, nexited = 0, nremoved_exited = 0;
	char **exited = NULL;
	bool *exited_removed = NULL;
	char dir[4096];
	int ret = opts_parse(argc, argv, ps_opts, &v, false);

	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.npos)
		return usage_error("unexpected argument '%s'", v.pos[0]);

	nprocs = procs_scan(&procs);
	ents = xmalloc(sizeof(*ents) * (nprocs + 1));
	for (size_t i = 0; i < nprocs; i++) {
		struct ps_entry *e = &ents[n++];

		memset(e, 0, sizeof(*e));
		e->p = procs[i];
		if (e->p.state == PROC_DENIED) {
			e->status = "denied";
			snprintf(e->note, sizeof(e->note), "(%s)", e->p.why);
		}
	}
	free(procs);

	/* The sockets left by processes that are gone, and those that no
	 * process owns, in the directories of this command's environment. */
	if (!sockdir_for(geteuid(), getenv("REWIRE_CTL_DIR"), dir, sizeof(dir)))
		dir_add(&dirs, dir);
	if (!sockdir_for(geteuid(), NULL, dir, sizeof(dir)))
		dir_add(&dirs, dir);
	if (geteuid() == 0) {
		dir_glob(&dirs, "/tmp/rewire-*");
		dir_glob(&dirs, "/run/user/*/rewire");
	}
	for (size_t i = 0; i < dirs.n; i++) {
		DIR *d = opendir(dirs.d[i]);
		struct dirent *de;

		if (!d)
			continue;
		while ((de = readdir(d))) {
			struct ps_entry *e;
			struct stat st;
			char *end, sock[4096];
			long pid;

			errno = 0;
			pid = strtol(de->d_name, &end, 10);
			if (errno || pid <= 0 || end == de->d_name ||
			    strcmp(end, ".sock"))
				continue;
			if (snprintf(sock, sizeof(sock), "%s/%s", dirs.d[i],
				     de->d_name) >= (int)sizeof(sock))
				continue;
			if (lstat(sock, &st) || !S_ISSOCK(st.st_mode))
				continue;
			if (sock_known(ents, n, dirs.d[i], de->d_name))
				continue;
			if (!proc_exists((pid_t)pid)) {
				/* Its process is gone: not listed. */
				size_t k = nexited + nremoved_exited;
				bool rm = v.set[OPT_CLEAN] && !unlink(sock);

				exited = xrealloc(exited,
						  sizeof(*exited) * (k + 1));
				exited_removed = xrealloc(
					exited_removed,
					sizeof(*exited_removed) * (k + 1));
				exited[k] = xasprintf("%s", sock);
				exited_removed[k] = rm;
				if (rm)
					nremoved_exited++;
				else
					nexited++;
				if (rm && !g.quiet && !g.json)
					msg("removed stale socket %s (process "
					    "gone)",
					    sock);
				continue;
			}
			/* A live process's socket that is not where its
			 * process's rules put it: asked on its path. */
			ents = xrealloc(ents, sizeof(*ents) * (n + 1));
			e = &ents[n++];
			memset(e, 0, sizeof(*e));
			e->p.w.pid = e->p.w.nspid = (pid_t)pid;
			e->p.w.uid = st.st_uid;
			snprintf(e->p.w.sock, sizeof(e->p.w.sock), "%s", sock);
			snprintf(e->p.w.dir, sizeof(e->p.w.dir), "%s",
				 dirs.d[i]);
			e->p.state = PROC_NOSOCK; /* not procs_scan's */
			thread_comm((pid_t)pid, (pid_t)pid, e->p.comm,
				    sizeof(e->p.comm));
		}
		closedir(d);
	}
	qsort(ents, n, sizeof(*ents), entry_cmp);

	for (size_t i = 0; i < n; i++) {
		struct ps_entry *e = &ents[i];

		user_of(e->p.w.uid, e->user, sizeof(e->user));
		if (e->p.w.other_ns)
			container_of(&e->p.w, e->container,
				     sizeof(e->container));
		if (e->p.state == PROC_OK)
			probe(e);
		else if (e->p.state == PROC_NOSOCK)
			probe_path(e);
		if (v.set[OPT_CLEAN] && !strcmp(e->status, "stale") &&
		    *e->p.w.sock) {
			if (!unlink(e->p.w.sock)) {
				e->removed = true;
				if (!g.quiet && !g.json)
					msg("removed stale socket %s",
					    e->p.w.sock);
			} else {
				msg("cannot remove %s: %s", e->p.w.sock,
				    strerror(errno));
			}
		}
	}

	if (g.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_key(&j, "processes");
		json_arr_begin(&j);
		for (size_t i = 0; i < n; i++)
			if (!ents[i].removed)
				json_entry(&j, &ents[i]);
		json_arr_end(&j);
		json_key(&j, "removed");
		json_arr_begin(&j);
		for (size_t i = 0; i < n; i++)
			if (ents[i].removed)
				json_str(&j, ents[i].p.w.sock);
		for (size_t i = 0; i < nexited + nremoved_exited; i++)
			if (exited_removed[i])
				json_str(&j, exited[i]);
		json_arr_end(&j);
		/* Sockets of processes that are gone, left in place. */
		json_key(&j, "exited");
		json_arr_begin(&j);
		for (size_t i = 0; i < nexited + nremoved_exited; i++)
			if (!exited_removed[i])
				json_str(&j, exited[i]);
		json_arr_end(&j);
		json_obj_end(&j);
		json_done(&j);
	} else {
		static const char *head[] = { "PID",	 "NSPID",  "USER",
					      "STATUS",	 "COMM",   "CONTAINER",
					      "PATCHES", "TRACES", "KEYS",
					      "VERSION", "PROGRAM" };
		struct table t;
		size_t shown = 0;

		table_init(&t, 11, head);
		for (size_t i = 0; i < n; i++) {
			struct ps_entry *e = &ents[i];
			char pid[16], nspid[16];
			const char *cells[11];
			char *own[3];

			if (e->removed)
				continue;
			snprintf(pid, sizeof(pid), "%d", (int)e->p.w.pid);
			snprintf(nspid, sizeof(nspid), "%d", (int)e->p.w.nspid);
			own[0] = (char *)patch_cell(e);
			own[1] = (char *)trace_cell(e);
			own[2] = (char *)key_cell(e);
			cells[0] = pid;
			cells[1] = e->p.w.nspid != e->p.w.pid ? nspid : NULL;
			cells[2] = e->user;
			cells[3] = e->status;
			cells[4] = *e->p.comm ? e->p.comm : NULL;
			cells[5] = *e->container ? e->container : NULL;
			cells[6] = own[0];
			cells[7] = own[1];
			cells[8] = own[2];
			cells[9] = *e->version ? e->version : NULL;
			cells[10] = *e->program ? e->program : e->note;
			table_add(&t, cells);
			for (int k = 0; k < 3; k++)
				free(own[k]);
			shown++;
		}
		table_print(&t, stdout);
		if (nexited && !g.quiet)
			msg("%zu socket%s of exited processes ignored (`rewire "
			    "ps --clean` removes %s)",
			    nexited, nexited == 1 ? "" : "s",
			    nexited == 1 ? "it" : "them");
		if (!shown && !g.quiet) {
			char *all = xasprintf("%s", "");

			for (size_t i = 0; i < dirs.n; i++) {
				char *nx = xasprintf("%s%s%s", all,
						     i ? ", " : "", dirs.d[i]);

				free(all);
				all = nx;
			}
			msg("no controllable process (looked at every process, "
			    "and in %s)",
			    all);
			free(all);
		}
	}
	for (size_t i = 0; i < dirs.n; i++)
		free(dirs.d[i]);
	free(dirs.d);
	for (size_t i = 0; i < n; i++)
		entry_free(&ents[i]);
	free(ents);
	for (size_t i = 0; i < nexited + nremoved_exited; i++)
		free(exited[i]);
	free(exited);
	free(exited_removed);
	return EX_OK;
}
