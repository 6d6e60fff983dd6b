// SPDX-License-Identifier: MIT
/*
 * The patch directory (rewire/ctl.h, patchdir.h): at the start of the
 * control server, every DIR/NAME.so is loaded, checked against the build
 * it is bound to, enabled and waited for, before the program serves.
 *
 * The steps:
 *  1. Open DIR (a directory, following links) and check it on the open
 *     descriptor: owned by the effective uid or root, not writable by
 *     group or others. A directory that fails applies nothing.
 *  2. Read its names: "*.so", not hidden (a writer's temporary file, such
 *     as `rewire apply --persist`'s, starts with '.'), sorted bytewise.
 *  3. For each, in that order: open it relative to DIR's descriptor (no
 *     second lookup of DIR), load the descriptor with
 *     RW_PATCH_LOAD_BOUND_ONLY (rw_patch_load's checks; a patch without a
 *     binding is refused), mark it FROM_DIR, enable it, and wait up to
 *     RW_PATCHDIR_WAIT_MS for its transition (before main(), the calling
 *     thread, inside the dynamic loader's constructor calls, declares
 *     itself quiescent: no function of the program is on its stack, and
 *     its stack cannot be unwound through ld.so). A patch that cannot be
 *     enabled is unloaded again. A transition still open after the wait
 *     is left to the control thread, which drives transitions (only one
 *     runs at a time: the patches after it then fail to enable, and say
 *     so).
 * Each failure is one line on standard error; none stops the program or
 * the other patches.
 */
#include "../internal.h"
#include "patchdir.h"

#include <rewire/livepatch.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rw__patchdir_resolve(const char *dir, char *out, size_t size)
{
	char real[PATH_MAX], cwd[PATH_MAX];

	if (realpath(dir, real)) {
		if ((size_t)snprintf(out, size, "%s", real) >= size)
			return -ENAMETOOLONG;
		return 0;
	}
	if (dir[0] == '/') {
		if ((size_t)snprintf(out, size, "%s", dir) >= size)
			return -ENAMETOOLONG;
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if ((size_t)snprintf(out, size, "%s/%s", strcmp(cwd, "/") ? cwd : "",
			     dir) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static void report(const char *dir, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report(const char *dir, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Not rw__log: these are always reported. */
	fprintf(stderr, "rewire: [%d] patch dir %s: %s\n", (int)getpid(), dir,
		msg);
}

/* The loader's message without the file name it starts with (the report
 * names the file already). */
static const char *why(const char *path, int err)
{
	const char *m = rw_patch_last_error();
	size_t n = strlen(path);

	if (!*m)
		return rw_strerror(err);
	if (!strncmp(m, path, n) && !strncmp(m + n, ": ", 2))
		return m + n + 2;
	return m;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_patch_name(const char *n)
{
	size_t len = strlen(n);

	return n[0] != '.' && len > 3 && !strcmp(n + len - 3, ".so");
}

/* Step 1. Returns the directory's descriptor, or -1 (reported). */
static int open_dir(const char *dir)
{
	uid_t me = geteuid();
	struct stat st;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0) {
		report(dir, "cannot open it: %s; no patch applied",
		       strerror(errno));
		return -1;
	}
	if (fstat(dfd, &st)) {
		report(dir, "cannot stat it: %s; no patch applied",
		       strerror(errno));
	} else if (st.st_uid != me && st.st_uid != 0) {
		report(dir,
		       "refused: owned by uid %u, not by uid %u or root; "
		       "no patch applied",
		       (unsigned)st.st_uid, (unsigned)me);
	} else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		report(dir,
		       "refused: writable by %s (mode 0%03o); no patch "
		       "applied",
		       (st.st_mode & S_IWOTH) ? "others" : "its group",
		       (unsigned)(st.st_mode & 07777));
	} else {
		return dfd;
	}
	close(dfd);
	return -1;
}

/* Step 2: the names, malloc'ed, sorted. Returns how many, or -1. */
static ssize_t list_names(const char *dir, int dfd, char ***out)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		report(dir, "cannot read it: %s; no patch applied",
		       strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d))) {
		if (!is_patch_name(de->d_name))
			continue;
		if (n == cap) {
			char **w =
				realloc(v, (cap ? 2 * cap : 16) * sizeof(*v));

			if (!w)
				break;
			v = w;
			cap = cap ? 2 * cap : 16;
		}
		v[n] = strdup(de->d_name);
		if (v[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_names);
	*out = v;
	return (ssize_t)n;
}

static const char *why_name(int why)
{
	switch (why) {
	case RW_PT_ON_STACK:
		return "runs";
	case RW_PT_UNWIND_FAILED:
		return "stack not unwound";
	case RW_PT_BUSY:
		return "busy";
	case RW_PT_NO_ANSWER:
		return "no answer";
	default:
		return "not checked";
	}
}

/* "thread TID: WHY[ FUNC], ..." for the threads @p waits for. */
static void pending(struct rw_patch *p, char *out, size_t size)
{
	struct rw_patch_info info;
	size_t len = 0;

	out[0] = '\0';
	if (rw_patch_state(p, &info))
		return;
	for (size_t i = 0; i < info.npending && i < 3 && len < size; i++) {
		const struct rw_patch_thread *t = &info.pending[i];

		len += (size_t)snprintf(out + len, size - len,
					"%sthread %d: %s%s%.*s", i ? ", " : "",
					(int)t->tid, why_name(t->why),
					t->func[0] ? " " : "",
					(int)sizeof(t->func), t->func);
	}
	if (info.npending > 3 && len < size)
		snprintf(out + len, size - len, ", ...");
}

/* Step 3 for DIR/@name. Returns whether it was enabled. */
static bool apply_one(const char *dir, int dfd, const char *name,
		      bool before_main)
{
	char path[PATH_MAX + 256];
	struct rw_patch *p = NULL;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		report(dir, "%s: skipped: cannot open it: %s", name,
		       strerror(errno));
		return false;
	}
	err = rw_patch_load_fd(fd, path, RW_PATCH_LOAD_BOUND_ONLY, &p);
	close(fd);
	if (err) {
		report(dir, "%s: skipped: %s", name, why(path, err));
		return false;
	}
	rw__patch_set_from_dir(p);
	err = rw_patch_enable(p);
	if (err) {
		report(dir, "%s: skipped: cannot enable it: %s", name,
		       why(path, err));
		err = rw_patch_unload(p);
		if (err)
			report(dir, "%s: and cannot unload it: %s", name,
			       why(path, err));
		return false;
	}
	/* Before main() this thread runs the dynamic loader's constructor
	 * calls: no function of the program is on its stack, but its stack
	 * cannot be unwound to the end (ld.so's entry has no unwind
	 * information), so it would never be found safe. */
	if (before_main)
		rw_patch_quiescent();
	err = rw_patch_wait(p, RW_PATCHDIR_WAIT_MS);
	if (err == -ETIMEDOUT) {
		char who[256];

		pending(p, who, sizeof(who));
		report(dir,
		       "%s: enabled, but its transition is not complete "
		       "after %d ms (%s): the control thread completes it "
		       "(`rewire ls %d --patches`)",
		       name, RW_PATCHDIR_WAIT_MS, who, (int)getpid());
	} else if (err) {
		report(dir, "%s: enabled, but its transition failed: %s", name,
		       why(path, err));
	} else {
		rw__log("patch dir %s: %s applied", dir, name);
	}
	return true;
}

int rw__patchdir_apply(const char *dir, bool before_main)
{
	char **names = NULL;
	ssize_t n;
	int dfd, applied = 0;

	dfd = open_dir(dir);
	if (dfd < 0)
		return 0;
	n = list_names(dir, dfd, &names);
	for (ssize_t i = 0; i < n; i++) {
		applied += apply_one(dir, dfd, names[i], before_main);
		free(names[i]);
	}
	free(names);
	close(dfd);
	return applied;
}
