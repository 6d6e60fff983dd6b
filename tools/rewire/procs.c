// SPDX-License-Identifier: MIT
/*
 * Finding the rewire-enabled processes of this machine (rewire ps, and
 * the selectors --all, --exe, --build-id, --comm).
 *
 * Every process of /proc is looked at. One that this command may examine
 * (ours, or any as root) is located as conn_open would (conn_locate: its
 * socket directory by the rules of src/ctl/sockdir.h, inside its root when
 * it runs in other namespaces, with the same checks); it is listed when a
 * socket is found, as denied when the socket or its directory fails the
 * checks. A process of another user cannot be examined (its environment,
 * namespaces and directory are closed to us): it is listed as denied, and
 * never connected to, when /proc/net/unix shows a socket named after its
 * pid (the paths of bound sockets are visible to everyone; only those of
 * our network namespace). Such a path names the socket as its process
 * sees it: in a default directory, it must be that of the process's user;
 * the sockets of the first processes of two containers of one user have
 * the same name (1.sock) and both are listed.
 */
#include "rewire.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct unix_names {
	char **path;
	int *used; /* 0, or the pass that took the name (USED_*) */
	size_t n;
};
enum { USED_LOCATED = 1, USED_OTHER_NS, USED_OUR_NS };

/* The paths of the bound sockets of /proc/net/unix that end in ".sock". */
static void unix_names_read(struct unix_names *u)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		char *p = strrchr(line, ' '), *nl;
		size_t len;

		if (!p || p[1] != '/')
			continue;
		p++;
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		len = strlen(p);
		if (len < 6 || strcmp(p + len - 5, ".sock"))
			continue;
		u->path = xrealloc(u->path, sizeof(char *) * (u->n + 1));
		u->used = xrealloc(u->used, sizeof(int) * (u->n + 1));
		u->used[u->n] = 0;
		u->path[u->n++] = xasprintf("%s", p);
	}
	free(line);
	fclose(f);
}

/* The uid that a default socket directory in @path names
 * (/tmp/rewire-UID/, /run/user/UID/rewire/), or -1. */
static long path_uid(const char *path)
{
	unsigned long u;
	int n = 0;

	if ((sscanf(path, "/tmp/rewire-%lu/%n", &u, &n) == 1 && n) ||
	    (sscanf(path, "/run/user/%lu/rewire/%n", &u, &n) == 1 && n))
		return (long)u;
	return -1;
}

/* @uid as process @pid sees it, through its uid_map (readable by all). */
static uid_t uid_inside(pid_t pid, uid_t uid)
{
	unsigned long in, out, count;
	char path[64];
	uid_t ret = uid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return uid;
	while (fscanf(f, "%lu %lu %lu", &in, &out, &count) == 3)
		if (uid >= out && uid - out < count) {
			ret = (uid_t)(in + (uid - out));
			break;
		}
	fclose(f);
	return ret;
}

/*
 * A socket path named NSPID.sock that may be @pid's (when it is in a
 * default directory, that of its user), not taken yet, or taken by the
 * same @pass: marked taken by @pass. NULL when none.
 *
 * Processes in other pid namespaces may share a name (the first process
 * of two containers of a user both have 1.sock, in /tmp/rewire-UID as each
 * sees it): this command cannot tell which one has it, and lists both.
 */
static const char *unix_names_take(struct unix_names *u, pid_t pid, pid_t nspid,
				   uid_t uid, int pass)
{
	uid_t in = uid_inside(pid, uid);
	char name[32];
	size_t len;

	len = (size_t)snprintf(name, sizeof(name), "/%d.sock", (int)nspid);
	for (size_t i = 0; i < u->n; i++) {
		size_t pl = strlen(u->path[i]);
		long pu;

		if ((u->used[i] &&
		     (u->used[i] != pass || pass != USED_OTHER_NS)) ||
		    pl < len || strcmp(u->path[i] + pl - len, name))
			continue;
		pu = path_uid(u->path[i]);
		if (pu >= 0 && (uid_t)pu != in)
			continue;
		u->used[i] = pass;
		return u->path[i];
	}
	return NULL;
}

/* Marks the path of a located socket (as its process sees it) used. */
static void unix_names_mark(struct unix_names *u, const struct ctl_where *w)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%d.sock", w->dir, (int)w->nspid);
	for (size_t i = 0; i < u->n; i++)
		if (!u->used[i] && !strcmp(u->path[i], path)) {
			u->used[i] = USED_LOCATED;
			return;
		}
}

pid_t proc_nspid(pid_t pid, int *levels)
{
	char path[64], line[512];
	long last = 0;
	int dummy;
	FILE *f;

	if (!levels)
		levels = &dummy;
	*levels = 1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f)) {
		char *p, *end;

		if (strncmp(line, "NSpid:", 6))
			continue;
		*levels = 0;
		for (p = line + 6;; p = end) {
			long v = strtol(p, &end, 10);

			if (end == p)
				break;
			last = v;
			++*levels;
		}
		break;
	}
	fclose(f);
	return last > 0 ? (pid_t)last : pid;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct proc_entry *x = a, *y = b;

	return (x->w.pid > y->w.pid) - (x->w.pid < y->w.pid);
}

struct cand {
	pid_t pid;
	uid_t uid;
};

static void fill_names(struct proc_entry *e)
{
	char path[64];
	ssize_t len;

	thread_comm(e->w.pid, e->w.pid, e->comm, sizeof(e->comm));
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)e->w.pid);
	len = readlink(path, e->exe, sizeof(e->exe) - 1);
	e->exe[len > 0 ? len : 0] = '\0';
}

/*
 * The processes we may examine first (each located socket takes its name
 * out of /proc/net/unix's list), then the others: those in other pid
 * namespaces before ours, so that the socket 1.sock of a container's
 * first process is not taken for the host's init.
 */
size_t procs_scan(struct proc_entry **out)
{
	struct unix_names un = { 0 };
	struct proc_entry *ents = NULL;
	struct cand *cands = NULL;
	size_t n = 0, ncand = 0;
	uid_t me = geteuid();
	pid_t self = getpid();
	struct dirent *de;
	DIR *d;

	*out = NULL;
	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[64], *end;
		struct stat st;
		long pid;

		errno = 0;
		pid = strtol(de->d_name, &end, 10);
		if (errno || pid <= 0 || *end || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld", pid);
		if (stat(path, &st))
			continue;
		cands = xrealloc(cands, sizeof(*cands) * (ncand + 1));
		cands[ncand].pid = (pid_t)pid;
		cands[ncand++].uid = st.st_uid;
	}
	closedir(d);
	unix_names_read(&un);
	ents = xmalloc(sizeof(*ents) * (ncand + 1));
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < ncand; i++) {
			struct proc_entry *e = &ents[n];
			bool mine = me == 0 || cands[i].uid == me;
			const char *seen;
			int err = 0, levels;

			if (mine != (pass == 0))
				continue;
			memset(e, 0, sizeof(*e));
			if (pass == 0) {
				int ret = conn_locate(cands[i].pid, &e->w, &err,
						      e->why, sizeof(e->why));

				if (!ret) {
					e->state = PROC_OK;
					unix_names_mark(&un, &e->w);
				} else if (err == -ENOENT || err == -ESRCH) {
					continue;
				} else if ((err == -EACCES || err == -ELOOP) &&
					   !unix_names_take(
						   &un, e->w.pid, e->w.nspid,
						   e->w.uid, USED_LOCATED)) {
					/* A directory closed to us, and no
					 * socket of its name: most likely
					 * none. */
					continue;
				} else {
					e->state = PROC_DENIED;
				}
				fill_names(e);
				n++;
				continue;
			}
			e->w.pid = cands[i].pid;
			e->w.uid = cands[i].uid;
			e->w.nspid = proc_nspid(e->w.pid, &levels);
			if ((levels > 1) != (pass == 1))
				continue;
			seen = unix_names_take(
				&un, e->w.pid, e->w.nspid, e->w.uid,
				pass == 1 ? USED_OTHER_NS : USED_OUR_NS);
			if (!seen)
				continue;
			e->state = PROC_DENIED;
			e->w.other_ns = levels > 1;
			/* In our pid namespace, the path is most likely
			 * ours too. */
			if (!e->w.other_ns)
				snprintf(e->w.sock, sizeof(e->w.sock), "%s",
					 seen);
			else
				snprintf(e->w.root, sizeof(e->w.root),
					 "/proc/%d/root", (int)e->w.pid);
			snprintf(e->w.dir, sizeof(e->w.dir), "%.*s",
				 (int)(strrchr(seen, '/') - seen), seen);
			snprintf(e->why, sizeof(e->why),
				 "process of uid %u, not examined (a socket "
				 "%s is listed in /proc/net/unix); run as that "
				 "user or root",
				 (unsigned)e->w.uid, seen);
			fill_names(e);
			n++;
		}
	}
	qsort(ents, n, sizeof(*ents), entry_cmp);
	for (size_t i = 0; i < un.n; i++)
		free(un.path[i]);
	free(un.path);
	free(un.used);
	free(cands);
	*out = ents;
	return n;
}
