/* SPDX-License-Identifier: MIT */
/*
 * cli_daemon_target: a program that knows nothing of rewire and forks the
 * way servers do, for `rewire run` (test_cli_daemon.sh).
 *
 *	cli_daemon_target daemon PIDFILE   daemon(3): fork, the parent leaves
 *	                                   with _exit, the child serves
 *	cli_daemon_target double PIDFILE   fork, setsid, fork again; both
 *	                                   parents leave with _exit
 *	cli_daemon_target worker PIDFILE   fork one worker; both serve
 *	cli_daemon_target drop PIDFILE     started as root: drops to uid and
 *	                                   gid 65534 (nobody), then serves
 *
 * PIDFILE gets "parent=PID server=PID [middle=PID]" once the process that
 * serves runs (server: the child, or the worker). Whatever serves sleeps
 * for 60 s, then exits.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/types.h>
#include <unistd.h>

static void write_pids(const char *file, pid_t parent, pid_t middle)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	f = fopen(tmp, "w");
	if (!f)
		_exit(1);
	fprintf(f, "parent=%d server=%d", (int)parent, (int)getpid());
	if (middle)
		fprintf(f, " middle=%d", (int)middle);
	fprintf(f, "\n");
	fclose(f);
	rename(tmp, file);
}

static void serve(void)
{
	for (int i = 0; i < 600; i++)
		usleep(100000);
	exit(0);
}

int main(int argc, char **argv)
{
	pid_t parent = getpid(), middle, worker;

	if (argc != 3 || argv[2][0] != '/') {
		fprintf(stderr,
			"usage: %s daemon|double|worker|drop /PIDFILE\n",
			argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "daemon")) {
		if (daemon(1, 0))
			return perror("daemon"), 1;
		write_pids(argv[2], parent, 0);
		serve();
	}
	if (!strcmp(argv[1], "double")) {
		if (fork())
			_exit(0);
		setsid();
		middle = getpid();
		if (fork())
			_exit(0);
		write_pids(argv[2], parent, middle);
		serve();
	}
	if (!strcmp(argv[1], "drop")) {
		/* Like memcached -u: the server started as root (from the
		 * environment, before main), then the process switches to
		 * its service user and is no longer dumpable. */
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			return perror("drop"), 1;
		write_pids(argv[2], parent, 0);
		serve();
	}
	if (!strcmp(argv[1], "worker")) {
		worker = fork();
		if (worker < 0)
			return perror("fork"), 1;
		if (!worker)
			serve();
		{
			char tmp[4096];
			FILE *f;

			snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
			f = fopen(tmp, "w");
			if (!f)
				return 1;
			fprintf(f, "parent=%d server=%d\n", (int)parent,
				(int)worker);
			fclose(f);
			rename(tmp, argv[2]);
		}
		serve();
	}
	return 2;
}
