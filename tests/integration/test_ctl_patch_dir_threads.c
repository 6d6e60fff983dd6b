/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 16): a program that calls rw_ctl_start_opts() with a
 * patch directory itself, after its threads exist, and one of them runs
 * inside a function of the patch (pdt_hold) and stays there:
 *   - the start returns after the bounded wait (about 2 s), not never,
 *     with the patch enabled and its transition in progress, reported on
 *     standard error with the thread that holds it;
 *   - rw_ctl_patch_dir() names the directory;
 *   - once the thread leaves, the control thread completes the
 *     transition: pdt_value() returns the patch's 2;
 *   - a child of fork() has the patch and its own start applies nothing;
 *     a second start (after rw_ctl_stop) does not apply the directory
 *     again.
 * Before, rw_ctl_start_opts did not exist and nothing read the directory.
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
}
#else

#include <rewire/ctl.h>
#include <rewire/livepatch.h>

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

atomic_int pdt_release, pdt_inside;

__attribute__((noinline)) int pdt_value(void);
__attribute__((noinline)) int pdt_value(void)
{
	__asm__ volatile("" ::: "memory");
	return 1;
}

__attribute__((noinline)) void pdt_hold(void);
__attribute__((noinline)) void pdt_hold(void)
{
	atomic_store(&pdt_inside, 1);
	while (!atomic_load(&pdt_release))
		usleep(1000);
	__asm__ volatile("" ::: "memory");
}

static void *holder(void *arg)
{
	(void)arg;
	pdt_hold();
	return NULL;
}

static void copy(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;

	if (in < 0)
		SKIP("%s not built", from);
	CHECK(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK_EQ(write(out, buf, (size_t)n), n);
	CHECK_OK(fchmod(out, 0644));
	close(in);
	close(out);
}

static char *slurp(const char *path)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	return buf;
}

int main(void)
{
	char tmp[] = "/tmp/rwpdt.XXXXXX", dir[PATH_MAX], path[PATH_MAX + 64];
	char got[PATH_MAX], errpath[PATH_MAX + 64];
	struct rw_ctl_options o = { .size = sizeof(o) };
	struct rw_patch_info info;
	struct rw_patch *p;
	pthread_t th;
	int64_t t0, ms;
	int saved, fd;
	char *log;

	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/patches", tmp);
	CHECK_OK(mkdir(dir, 0755));
	CHECK_OK(chmod(tmp, 0755));
	snprintf(path, sizeof(path), "%s/pdt_fix.so", dir);
	copy(PDT_DIR "/pdt_fix.so", path);
	snprintf(path, sizeof(path), "%s/ctl", tmp);
	setenv("REWIRE_CTL_DIR", path, 1);
	unsetenv("REWIRE_PATCH_DIR");

	CHECK_OK(pthread_create(&th, NULL, holder, NULL));
	while (!atomic_load(&pdt_inside))
		usleep(1000);
	CHECK_EQ(pdt_value(), 1);

	/* The start's reports, into a file. */
	snprintf(errpath, sizeof(errpath), "%s/stderr", tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(saved >= 0 && fd >= 0);
	CHECK(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	o.patch_dir = dir;
	t0 = rw_test_now_ns();
	CHECK_OK(rw_ctl_start_opts(&o));
	ms = (rw_test_now_ns() - t0) / 1000000;
	fflush(stderr);
	CHECK(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
	close(fd);
	close(saved);
	log = slurp(errpath);
	printf("start took %lld ms; it said: %s", (long long)ms, log);
	CHECK(ms >= 1500 && ms < 15000);
	CHECK(strstr(log, "patch dir "));
	CHECK(strstr(log, "pdt_fix.so: enabled, but its transition is not "
			  "complete after 2000 ms (thread "));

	CHECK_OK(rw_ctl_patch_dir(got, sizeof(got)));
	CHECK(!strcmp(got, dir));
	p = rw_patch_find("pdt_fix");
	CHECK(p);
	CHECK_OK(rw_patch_state(p, &info));
	CHECK_EQ(info.state, RW_PATCH_ENABLING);

	/* The control thread completes it once the holder left. */
	atomic_store(&pdt_release, 1);
	CHECK_OK(pthread_join(th, NULL));
	t0 = rw_test_now_ns();
	do {
		usleep(10000);
		CHECK_OK(rw_patch_state(p, &info));
	} while (info.state != RW_PATCH_ENABLED &&
		 rw_test_now_ns() - t0 < 20000000000ll);
	for (size_t i = 0; i < info.npending; i++)
		printf("pending: thread %d why %d %s\n",
		       (int)info.pending[i].tid, info.pending[i].why,
		       info.pending[i].func);
	CHECK_EQ(info.state, RW_PATCH_ENABLED);
	CHECK_EQ(pdt_value(), 2);

	/* A child of fork() has the patch, and applies nothing again. */
	{
		pid_t child = fork();
		int status;

		CHECK(child >= 0);
		if (child == 0) {
			int bad = rw_ctl_start() != 0 ||
				  rw_patch_list(NULL, 0) != 1 ||
				  pdt_value() != 2 ||
				  rw_ctl_patch_dir(got, sizeof(got)) != 0 ||
				  strcmp(got, dir) != 0 || rw_ctl_stop() != 0;

			_exit(bad);
		}
		CHECK_EQ(waitpid(child, &status, 0), child);
		CHECK(WIFEXITED(status));
		CHECK_EQ(WEXITSTATUS(status), 0);
	}

	/* Not applied again. */
	CHECK_OK(rw_ctl_stop());
	CHECK_OK(rw_ctl_start());
	CHECK_EQ(rw_patch_list(NULL, 0), 1);
	CHECK_OK(rw_ctl_patch_dir(got, sizeof(got)));
	CHECK(!strcmp(got, dir));
	CHECK_OK(rw_ctl_stop());

	snprintf(path, sizeof(path), "rm -rf %s", tmp);
	CHECK_EQ(system(path), 0);
	printf("PASS\n");
	return 0;
}
#endif
