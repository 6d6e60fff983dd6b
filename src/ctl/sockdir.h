/* SPDX-License-Identifier: MIT */
/*
 * Private: where control sockets live. Shared by the control server
 * (librewire) and the rewire command (which compiles sockdir.c into
 * itself). Never installed.
 *
 * The directory of user @uid's sockets, first that applies:
 *   1. $REWIRE_CTL_DIR, when set and not empty;
 *   2. /run/user/UID/rewire, when /run/user/UID is a directory owned by
 *      UID (systemd's per-user runtime directory);
 *   3. /tmp/rewire-UID.
 * It must be a directory (not a symbolic link) owned by UID with mode
 * 0700; the server creates it so and refuses one that is not. A process's
 * socket is DIR/PID.sock.
 */
#ifndef REWIRE_CTL_SOCKDIR_H
#define REWIRE_CTL_SOCKDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The directory for @uid (rule above) into @out. 0 or -ENAMETOOLONG. */
int rw_sockdir_path(uid_t uid, char *out, size_t size);

/* Create the directory for @uid if missing (mode 0700) and check it:
 * a directory, not a link, owned by @uid, mode exactly 0700. Returns 0;
 * -ENOTDIR, -EPERM (owner), -EACCES (mode) with a message in @err; or
 * a negative errno from mkdir/lstat. */
int rw_sockdir_ensure(uid_t uid, char *err, size_t errlen);

/* DIR/PID.sock for a process of @uid. 0 or -ENAMETOOLONG (a sun_path
 * holds 107 bytes). */
int rw_sockdir_socket(uid_t uid, pid_t pid, char *out, size_t size);

#endif /* REWIRE_CTL_SOCKDIR_H */
