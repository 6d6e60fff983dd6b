// SPDX-License-Identifier: MIT
/* Where control sockets live (see sockdir.h). */
#include "sockdir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rw_sockdir_path(uid_t uid, char *out, size_t size)
{
	const char *env = getenv("REWIRE_CTL_DIR");
	char run[64];
	struct stat st;
	int n;

	if (env && *env) {
		n = snprintf(out, size, "%s", env);
	} else {
		snprintf(run, sizeof(run), "/run/user/%u", (unsigned)uid);
		if (!stat(run, &st) && S_ISDIR(st.st_mode) && st.st_uid == uid)
			n = snprintf(out, size, "%s/rewire", run);
		else
			n = snprintf(out, size, "/tmp/rewire-%u",
				     (unsigned)uid);
	}
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

int rw_sockdir_ensure(uid_t uid, char *err, size_t errlen)
{
	char dir[4096];
	struct stat st;
	int ret = rw_sockdir_path(uid, dir, sizeof(dir));

	if (ret) {
		snprintf(err, errlen, "control directory name too long");
		return ret;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "cannot create %s: %s", dir,
			 strerror(errno));
		return ret;
	}
	if (lstat(dir, &st)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory (a link?)", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != uid) {
		snprintf(err, errlen, "%s is owned by uid %u, not %u", dir,
			 (unsigned)st.st_uid, (unsigned)uid);
		return -EPERM;
	}
	if ((st.st_mode & 07777) != 0700) {
		snprintf(err, errlen, "%s has mode %04o, not 0700", dir,
			 (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	return 0;
}

int rw_sockdir_socket(uid_t uid, pid_t pid, char *out, size_t size)
{
	char dir[4096];
	int ret = rw_sockdir_path(uid, dir, sizeof(dir));
	int n;

	if (ret)
		return ret;
	n = snprintf(out, size, "%s/%d.sock", dir, (int)pid);
	if (n < 0 || (size_t)n >= size || (size_t)n >= 108)
		return -ENAMETOOLONG;
	return 0;
}
