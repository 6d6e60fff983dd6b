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
 * Patches that survive a restart. A process can have a patch directory
 * ($REWIRE_PATCH_DIR, `rewire run --patch-dir DIR`, or rw_ctl_options):
 * when its server first starts, before rw_ctl_start() returns (for
 * REWIRE_CTL=1, before main() runs), every DIR/NAME.so (names in byte
 * order; hidden files are skipped) is loaded, enabled, and its transition
 * waited for (up to 2 s; after that the control thread completes it). The
 * rules:
 * - DIR must be owned by the effective uid or root and not be writable by
 *   group or others; each file passes rw_patch_load's checks (owner, mode,
 *   a regular file);
 * - each patch must be bound to this build (.rewire.bind, `rewire
 *   bind-patch`): one bound to another program or build, or not bound at
 *   all, is skipped (RW_PATCH_LOAD_BOUND_ONLY), so one directory can serve
 *   several programs and a rebuilt program never runs a stale patch;
 * - anything that fails is reported on standard error, one line,
 *   "rewire: [PID] patch dir DIR: NAME.so: skipped: WHY", and never stops
 *   the program or the other patches.
 * `rewire ls` shows such patches as applied "from dir"; HELLO reports the
 * directory (rw_ctl_patch_dir). `rewire apply --persist` writes there.
 *
 * Caveats:
 * - The thread blocks every signal but rewire's own and the synchronous
 *   ones, so it never takes the program's SIGINT or SIGTERM.
 * - A child made by fork() has no control thread; call rw_ctl_start()
 *   in it if it should have one (a server started by REWIRE_CTL=1 follows
 *   fork itself). The child has its parent's patches, and does not apply
 *   the patch directory again. Programs started by exec() after
 *   `rewire run` or with REWIRE_CTL=1 in their environment get their own,
 *   and inherit REWIRE_PATCH_DIR.
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
 * Options of rw_ctl_start_opts. Set @size to sizeof(struct rw_ctl_options):
 * fields added later are read only when the caller's size has them.
 *
 * @patch_dir: the patch directory, see "Patches that survive a restart"
 *	above: NULL takes $REWIRE_PATCH_DIR (none when unset or empty), ""
 *	means none. A relative path is taken from the working directory.
 */
struct rw_ctl_options {
	size_t size;
	const char *patch_dir;
};

/*
 * rw_ctl_start_opts - rw_ctl_start with options (@opts NULL: the
 * defaults; rw_ctl_start() is rw_ctl_start_opts(NULL)). The first start
 * in the process applies the patch directory before the socket exists and
 * before it returns; later starts (after rw_ctl_stop, in a child after
 * fork) do not apply it again, and @opts is ignored while the server runs.
 * Failures of the patch directory are reported on standard error and do
 * not change the return value. Takes the control lock (the live patch lock
 * while it applies patches). Not async-signal-safe.
 *
 * Returns what rw_ctl_start() returns, and -EDEADLK when called from a
 * patch's constructor while the directory is applied (rw_ctl_stop() too).
 */
RW_EXPORT int rw_ctl_start_opts(const struct rw_ctl_options *opts);

/*
 * rw_ctl_patch_dir - the process's patch directory (absolute, as this
 * process sees it; the one the first start used) into @buf, of @len bytes.
 * Returns 0, -ENOENT when it has none, or -ENAMETOOLONG when it does not
 * fit.
 */
RW_EXPORT int rw_ctl_patch_dir(char *buf, size_t len);

/*
 * rw_ctl_stop - stop the control thread, close every connection (ending
 * their trace sessions: probes detached, waited for) and remove the
 * socket. Returns 0, or -EDEADLK when called from the control thread.
 */
RW_EXPORT int rw_ctl_stop(void);

/*
 * rw_ctl_socket_path - the control socket's path into @buf, of @len bytes.
 * Returns 0, -ENOTCONN when the server is not running, or -ENAMETOOLONG
 * when the path does not fit.
 */
RW_EXPORT int rw_ctl_socket_path(char *buf, size_t len);

/* Why the last rw_ctl_start() of this process failed ("" if none). */
RW_EXPORT const char *rw_ctl_last_error(void);

RW_EXTERN_C_END

#endif /* REWIRE_CTL_H */
