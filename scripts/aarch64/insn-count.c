// SPDX-License-Identifier: MIT
/*
 * insn-count [--main-thread] CMD [ARG...]: run CMD and print the user-mode
 * instructions it (and its threads and children; with --main-thread, its
 * first thread alone) retired, from the PMU's instructions event, on
 * stderr as "insn-count: N". --main-thread is for a program whose measured
 * loop runs in its main thread while children it starts work in
 * proportion (rw-bench-ftrace's session variants: the rewire command
 * formats every record; callgrind, the x86-64 counter, leaves children
 * out too). For the aarch64 VM booted with
 * vm.sh --icount, where qemu counts instructions exactly (without
 * -icount TCG has no such event and this exits 77). Exit status: CMD's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct perf_event_attr a;
	int go[2], fd, status;
	uint64_t count;
	int inherit = 1;
	pid_t pid;
	char c;

	if (argc > 1 && !strcmp(argv[1], "--main-thread")) {
		inherit = 0;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr,
			"usage: insn-count [--main-thread] CMD [ARG...]\n");
		return 2;
	}
	if (pipe(go))
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(go[1]);
		/* Wait until the counter is attached, then exec (counting
		 * starts at the exec: enable_on_exec). */
		if (read(go[0], &c, 1) != 1)
			_exit(127);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "insn-count: %s: %s\n", argv[1],
			strerror(errno));
		_exit(127);
	}
	close(go[0]);
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_HARDWARE;
	a.size = sizeof(a);
	a.config = PERF_COUNT_HW_INSTRUCTIONS;
	a.disabled = 1;
	a.enable_on_exec = 1;
	a.inherit = inherit;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	fd = (int)syscall(__NR_perf_event_open, &a, pid, -1, -1, 0);
	if (fd < 0) {
		fprintf(stderr,
			"insn-count: no instructions event (%s): "
			"boot with vm.sh --icount\n",
			strerror(errno));
		close(go[1]);
		waitpid(pid, &status, 0);
		return 77;
	}
	if (write(go[1], "x", 1) != 1)
		return 1;
	close(go[1]);
	if (waitpid(pid, &status, 0) < 0)
		return 1;
	if (read(fd, &count, sizeof(count)) != sizeof(count))
		return 1;
	fprintf(stderr, "insn-count: %llu\n", (unsigned long long)count);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
