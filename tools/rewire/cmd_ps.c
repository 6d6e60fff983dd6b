// SPDX-License-Identifier: MIT
/*
 * rewire ps: the control sockets this user can reach, each asked HELLO.
 * As root: every user's directories (/tmp/rewire-*, /run/user/UID/rewire)
 * as well as $REWIRE_CTL_DIR and root's own.
 *
 * Only live processes are listed: the socket of a process that is gone
 * (one that ended with _exit() or a signal, e.g. a daemon's parent) is
 * ignored and counted, and removed with --clean. A socket of a live
 * process where nobody listens is listed as stale. Each server must prove
 * it is the process its socket names (conn.c, SO_PEERCRED): one that
 * does not is listed as denied, with the reason.
 */
#include "rewire.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PS_CONNECT_MS 1000
#define PS_HELLO_MS 1000

enum { OPT_CLEAN = 10 };
static const struct opt ps_opts[] = {
	{ "clean", 0, false, OPT_CLEAN },
	{ NULL, 0, false, 0 },
};

struct ps_entry {
	pid_t pid;
	uid_t uid;
	char sock[108];
	const char *status;
	char program[4096];
	char cmdline[4096];
	char version[64];
	char note[RW_WIRE_MAX_STR + 8];
	bool removed;
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

static int entry_cmp(const void *a, const void *b)
{
	const struct ps_entry *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

static void probe(struct ps_entry *e)
{
	struct conn c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	c.pid = e->pid;
	c.uid = e->uid;
	c.quiet = true;
	snprintf(c.sock, sizeof(c.sock), "%s", e->sock);
	ret = conn_connect(&c, PS_CONNECT_MS, PS_HELLO_MS);
	if (!ret) {
		e->status = "ok";
		snprintf(e->program, sizeof(e->program), "%s", c.program);
		snprintf(e->cmdline, sizeof(e->cmdline), "%s", c.cmdline);
		snprintf(e->version, sizeof(e->version), "%s", c.libversion);
	} else if (c.err == -ECONNREFUSED || c.err == -ESRCH) {
		e->status = "stale";
		snprintf(e->note, sizeof(e->note), "%s",
			 proc_exists(e->pid) ? "(not listening)"
					     : "(process gone)");
	} else if (c.err == -EACCES || c.err == -EPERM ||
		   (ret == EX_NOPROC && c.err != -ETIMEDOUT &&
		    c.err != -EAGAIN && c.err != -ENOENT)) {
		e->status = "denied";
		snprintf(e->note, sizeof(e->note), "(%s)", c.errmsg);
	} else if (c.err == -ETIMEDOUT || c.err == -EAGAIN) {
		e->status = "no-answer";
		snprintf(e->note, sizeof(e->note), "(%s)", c.errmsg);
	} else {
		e->status = "error";
		snprintf(e->note, sizeof(e->note), "(%s)", c.errmsg);
	}
	conn_close(&c);
}

int cmd_ps(int argc, char **argv)
{
	struct optv v;
	struct dirlist dirs = { 0 };
	struct ps_entry *ents = NULL;
	size_t n = 0, nexited = 0, nremoved_exited = 0;
	char **exited = NULL;
	bool *exited_removed = NULL;
	char dir[4096];
	int ret = opts_parse(argc, argv, ps_opts, &v, false);

	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.npos)
		return usage_error("unexpected argument '%s'", v.pos[0]);

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
			char *end;
			long pid;

			errno = 0;
			pid = strtol(de->d_name, &end, 10);
			if (errno || pid <= 0 || end == de->d_name ||
			    strcmp(end, ".sock"))
				continue;
			ents = xrealloc(ents, sizeof(*ents) * (n + 1));
			e = &ents[n];
			memset(e, 0, sizeof(*e));
			e->pid = (pid_t)pid;
			if (snprintf(e->sock, sizeof(e->sock), "%s/%s",
				     dirs.d[i],
				     de->d_name) >= (int)sizeof(e->sock))
				continue;
			if (lstat(e->sock, &st) || !S_ISSOCK(st.st_mode))
				continue;
			if (!proc_exists(e->pid)) {
				/* Its process is gone: not listed. */
				size_t k = nexited + nremoved_exited;
				bool rm = v.set[OPT_CLEAN] && !unlink(e->sock);

				exited = xrealloc(exited,
						  sizeof(*exited) * (k + 1));
				exited_removed = xrealloc(
					exited_removed,
					sizeof(*exited_removed) * (k + 1));
				exited[k] = xasprintf("%s", e->sock);
				exited_removed[k] = rm;
				if (rm)
					nremoved_exited++;
				else
					nexited++;
				if (rm && !g.quiet && !g.json)
					msg("removed stale socket %s (process "
					    "gone)",
					    e->sock);
				continue;
			}
			e->uid = st.st_uid;
			n++;
		}
		closedir(d);
	}
	qsort(ents, n, sizeof(*ents), entry_cmp);
	for (size_t i = 0; i < n; i++) {
		probe(&ents[i]);
		if (v.set[OPT_CLEAN] && !strcmp(ents[i].status, "stale")) {
			if (!unlink(ents[i].sock)) {
				ents[i].removed = true;
				if (!g.quiet && !g.json)
					msg("removed stale socket %s",
					    ents[i].sock);
			} else {
				msg("cannot remove %s: %s", ents[i].sock,
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
		for (size_t i = 0; i < n; i++) {
			struct ps_entry *e = &ents[i];

			if (e->removed)
				continue;
			json_obj_begin(&j);
			json_ku64(&j, "pid", (uint64_t)e->pid);
			json_ku64(&j, "uid", (uint64_t)e->uid);
			json_kstr(&j, "status", e->status);
			json_kstr(&j, "socket", e->sock);
			json_kstr(&j, "program", e->program);
			json_kstr(&j, "cmdline", e->cmdline);
			json_kstr(&j, "version", e->version);
			if (*e->note)
				json_kstr(&j, "note", e->note);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_key(&j, "removed");
		json_arr_begin(&j);
		for (size_t i = 0; i < n; i++)
			if (ents[i].removed)
				json_str(&j, ents[i].sock);
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
		static const char *head[] = { "PID",	 "UID",	    "STATUS",
					      "VERSION", "PROGRAM", "COMMAND" };
		struct table t;
		size_t shown = 0;

		table_init(&t, 6, head);
		for (size_t i = 0; i < n; i++) {
			struct ps_entry *e = &ents[i];
			char pid[16], uid[16];
			const char *cells[6];

			if (e->removed)
				continue;
			snprintf(pid, sizeof(pid), "%d", (int)e->pid);
			snprintf(uid, sizeof(uid), "%u", (unsigned)e->uid);
			cells[0] = pid;
			cells[1] = uid;
			cells[2] = e->status;
			cells[3] = *e->version ? e->version : NULL;
			cells[4] = *e->program ? e->program : NULL;
			cells[5] = *e->cmdline ? e->cmdline : e->note;
			table_add(&t, cells);
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
			msg("no controllable process (looked in %s)", all);
			free(all);
		}
	}
	for (size_t i = 0; i < dirs.n; i++)
		free(dirs.d[i]);
	free(dirs.d);
	free(ents);
	for (size_t i = 0; i < nexited + nremoved_exited; i++)
		free(exited[i]);
	free(exited);
	free(exited_removed);
	return EX_OK;
}
