// SPDX-License-Identifier: MIT
/*
 * What rewire's aarch64 backend needs from the kernel, checked in the
 * aarch64 VM before the suite runs (scripts/aarch64/test.sh, check.sh):
 *   1. membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) registers
 *      and runs (every thread of the process executes a context
 *      synchronization event before it returns);
 *   2. a write through /proc/self/mem to the process's own read-only
 *      text succeeds, and after cleaning the D-cache and invalidating the
 *      I-cache (DC CVAU, IC IVAU, DSB, ISB: __builtin___clear_cache) the
 *      new instruction runs;
 *   3. a BRK traps to a SIGTRAP handler, which can resume past it.
 * Under TCG stale instructions never show (qemu retranslates written
 * code), so (2) proves the path works, not that the cache maintenance is
 * right: that follows the architecture's rules by construction.
 * Exit 0 when all hold, 1 (with a message) otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#if !defined(__aarch64__)
#error "guest-check.c is for aarch64"
#endif

/* mov w0, #1; ret: rewritten to mov w0, #2. */
__attribute__((noinline, aligned(16))) static int answer(void)
{
	int r;

	__asm__ volatile("mov %w0, #1" : "=r"(r));
	return r;
}

static volatile sig_atomic_t trapped;

static void on_trap(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;

	(void)sig;
	(void)si;
	trapped = 1;
	uc->uc_mcontext.pc += 4; /* past the BRK */
}

static int check_membarrier(void)
{
	long r = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (r < 0 || !(r & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)) {
		printf("guest-check: membarrier SYNC_CORE not supported "
		       "(query %ld, errno %d)\n",
		       r, errno);
		return 1;
	}
	if (syscall(__NR_membarrier,
		    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0,
		    0) ||
	    syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
		    0, 0)) {
		printf("guest-check: membarrier SYNC_CORE failed: %s\n",
		       strerror(errno));
		return 1;
	}
	printf("guest-check: membarrier SYNC_CORE ok\n");
	return 0;
}

static int check_text_write(void)
{
	int (*volatile fn)(void) = answer;
	uint32_t insn[8], *p = (uint32_t *)(uintptr_t)answer;
	int fd, i, found = -1;

	memcpy(insn, p, sizeof(insn));
	for (i = 0; i < 8; i++) {
		/* movz w<n>, #1 */
		if ((insn[i] & 0xffffffe0u) == 0x52800020u) {
			found = i;
			break;
		}
	}
	if (found < 0 || fn() != 1) {
		printf("guest-check: no 'mov wN, #1' in answer()\n");
		return 1;
	}
	insn[found] = (insn[found] & ~(0xffffu << 5)) | (2u << 5);
	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0 ||
	    pwrite(fd, &insn[found], 4, (off_t)(uintptr_t)&p[found]) != 4) {
		printf("guest-check: write to text through /proc/self/mem "
		       "failed: %s\n",
		       strerror(errno));
		return 1;
	}
	close(fd);
	__builtin___clear_cache((char *)&p[found], (char *)&p[found + 1]);
	if (fn() != 2) {
		printf("guest-check: the written instruction did not run\n");
		return 1;
	}
	printf("guest-check: /proc/self/mem text write ok\n");
	return 0;
}

static int check_brk(void)
{
	struct sigaction sa = { .sa_sigaction = on_trap,
				.sa_flags = SA_SIGINFO };

	sigaction(SIGTRAP, &sa, NULL);
	__asm__ volatile("brk #0x7277" ::: "memory");
	if (!trapped) {
		printf("guest-check: BRK did not reach the SIGTRAP handler\n");
		return 1;
	}
	printf("guest-check: BRK -> SIGTRAP ok\n");
	return 0;
}

int main(void)
{
	int bad = check_membarrier() + check_text_write() + check_brk();

	return bad ? 1 : 0;
}
