/* SPDX-License-Identifier: MIT */
/*
 * Logging is off by default and, with REWIRE_LOG=1, writes lines of the
 * form "rewire[PID/TID] function: message" to stderr. The test runs itself
 * as a child with and without the variable and reads the child's stderr.
 */
#include <rewire/rewire.h>

#include "check.h"

#include <sys/wait.h>
#include <unistd.h>

RW_DEFINE_STATIC_KEY_FALSE(logged_key);

__attribute__((noinline)) static int site(void)
{
	return rw_static_branch_unlikely(logged_key) ? 1 : 0;
}

/* Run this program with "child" and the given REWIRE_LOG; return its
 * stderr (static buffer). */
static const char *run_child(const char *self, const char *log)
{
	static char buf[65536];
	int fds[2], status;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		if (log)
			setenv("REWIRE_LOG", log, 1);
		else
			unsetenv("REWIRE_LOG");
		execl(self, self, "child", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fds[0]);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return buf;
}

int main(int argc, char **argv)
{
	const char *out;
	char want[64];

	if (argc > 1 && strcmp(argv[1], "child") == 0) {
		/* Something that logs: a key flip with a site. */
		CHECK_OK(rw_static_key_enable(&logged_key));
		CHECK_EQ(site(), 1);
		CHECK_EQ(rw_static_key_dec(&logged_key), 0);
		CHECK_EQ(rw_static_key_dec(&logged_key), -EINVAL);
		printf("child pid %d\n", (int)getpid());
		return 0;
	}
	out = run_child(argv[0], NULL);
	CHECK_EQ(strlen(out), 0);
	out = run_child(argv[0], "0");
	CHECK_EQ(strlen(out), 0);
	out = run_child(argv[0], "1");
	fputs(out, stdout);
	CHECK(strstr(out, "rewire[") != NULL);
	/* Every line is "rewire[pid/tid] function: message". */
	for (const char *l = out; *l; l = strchr(l, '\n') + 1) {
		int pid, tid, used = 0;

		CHECK(sscanf(l, "rewire[%d/%d] %n", &pid, &tid, &used) == 2);
		CHECK(pid > 0 && tid > 0 && used > 0);
		CHECK(strchr(l + used, ':') != NULL);
		if (!strchr(l, '\n'))
			break;
	}
	snprintf(want, sizeof(want), "rw__object_register: ");
	CHECK(strstr(out, want) != NULL);
	printf("logging: ok\n");
	return 0;
}
