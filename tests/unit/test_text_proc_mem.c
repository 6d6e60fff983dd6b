/* SPDX-License-Identifier: MIT */
/*
 * The code writer's /proc/self/mem descriptor (src/text.c): each way it
 * can fail gives its own error, and it never writes through a descriptor
 * that is not this process's /proc/self/mem.
 *
 * Each case runs in a child, which must exit 0:
 *
 *   reused   the program closes rewire's descriptor (as daemons close every
 *            descriptor) and a memfd takes its number: a key flip still
 *            changes the code and writes nothing into the memfd;
 *   emfile   then with no descriptor left under RLIMIT_NOFILE: the flip
 *            fails with -EMFILE ("out of file descriptors"), changes
 *            nothing, and works once a descriptor is free again;
 *   rawfork  a child made with the raw fork system call (no fork handlers
 *            run) flips a key: its own code changes, never its parent's;
 *   noproc   (root, not under ASan) a process started in a mount namespace
 *            without /proc: -RW_ERR_NO_PROC from a key flip and from
 *            rw_text_poke_batch;
 *   eio      a site in an executable mapping that the kernel will not
 *            write (a shared read-only file mapping): -RW_ERR_TEXT_WRITE
 *            and the bytes unchanged.
 *
 * Before these errors were told apart, every one was -RW_ERR_TEXT_WRITE
 * ("the kernel refuses writes"), and a reused number or a raw fork wrote
 * into the memfd or the parent's code while the flip reported success.
 */
#include <rewire/config.h>

#include "check.h"
#include "insn.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("no code patching on this backend");
}
#else

#include <rewire/static_key.h>
#include <rewire/text_poke.h>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

RW_DEFINE_STATIC_KEY_FALSE(pm_key);

__attribute__((noinline)) static int pm_keyed(void)
{
	if (rw_static_branch_unlikely(pm_key))
		return 1;
	return 0;
}

/* rewire's descriptor: the one that names /proc/<pid>/mem or, opened
 * through /proc/thread-self, /proc/<pid>/task/<tid>/mem. -1 if none. */
static int rewire_mem_fd(void)
{
	char want[64], link[64], path[300];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	CHECK(d != NULL);
	snprintf(want, sizeof(want), "/proc/%d/", (int)getpid());
	while ((e = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, want, strlen(want)) == 0 && n >= 4 &&
		    strcmp(link + n - 4, "/mem") == 0)
			found = atoi(e->d_name);
	}
	closedir(d);
	return found;
}

static void flip_ok(void)
{
	CHECK_EQ(pm_keyed(), 0);
	CHECK_OK(rw_static_key_enable(&pm_key));
	CHECK_EQ(pm_keyed(), 1);
	CHECK_OK(rw_static_key_disable(&pm_key));
	CHECK_EQ(pm_keyed(), 0);
}

static void case_reused(void)
{
	int fd = rewire_mem_fd(), m;
	struct stat st;

	CHECK(fd >= 0); /* opened when the library was loaded */
	CHECK(close(fd) == 0);
	m = memfd_create("not-proc-mem", MFD_CLOEXEC);
	CHECK(m >= 0);
	if (m != fd) {
		CHECK(dup2(m, fd) == fd);
		CHECK(close(m) == 0);
	}
	flip_ok();
	CHECK(fstat(fd, &st) == 0);
	CHECK_EQ(st.st_size, 0);
	CHECK(rewire_mem_fd() >= 0);
	printf("reused: a memfd under rewire's old descriptor number was "
	       "left alone, the key flipped\n");
}

static void case_emfile(void)
{
	struct rlimit rl;
	int fd = rewire_mem_fd(), last = -1, err;

	CHECK(fd >= 0);
	CHECK(close(fd) == 0);
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	rl.rlim_cur = 64;
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	for (;;) {
		int n = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (n < 0) {
			CHECK_EQ(errno, EMFILE);
			break;
		}
		last = n;
	}
	CHECK(last >= 0);
	err = rw_static_key_enable(&pm_key);
	printf("emfile: %d (%s)\n", err, rw_strerror(err));
	CHECK_EQ(err, -EMFILE);
	CHECK(strstr(rw_strerror(err), "file descriptors") != NULL);
	CHECK(!rw_static_key_enabled(&pm_key));
	CHECK_EQ(pm_keyed(), 0);
	CHECK(close(last) == 0);
	flip_ok();
	printf("emfile: the flip works once a descriptor is free\n");
}

static void case_rawfork(void)
{
	long c;
	int st;

	fflush(stdout);
#ifdef SYS_fork
	c = syscall(SYS_fork);
#else
	/* aarch64 has no fork system call: clone with fork's semantics. */
	c = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
#endif
	CHECK(c >= 0);
	if (c == 0) {
		/* No fork handler ran: rewire's descriptor is the parent's
		 * memory. */
		int err = rw_static_key_enable(&pm_key);

		if (err || pm_keyed() != 1) {
			fprintf(stderr, "raw fork child: %d (%s), keyed %d\n",
				err, rw_strerror(err), pm_keyed());
			_exit(1);
		}
		_exit(0);
	}
	CHECK(waitpid((pid_t)c, &st, 0) == c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(!rw_static_key_enabled(&pm_key));
	CHECK_EQ(pm_keyed(), 0);
	flip_ok();
	printf("rawfork: the child patched its own code, not ours\n");
}

#define nop5 rw_test_nop
#define L RW_TEST_INSN

/* A batch turning the NOP at @code into a jmp to the next instruction. */
static int poke_jmp(uint8_t *code)
{
	struct rw_text_poke pk = { .addr = code, .len = L };

	memcpy(pk.old_insn, nop5, L);
	CHECK_EQ(rw_text_encode(RW_TEXT_JMP, code, code + 8, pk.new_insn), L);
	return rw_text_poke_batch(&pk, 1);
}

/* Run in a process started without /proc (see main). */
static void case_noproc(void)
{
	uint8_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int err;

	CHECK(access("/proc/self/mem", F_OK) != 0);
	err = rw_static_key_enable(&pm_key);
	printf("noproc: key: %d (%s)\n", err, rw_strerror(err));
	CHECK_EQ(err, -RW_ERR_NO_PROC);
	CHECK(!rw_static_key_enabled(&pm_key));
	CHECK_EQ(pm_keyed(), 0);
	CHECK(code != MAP_FAILED);
	memcpy(code, nop5, L);
	memset(code + L, 0, 4096 - L); /* never run */
	CHECK(mprotect(code, 4096, PROT_READ | PROT_EXEC) == 0);
	err = poke_jmp(code);
	printf("noproc: batch: %d (%s)\n", err, rw_strerror(err));
	CHECK_EQ(err, -RW_ERR_NO_PROC);
	CHECK(!memcmp(code, nop5, L));
}

static void case_eio(void)
{
	char path[64];
	uint8_t *code;
	int m, ro, err;

	m = memfd_create("code", MFD_CLOEXEC);
	CHECK(m >= 0);
	CHECK(write(m, nop5, L) == L);
	CHECK(ftruncate(m, 4096) == 0);
	/* Read-only file, shared mapping: never writable, not even by the
	 * kernel's forced write. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", m);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(ro >= 0);
	code = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, ro, 0);
	CHECK(code != MAP_FAILED);
	err = poke_jmp(code);
	printf("eio: %d (%s)\n", err, rw_strerror(err));
	CHECK_EQ(err, -RW_ERR_TEXT_WRITE);
	CHECK(!memcmp(code, nop5, L));
	CHECK(munmap(code, 4096) == 0);
	CHECK(close(ro) == 0 && close(m) == 0);
}

/* Start this program again, as "noproc", in a namespace without /proc. */
static int run_noproc(void)
{
	char self[512];
	ssize_t n;
	pid_t c;
	int st;

	if (geteuid() != 0) {
		printf("noproc: skipped (needs root for a mount namespace)\n");
		return 0;
	}
#if defined(__SANITIZE_ADDRESS__)
	printf("noproc: skipped (AddressSanitizer needs /proc)\n");
	return 0;
#endif
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(n > 0);
	self[n] = '\0';
	fflush(stdout);
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		if (unshare(CLONE_NEWNS) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    umount2("/proc", MNT_DETACH)) {
			printf("noproc: skipped (no mount namespace: %s)\n",
			       strerror(errno));
			_exit(0);
		}
		execl(self, self, "noproc", (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(c, &st, 0) == c);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int in_child(void (*fn)(void), const char *name)
{
	pid_t c;
	int st;

	fflush(stdout);
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		fn();
		fflush(stdout);
		_exit(0);
	}
	CHECK(waitpid(c, &st, 0) == c);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "%s failed\n", name);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "noproc") == 0) {
		case_noproc();
		return 0;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (in_child(case_reused, "reused") ||
	    in_child(case_emfile, "emfile") ||
	    in_child(case_rawfork, "rawfork") || in_child(case_eio, "eio") ||
	    run_noproc())
		return 1;
	printf("text /proc/self/mem: ok\n");
	return 0;
}

#endif /* RW_BACKEND_PATCHING */
