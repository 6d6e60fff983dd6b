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
 * our network namespace).
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
	size_t n;
};

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
		u->path[u->n++] = xasprintf("%s", p);
	}
	free(line);
	fclose(f);
}

/* A socket path whose name is NSPID.sock, or NULL. */
static const char *unix_names_find(const struct unix_names *u, pid_t nspid)
{
	char name[32];
	size_t len;

	len = (size_t)snprintf(name, sizeof(name), "/%d.sock", (int)nspid);
	for (size_t i = 0; i < u->n; i++) {
		size_t pl = strlen(u->path[i]);

		if (pl >= len && !strcmp(u->path[i] + pl - len, name))
			return u->path[i];
	}
	return NULL;
}

/* NSpid's last number, read without the checks of conn_locate (for a
 * process that is not examined); @pid without it. */
static pid_t nspid_of(pid_t pid)
{
	char path[64], line[512];
	long last = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f)) {
		char *p, *end;

		if (strncmp(line, "NSpid:", 6))
			continue;
		for (p = line + 6;; p = end) {
			long v = strtol(p, &end, 10);

			if (end == p)
				break;
			last = v;
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

size_t procs_scan(struct proc_entry **out)
{
	struct unix_names un = { 0 };
	struct proc_entry *ents = NULL;
	size_t n = 0, cap = 0;
	uid_t me = geteuid();
	pid_t self = getpid();
	struct dirent *de;
	DIR *d;

	*out = NULL;
	unix_names_read(&un);
	d = opendir("/proc");
	if (!d)
		goto out;
	while ((de = readdir(d))) {
		struct proc_entry *e;
		char path[64], *end;
		const char *seen;
		struct stat st;
		long pid;
		int err = 0, ret;
		ssize_t len;

		errno = 0;
		pid = strtol(de->d_name, &end, 10);
		if (errno || pid <= 0 || *end || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld", pid);
		if (stat(path, &st))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			ents = xrealloc(ents, sizeof(*ents) * cap);
		}
		e = &ents[n];
		memset(e, 0, sizeof(*e));
		if (me == 0 || st.st_uid == me) {
			ret = conn_locate((pid_t)pid, &e->w, &err, e->why,
					  sizeof(e->why));
			if (!ret) {
				e->state = PROC_OK;
			} else if (err == -ENOENT || err == -ESRCH) {
				continue;
			} else if ((err == -EACCES || err == -ELOOP) &&
				   !unix_names_find(&un, e->w.nspid)) {
				/* A directory closed to us, and no socket
				 * of its name: most likely none. */
				continue;
			} else {
				e->state = PROC_DENIED;
			}
		} else {
			e->w.pid = (pid_t)pid;
			e->w.nspid = nspid_of((pid_t)pid);
			e->w.uid = st.st_uid;
			seen = unix_names_find(&un, e->w.nspid);
			if (!seen)
				continue;
			e->state = PROC_DENIED;
			snprintf(e->w.sock, sizeof(e->w.sock), "%s", seen);
			snprintf(e->why, sizeof(e->why),
				 "process of uid %u, not examined (its socket "
				 "%s is listed in /proc/net/unix); run as that "
				 "user or root",
				 (unsigned)st.st_uid, seen);
		}
		thread_comm((pid_t)pid, (pid_t)pid, e->comm, sizeof(e->comm));
		snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
		len = readlink(path, e->exe, sizeof(e->exe) - 1);
		e->exe[len > 0 ? len : 0] = '\0';
		n++;
	}
	closedir(d);
	qsort(ents, n, sizeof(*ents), entry_cmp);
out:
	for (size_t i = 0; i < un.n; i++)
		free(un.path[i]);
	free(un.path);
	*out = ents;
	return n;
}
