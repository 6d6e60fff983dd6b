/* SPDX-License-Identifier: MIT */
/*
 * Integration: a daemon that starts as root and drops to nobody (memcached
 * -u, nginx, most packaged servers), patched before and after the drop.
 *
 * After setgroups/setgid/setuid the kernel clears the process's dumpable
 * flag: /proc/self/mem and /proc/self/task/TID/syscall then belong to root
 * and open() fails with EACCES, even from the process itself. rewire keeps
 * the /proc/self/mem descriptor it opened when it was loaded, and checks
 * the threads it may not look at from outside in its signal handler.
 *
 * The test (root; skipped otherwise) runs two daemons, each a fresh
 * process (this program run again), built with Debian's flags
 * (test_privdrop.cmake):
 *
 *   fresh   no code is written before the drop (the descriptor must be the
 *           one opened at start-up), then it forks a child after the drop;
 *   before  a static key and a live patch are used as root, then again
 *           after the drop.
 *
 * Each daemon has a thread blocked in read() on a pipe, one in
 * epoll_wait() (it takes EINTR and waits again), and NWORKERS threads that
 * call pd_compute() without pause. After the drop (checked: uid 65534, not
 * dumpable, /proc/self/mem and the reader's syscall file refused):
 *
 * - a static key flips (the branch's code changes) and flips back;
 * - the live patch of pd_compute() loads (from a copy nobody may read),
 *   enables, and the transition completes within rw_patch_wait()'s
 *   timeout although threads sleep in system calls; disabling restores the
 *   entry's original bytes;
 * - pd_compute() is graph-traced (its symbols read from the executable
 *   after the drop) and detached: its bytes are the original ones again;
 * - every result any worker got is exactly the old or the new value, and
 *   in the stable phases the right one;
 * - the blocked threads get their byte and their event at the end.
 *
 * The child forked after the drop (fresh) may not open /proc/self/mem and
 * must not write through the parent's descriptor (it would write the
 * parent's code): a key flip there fails with -RW_ERR_NOT_DUMPABLE and
 * changes nothing in either process, enabling the patch fails with the
 * same code and a rw_patch_last_error() that says so, and with the
 * mprotect policy allowed the flip works in the child alone.
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
}
#else

#include <rewire/ftrace.h>
#include <rewire/static_key.h>
#include <rewire/text_poke.h>

#include "lp_test.h"
#include "pd.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 4
#define WAIT_MS 10000
#define STABLE_CALLS 1000
#define NOBODY 65534

long pd_compute(long x);

/*
 * The bug: the wrong constants (PD_OLD); the patch has PD_NEW. noipa: at
 * -O2 GCC finds the function const and reuses a result, or moves a call
 * across the workers' phase loads; -flive-patching=inline-clone keeps
 * callers from depending on a body the same way.
 */
__attribute__((noipa)) long pd_compute(long x)
{
	return PD_OLD(x);
}

RW_DEFINE_STATIC_KEY_FALSE(pd_key);

__attribute__((noinline)) static int pd_keyed(void)
{
	if (rw_static_branch_unlikely(pd_key))
		return 1;
	return 0;
}

/* ---- Threads ------------------------------------------------------------- */

static _Atomic int phase;

struct worker {
	pthread_t t;
	_Atomic long calls;
	_Atomic long in_phase[LP_NPHASES][2]; /* by result side */
	_Atomic long bad, wrong;
	long first_bad;
};

static struct worker workers[NWORKERS];

static int phase_side(int ph)
{
	return ph == LP_ENABLED				 ? 1
	       : ph == LP_ENABLING || ph == LP_DISABLING ? -1
							 : 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	long x = 0;

	while (atomic_load(&phase) != LP_STOP) {
		int b = atomic_load(&phase), a, side;
		long r = pd_compute(++x);

		a = atomic_load(&phase);
		if (r == PD_OLD(x)) {
			side = 0;
		} else if (r == PD_NEW(x)) {
			side = 1;
		} else {
			if (atomic_fetch_add(&w->bad, 1) == 0)
				w->first_bad = r;
			continue;
		}
		if (a == b) {
			atomic_fetch_add(&w->in_phase[b][side], 1);
			if (phase_side(b) >= 0 && phase_side(b) != side)
				atomic_fetch_add(&w->wrong, 1);
		}
		atomic_fetch_add(&w->calls, 1);
	}
	return NULL;
}

static int pipefd[2], epfd, evfd;
static _Atomic pid_t reader_tid, poller_tid;
static ssize_t reader_ret;
static char reader_byte;
static _Atomic long poller_eintr;
static _Atomic int reader_done;
static int poller_ret;

static void *reader_main(void *arg)
{
	(void)arg;
	atomic_store(&reader_tid, gettid());
	reader_ret = read(pipefd[0], &reader_byte, 1);
	atomic_store(&reader_done, 1);
	return NULL;
}

static void *poller_main(void *arg)
{
	struct epoll_event ev;
	int n;

	(void)arg;
	atomic_store(&poller_tid, gettid());
	/*
	 * A server's loop: a signal ends epoll_wait() with EINTR (the kernel
	 * does not restart it); wait again. In a frame pointer build a thread
	 * in epoll_wait() cannot be unwound from outside and is not signalled
	 * for it (doc/LIVEPATCH.md, Limits): before the drop, such a loop
	 * calls rw_patch_quiescent() when it wakes, which is the documented
	 * remedy. After the drop every blocked thread is signalled.
	 */
	while ((n = epoll_wait(epfd, &ev, 1, 250)) <= 0) {
		if (n < 0 && errno != EINTR) {
			poller_ret = -errno;
			return NULL;
		}
		if (n < 0)
			atomic_fetch_add(&poller_eintr, 1);
		if (LP_FRAME_POINTERS_BUILD)
			rw_patch_quiescent();
	}
	poller_ret = n;
	return NULL;
}

/* Wait until every worker made @n calls inside phase @ph. */
static void wait_stable_calls(int ph, long n)
{
	uint64_t deadline = lp_deadline_ms(10000);

	for (int i = 0; i < NWORKERS; i++) {
		struct worker *w = &workers[i];

		if (!LP_WAIT_UNTIL(
			    atomic_load(&w->in_phase[ph][0]) +
					    atomic_load(&w->in_phase[ph][1]) >=
				    n,
			    deadline)) {
			fprintf(stderr,
				"worker %d: too few calls in phase %d\n", i,
				ph);
			exit(1);
		}
	}
}

/* ---- Rewire, before and after the drop ----------------------------------- */

static const char *who;

static void key_flip(void)
{
	CHECK_EQ(pd_keyed(), 0);
	CHECK_OK(rw_static_key_enable(&pd_key));
	CHECK_EQ(pd_keyed(), 1);
	CHECK_OK(rw_static_key_disable(&pd_key));
	CHECK_EQ(pd_keyed(), 0);
	printf("  %s: static key flipped on and off\n", who);
}

static void go(struct rw_patch *p, bool enable)
{
	struct rw_patch_info info;
	uint64_t t0 = rw_test_now_ns();
	int err;

	atomic_store(&phase, enable ? LP_ENABLING : LP_DISABLING);
	err = lp_go(p, enable, WAIT_MS);
	if (err) {
		fprintf(stderr, "%s: %s: %s: %s\n", who,
			enable ? "enable" : "disable", rw_strerror(err),
			rw_patch_last_error());
		if (!rw_patch_state(p, &info))
			for (size_t i = 0;
			     i < info.npending && i < RW_PATCH_INFO_THREADS;
			     i++)
				fprintf(stderr, "  pending tid %d why %d\n",
					(int)info.pending[i].tid,
					info.pending[i].why);
		exit(1);
	}
	atomic_store(&phase, enable ? LP_ENABLED : LP_DISABLED);
	CHECK_OK(rw_patch_state(p, &info));
	CHECK_EQ(info.state, enable ? RW_PATCH_ENABLED : RW_PATCH_DISABLED);
	CHECK_EQ(info.forced, 0);
	CHECK_EQ(info.threads_switched, info.threads_total);
	CHECK(info.threads_total >= NWORKERS + 3);
	printf("  %s: %s + wait %.3f ms, %zu threads switched in %u "
	       "round(s)\n",
	       who, enable ? "enable" : "disable",
	       (double)(rw_test_now_ns() - t0) / 1e6, info.threads_switched,
	       info.attempts);
}

static void patch_cycle(struct rw_patch *p)
{
	const uintptr_t fn = (uintptr_t)pd_compute;

	CHECK(lp_entry_is_nops(fn));
	go(p, true);
	CHECK(lp_in_object(lp_entry_target(fn), "privdrop_patch.so"));
	CHECK_EQ(pd_compute(3), PD_NEW(3));
	wait_stable_calls(LP_ENABLED, STABLE_CALLS);
	go(p, false);
	CHECK(lp_entry_is_nops(fn));
	CHECK_EQ(pd_compute(3), PD_OLD(3));
	wait_stable_calls(LP_DISABLED, STABLE_CALLS);
}

static void drop_privileges(void)
{
	char path[64];
	int fd;

	CHECK(setgroups(0, NULL) == 0);
	CHECK(setgid(NOBODY) == 0);
	CHECK(setuid(NOBODY) == 0);
	CHECK_EQ(getuid(), NOBODY);
	CHECK_EQ(geteuid(), NOBODY);
	if (prctl(PR_GET_DUMPABLE) != 0) {
		/* fs.suid_dumpable = 1: the kernel left it dumpable. */
		fprintf(stderr, "SKIP: still dumpable after setuid "
				"(fs.suid_dumpable)\n");
		exit(77);
	}
	/* What rewire is up against: its own process's files refused. */
	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	CHECK(fd < 0 && errno == EACCES);
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall",
		 (int)atomic_load(&reader_tid));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd < 0 && errno == EACCES);
	printf("  %s: dropped to uid %d, not dumpable, /proc/self/mem and "
	       "/proc/self/task/TID/syscall refused (EACCES)\n",
	       who, NOBODY);
}

/* A child forked after the drop: no /proc/self/mem of its own. */
static void forked_child(struct rw_patch *p)
{
	pid_t c;
	int st;

	fflush(stdout);
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		int err = rw_static_key_enable(&pd_key);

		if (err != -RW_ERR_NOT_DUMPABLE) {
			fprintf(stderr, "child: key enable: %d (%s)\n", err,
				rw_strerror(err));
			_exit(1);
		}
		if (pd_keyed() != 0 || rw_static_key_enabled(&pd_key)) {
			fprintf(stderr, "child: the failed flip changed the "
					"key\n");
			_exit(1);
		}
		err = rw_patch_enable(p);
		if (err != -RW_ERR_NOT_DUMPABLE ||
		    !strstr(rw_patch_last_error(), "not dumpable")) {
			fprintf(stderr, "child: patch enable: %d (%s): %s\n",
				err, rw_strerror(err), rw_patch_last_error());
			_exit(1);
		}
		if (lp_state(p) != RW_PATCH_DISABLED ||
		    !lp_entry_is_nops((uintptr_t)pd_compute)) {
			fprintf(stderr, "child: the failed enable changed "
					"the patch\n");
			_exit(1);
		}
		printf("  child forked after the drop: %s\n    %s\n",
		       rw_strerror(err), rw_patch_last_error());
		rw_text_set_policy(RW_TEXT_ALLOW_MPROTECT);
		err = rw_static_key_enable(&pd_key);
		if (err || pd_keyed() != 1) {
			fprintf(stderr,
				"child: with the mprotect policy: %d "
				"(%s)\n",
				err, rw_strerror(err));
			_exit(1);
		}
		printf("  child: with RW_TEXT_ALLOW_MPROTECT the key flips\n");
		fflush(stdout);
		_exit(0);
	}
	CHECK(waitpid(c, &st, 0) == c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Nothing reached the parent's code. */
	CHECK_EQ(pd_keyed(), 0);
	CHECK(!rw_static_key_enabled(&pd_key));
	CHECK(lp_entry_is_nops((uintptr_t)pd_compute));
}

/*
 * Function tracing after the drop: pd_compute, which the workers call
 * without pause, graph-traced while the reader sleeps in read() and the
 * poller in epoll_wait(); detach restores its exact bytes.
 */
static _Atomic long ft_entries, ft_returns;

static void ft_entry(void *data, const struct rw_ftrace_func *f,
		     uintptr_t caller, unsigned depth)
{
	(void)data;
	(void)f;
	(void)caller;
	(void)depth;
	atomic_fetch_add(&ft_entries, 1);
}

static void ft_return(void *data, const struct rw_ftrace_func *f,
		      uintptr_t caller, uint64_t ns, unsigned depth)
{
	(void)data;
	(void)f;
	(void)caller;
	(void)ns;
	(void)depth;
	atomic_fetch_add(&ft_returns, 1);
}

static void ftrace_cycle(void)
{
	const char *pat[] = { "pd_compute" };
	struct rw_ftrace_probe probe = { ft_entry, ft_return, NULL };
	struct rw_ftrace *t;
	uint8_t before[16];

	memcpy(before, (const void *)pd_compute, sizeof(before));
	CHECK_OK(rw_ftrace_attach(pat, 1, &probe, 0, &t));
	CHECK(memcmp(before, (const void *)pd_compute, sizeof(before)) != 0);
	CHECK(LP_WAIT_UNTIL(atomic_load(&ft_returns) >= 1000,
			    lp_deadline_ms(10000)));
	CHECK_OK(rw_ftrace_detach(t));
	CHECK(memcmp(before, (const void *)pd_compute, sizeof(before)) == 0);
	CHECK(atomic_load(&ft_entries) >= atomic_load(&ft_returns));
	printf("  %s: pd_compute graph-traced (%ld entries, %ld returns), "
	       "its bytes restored\n",
	       who, atomic_load(&ft_entries), atomic_load(&ft_returns));
}

/* epoll_wait() is epoll_pwait on aarch64, which has no epoll_wait call. */
static bool is_epoll_wait(long nr)
{
#ifdef SYS_epoll_wait
	if (nr == SYS_epoll_wait)
		return true;
#endif
	return nr == SYS_epoll_pwait;
}

static int daemon_main(const char *mode, const char *patch)
{
	bool before = strcmp(mode, "before") == 0;
	struct epoll_event ev = { .events = EPOLLIN };
	pthread_t rt, pt;
	struct rw_patch *p = NULL;
	uint64_t one = 1;

	who = mode;
	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
	CHECK((epfd = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	CHECK((evfd = eventfd(0, EFD_CLOEXEC)) >= 0);
	CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev) == 0);
	CHECK(pthread_create(&rt, NULL, reader_main, NULL) == 0);
	CHECK(pthread_create(&pt, NULL, poller_main, NULL) == 0);
	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_create(&workers[i].t, NULL, worker_main,
				     &workers[i]) == 0);
	while (!atomic_load(&reader_tid) || !atomic_load(&poller_tid))
		usleep(1000);
	CHECK(lp_wait_in_syscall(reader_tid, SYS_read));
	CHECK(LP_WAIT_UNTIL(is_epoll_wait(lp_syscall_of(poller_tid)),
			    lp_deadline_ms(5000)));
	wait_stable_calls(LP_BEFORE, STABLE_CALLS);

	if (before) {
		key_flip();
		p = lp_load(patch, 0);
		patch_cycle(p);
	}
	drop_privileges();
	who = before ? "before, after the drop" : "fresh, after the drop";
	key_flip();
	if (!p)
		p = lp_load(patch, 0);
	patch_cycle(p);
	ftrace_cycle();
	if (!before)
		forked_child(p);

	atomic_store(&phase, LP_STOP);
	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_join(workers[i].t, NULL) == 0);
	/* The reader slept in read() through every transition (signalled
	 * after the drop, the call restarted). */
	CHECK(!atomic_load(&reader_done));
	CHECK(write(pipefd[1], "x", 1) == 1);
	CHECK(write(evfd, &one, sizeof(one)) == sizeof(one));
	CHECK(pthread_join(rt, NULL) == 0);
	CHECK(pthread_join(pt, NULL) == 0);
	printf("  %s: reader read() = %zd ('%c'); poller epoll_wait() = %d "
	       "after %ld EINTR\n",
	       mode, reader_ret, reader_byte, poller_ret,
	       atomic_load(&poller_eintr));
	CHECK_EQ(reader_ret, 1);
	CHECK_EQ(reader_byte, 'x');
	CHECK_EQ(poller_ret, 1);
	for (int i = 0; i < NWORKERS; i++) {
		struct worker *w = &workers[i];

		if (atomic_load(&w->bad) || atomic_load(&w->wrong)) {
			fprintf(stderr,
				"worker %d: %ld results neither old nor new "
				"(first %ld), %ld of the wrong side in a "
				"stable phase\n",
				i, atomic_load(&w->bad), w->first_bad,
				atomic_load(&w->wrong));
			return 1;
		}
		CHECK(atomic_load(&w->in_phase[LP_ENABLED][1]) >= STABLE_CALLS);
	}
	CHECK_OK(rw_patch_unload(p));
	printf("  %s: ok\n", mode);
	return 0;
}

/* ---- The test: run each daemon as a fresh process ------------------------ */

static char tmpdir[64];

/* A copy of the patch that nobody may read, as a package would install. */
static void copy_patch(const char *from, char *to, size_t len)
{
	char buf[65536];
	int in, out;
	ssize_t n;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rewire-privdrop-XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	CHECK(chmod(tmpdir, 0755) == 0);
	snprintf(to, len, "%s/privdrop_patch.so", tmpdir);
	CHECK((in = open(from, O_RDONLY | O_CLOEXEC)) >= 0);
	CHECK((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) >=
	      0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK(write(out, buf, (size_t)n) == n);
	CHECK(n == 0);
	CHECK(fchmod(out, 0644) == 0);
	CHECK(close(in) == 0 && close(out) == 0);
}

static int run(const char *mode, const char *patch)
{
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pid_t c;
	int st;

	CHECK(n > 0);
	self[n] = '\0';
	printf("test_privdrop %s:\n", mode);
	fflush(stdout);
	c = fork();
	CHECK(c >= 0);
	if (c == 0) {
		execl(self, self, mode, patch, (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(c, &st, 0) == c);
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "%s: killed by signal %d\n", mode,
			WTERMSIG(st));
		return 1;
	}
	return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
	char patch[128];
	int r;

	if (argc == 3)
		return daemon_main(argv[1], argv[2]);
	if (geteuid() != 0)
		SKIP("needs root (it drops to uid %d)", NOBODY);
	copy_patch(PD_PATCH, patch, sizeof(patch));
	r = run("fresh", patch);
	if (r == 0)
		r = run("before", patch);
	CHECK(unlink(patch) == 0);
	CHECK(rmdir(tmpdir) == 0);
	if (r == 0)
		printf("test_privdrop: ok\n");
	return r;
}

#endif /* RW_BACKEND_PATCHING */
