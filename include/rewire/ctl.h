/* SPDX-License-Identifier: MIT */
/*
 * rewire/ctl.h - the control socket: lets the `rewire` command list and
 * change a running program (keys, static calls, tracepoints, patches).
 *
 * A control thread ("rewire-ctl") listens on a UNIX socket DIR/PID.sock,
 * where DIR is a directory of the user's with mode 0700: $REWIRE_CTL_DIR,
 * else /run/user/UID/rewire, else /tmp/rewire-UID. Each peer's credentials
 * are read with SO_PEERCRED: the same user or root is served, anyone else
 * is refused and the refusal is written to standard error.
 *
 * Three ways to start it:
 *
 *	rw_ctl_start();			// from the program
 *	REWIRE_CTL=1 ./server		// a program linked with librewire
 *	rewire run -- ./server		// any program: preloads librewire
 *
 * The control thread also drives live patch transitions that are in
 * progress (rw_patch_wait() every 100 ms), so a transition started by
 * `rewire patch` completes even when the command is gone.
 *
 * Caveats:
 * - The thread blocks every signal but rewire's own and the synchronous
 *   ones, so it never takes the program's SIGINT or SIGTERM.
 * - A child made by fork() has no control thread; call rw_ctl_start()
 *   in it if it should have one. Programs started by exec() after
 *   `rewire run` or with REWIRE_CTL=1 in their environment get their own.
 * - Requests are served one at a time, in the control thread; a request
 *   that waits for a patch transition waits at most a second.
 */
#ifndef REWIRE_CTL_H
#define REWIRE_CTL_H

#include <stddef.h>

#include <rewire/common.h>

RW_EXTERN_C_BEGIN

/*
 * rw_ctl_start - create the socket and start the control thread.
 * Returns 0 (also when it runs already); -EOPNOTSUPP with a directory
 * that is not the user's or not 0700 (see rw_ctl_last_error()); -EADDRINUSE
 * when another live process answers on this pid's socket; or a negative
 * errno of socket(), bind(), listen() or pthread_create(). Takes the
 * control lock. Not async-signal-safe.
 */
RW_EXPORT int rw_ctl_start(void);

/*
 * rw_ctl_stop - stop the control thread, close every connection (ending
 * their trace sessions: probes detached, waited for) and remove the
 * socket. Returns 0, or -EDEADLK when called from the control thread.
 */
RW_EXPORT int rw_ctl_stop(void);

/* The socket's path into @buf; 0, -ENOTCONN when not running, or
 * -ENAMETOOLONG. */
RW_EXPORT int rw_ctl_socket_path(char *buf, size_t len);

/* Why the last rw_ctl_start() of this process failed ("" if none). */
RW_EXPORT const char *rw_ctl_last_error(void);

RW_EXTERN_C_END

#endif /* REWIRE_CTL_H */
