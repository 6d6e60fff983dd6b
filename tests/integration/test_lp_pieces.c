/* SPDX-License-Identifier: MIT */
/*
 * Integration: what GCC makes of a function at -O2, and the code of a
 * patch that is not one of its replacements. liblpp_lib.so and the patches
 * are built with Debian's flags; first the test checks with nm that GCC
 * made the pieces it relies on (lpp_outer.cold, lpp_scale.constprop.0,
 * outer_new.cold, f2_new.cold): without them it would prove nothing.
 *
 *   1. Cold pieces in the consistency model (patch lpp_cold replaces
 *      lpp_outer and lpp_inner together; all old returns x + 11, all new
 *      x + 1021, old outer with new inner x + 1011, new outer with old
 *      inner x + 21):
 *      a. a thread blocked in read() inside the old lpp_outer.cold (no
 *         frame of lpp_outer: the piece is entered by a jump) keeps the
 *         enable open: pending ON_STACK in lpp_outer; once released its
 *         call returns the all-old 12, then the transition completes;
 *      b. a thread spinning in the new outer_new.cold (checked in rewire's
 *         signal handler) keeps the disable open; it returns all-new 1023;
 *      c. the same on the old side, enabling again: all-old 13.
 *   2. Unload checks the whole code of the patch (lpp_unload):
 *      a. a thread blocked in hold(), a helper of the patch that f1_new
 *         tail-called: the disable completes (no frame of a replacement),
 *         but rw_patch_unload is -EBUSY and the patch stays DISABLED; the
 *         thread returns 1006 and the unload then succeeds;
 *      b. a thread blocked in f2_new.cold keeps the disable open (pending
 *         in lpp_f2), unload is -EBUSY; released, it returns 2001.
 *   3. A reference into a library the program dlcloses (lpp_ref):
 *      lpp_refdso.so stays mapped after the program's dlclose while the
 *      patch is loaded, and the new lpp_refd keeps calling it (13); after
 *      disable and unload the library is gone.
 *   4. Clones: lpp_scale (only lpp_scale.constprop.0 exists) is refused,
 *      naming the clone; the clone named without RW_PATCH_FUNC_CLONE is
 *      refused; declared with it (a C++ patch) it is replaced.
 * An argument runs one part only: cold, unload, ref or clones.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("live patching needs the x86_64 or aarch64 backend");
}
#else

#include "lp_test.h"
#include "lpp.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LIB LPP_DIR "/liblpp_lib.so"

/* ---- The pieces exist ---------------------------------------------------- */

static void need_symbols(const char *file, const char *const *names, size_t n)
{
	char cmd[PATH_MAX + 64], line[512];
	bool found[8] = { false };
	FILE *f;

	CHECK(n <= 8);
#ifndef LPP_GCC
	SKIP("the pieces and clones are GCC's; another compiler built this");
#endif
	if (!LPP_NM[0] || access(LPP_NM, X_OK))
		SKIP("nm not found (%s): cannot check the compiler's pieces",
		     LPP_NM);
	snprintf(cmd, sizeof(cmd), "'%s' '%s'", LPP_NM, file);
	f = popen(cmd, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		const char *sym = strrchr(line, ' ');

		line[strcspn(line, "\n")] = '\0';
		for (size_t i = 0; sym && i < n; i++)
			found[i] |= !strcmp(sym + 1, names[i]);
	}
	CHECK_EQ(pclose(f), 0);
	for (size_t i = 0; i < n; i++) {
		if (found[i])
			continue;
		fprintf(stderr,
			"%s: the compiler made no %s: this test would prove "
			"nothing (another GCC? see test_lp_pieces.cmake)\n",
			file, names[i]);
		exit(1);
	}
}

/* ---- Calls in threads ---------------------------------------------------- */

struct call {
	int (*fn)(int);
	int arg, ret;
	_Atomic pid_t tid;
	pthread_t th;
};

static void *call_main(void *arg)
{
	struct call *c = arg;

	atomic_store(&c->tid, (pid_t)syscall(SYS_gettid));
	c->ret = c->fn(c->arg);
	return NULL;
}

static pid_t call_start(struct call *c, int (*fn)(int), int arg)
{
	memset(c, 0, sizeof(*c));
	c->fn = fn;
	c->arg = arg;
	CHECK_OK(pthread_create(&c->th, NULL, call_main, c));
	CHECK(LP_WAIT_UNTIL(atomic_load(&c->tid) != 0, lp_deadline_ms(5000)));
	return atomic_load(&c->tid);
}

/* Start @fn(@arg) and wait until it sleeps in read(). */
static void call_blocked(struct call *c, int (*fn)(int), int arg)
{
	CHECK(lp_wait_in_syscall(call_start(c, fn, arg), SYS_read));
}

/* Start @fn(@arg) and wait until its slow path has begun. */
static void call_spinning(struct call *c, int (*fn)(int), int arg)
{
	unsigned long notes = lpp_notes;

	__atomic_store_n(&lpp_go, 0, __ATOMIC_RELEASE);
	call_start(c, fn, arg);
	CHECK(LP_WAIT_UNTIL(lpp_notes != notes, lp_deadline_ms(5000)));
}

static int call_end(struct call *c)
{
	CHECK_OK(pthread_join(c->th, NULL));
	return c->ret;
}

static void release(int fd)
{
	CHECK_EQ(write(fd, "x", 1), 1);
}

/* @tid is pending in @p, on the stack in a function whose label has
 * @func. */
static bool pending_on(struct rw_patch *p, pid_t tid, const char *func)
{
	struct rw_patch_info info;

	CHECK_OK(rw_patch_state(p, &info));
	for (size_t i = 0; i < info.npending && i < RW_PATCH_INFO_THREADS; i++)
		if (info.pending[i].tid == tid)
			return info.pending[i].why == RW_PT_ON_STACK &&
			       strstr(info.pending[i].func, func);
	return false;
}

static void expect_load_error(const char *path, int err, const char *msg1,
			      const char *msg2)
{
	struct rw_patch *p = NULL;
	int r = rw_patch_load(path, 0, &p);

	if (r != err || !strstr(rw_patch_last_error(), msg1) ||
	    !strstr(rw_patch_last_error(), msg2)) {
		fprintf(stderr,
			"%s: got %d (%s) '%s', expected %d with '%s' "
			"and '%s'\n",
			path, r, rw_strerror(r), rw_patch_last_error(), err,
			msg1, msg2);
		exit(1);
	}
	CHECK(p == NULL);
}

/* ---- 1. Cold pieces ------------------------------------------------------ */

static void test_cold(void)
{
	struct rw_patch *p;
	struct call c;
	int fds[2];

	CHECK_OK(pipe(fds));
	lpp_fd = fds[0];
	p = lp_load(LPP_DIR "/lpp_cold.so", 0);

	/* a. Blocked in the old lpp_outer.cold. */
	call_blocked(&c, lpp_outer, -1);
	CHECK_EQ(lp_go(p, true, 300), -ETIMEDOUT);
	CHECK(pending_on(p, c.tid, "lpp_outer"));
	release(fds[1]);
	CHECK_EQ(call_end(&c), 12);
	CHECK_OK(rw_patch_wait(p, 5000));
	CHECK_EQ(lp_state(p), RW_PATCH_ENABLED);
	CHECK_EQ(lpp_outer(5), 1026);

	/* b. Spinning in the new outer_new.cold. */
	call_spinning(&c, lpp_outer, -2);
	CHECK_EQ(lp_go(p, false, 300), -ETIMEDOUT);
	CHECK(pending_on(p, c.tid, "lpp_outer"));
	__atomic_store_n(&lpp_go, 1, __ATOMIC_RELEASE);
	CHECK_EQ(call_end(&c), 1023);
	CHECK_OK(rw_patch_wait(p, 5000));
	CHECK_EQ(lp_state(p), RW_PATCH_DISABLED);
	CHECK_EQ(lpp_outer(5), 16);

	/* c. Spinning in the old lpp_outer.cold. */
	call_spinning(&c, lpp_outer, -2);
	CHECK_EQ(lp_go(p, true, 300), -ETIMEDOUT);
	CHECK(pending_on(p, c.tid, "lpp_outer"));
	__atomic_store_n(&lpp_go, 1, __ATOMIC_RELEASE);
	CHECK_EQ(call_end(&c), 13);
	CHECK_OK(rw_patch_wait(p, 5000));
	CHECK_EQ(lp_state(p), RW_PATCH_ENABLED);

	lp_disable_wait(p, 5000);
	CHECK_OK(rw_patch_unload(p));
	close(fds[0]);
	close(fds[1]);
	printf("cold pieces: ok\n");
}

/* ---- 2. Unload ----------------------------------------------------------- */

static void test_unload(void)
{
	struct rw_patch *p;
	struct call c;
	int f2[2], f3[2];

	CHECK_OK(pipe(f2));
	CHECK_OK(pipe(f3));
	lpp_fd2 = f2[0];
	lpp_fd3 = f3[0];
	p = lp_load(LPP_DIR "/lpp_unload.so", 0);
	lp_enable_wait(p, 5000);
	CHECK_EQ(lpp_f3(1), 3001);

	/* a. In a helper that a replacement tail-called. */
	call_blocked(&c, lpp_f1, 5);
	lp_disable_wait(p, 5000);
	CHECK_EQ(lpp_f1(5), 6);
	CHECK_EQ(rw_patch_unload(p), -EBUSY);
	CHECK(strstr(rw_patch_last_error(), "running its code") != NULL);
	CHECK_EQ(lp_state(p), RW_PATCH_DISABLED);
	release(f2[1]);
	CHECK_EQ(call_end(&c), 1006);

	/* b. In a replacement's .cold piece. */
	lp_enable_wait(p, 5000);
	call_blocked(&c, lpp_f2, -1);
	CHECK_EQ(lp_go(p, false, 300), -ETIMEDOUT);
	CHECK(pending_on(p, c.tid, "lpp_f2"));
	CHECK_EQ(rw_patch_unload(p), -EBUSY);
	release(f3[1]);
	CHECK_EQ(call_end(&c), 2001);
	CHECK_OK(rw_patch_wait(p, 5000));
	CHECK_EQ(lp_state(p), RW_PATCH_DISABLED);
	CHECK_OK(rw_patch_unload(p));
	CHECK(!lp_file_mapped("lpp_unload.so"));
	for (int i = 0; i < 2; i++) {
		close(f2[i]);
		close(f3[i]);
	}
	printf("unload: ok\n");
}

/* ---- 3. References ------------------------------------------------------- */

static void test_ref(void)
{
	void *h = dlopen(LPP_DIR "/lpp_refdso.so", RTLD_NOW | RTLD_LOCAL);
	struct rw_patch *p;

	CHECK(h != NULL);
	p = lp_load(LPP_DIR "/lpp_ref.so", 0);
	lp_enable_wait(p, 5000);
	CHECK_EQ(lpp_refd(4), 13);
	CHECK_EQ(dlclose(h), 0);
	CHECK(lp_file_mapped("lpp_refdso.so"));
	CHECK_EQ(lpp_refd(4), 13);
	lp_disable_wait(p, 5000);
	CHECK_EQ(lpp_refd(4), 4);
	CHECK_OK(rw_patch_unload(p));
	CHECK(!lp_file_mapped("lpp_refdso.so"));
	printf("references: ok\n");
}

/* ---- 4. Clones ----------------------------------------------------------- */

static void test_clones(void)
{
	struct rw_patch *p;

	expect_load_error(LPP_DIR "/lpp_clone_base.so", -RW_ERR_SYMBOL,
			  "clones of it: lpp_scale.constprop.0",
			  "another calling convention");
	expect_load_error(LPP_DIR "/lpp_clone_bad.so", -RW_ERR_NOT_PATCHABLE,
			  "is a clone", "RW_PATCH_FUNC_CLONE");
	CHECK_EQ(lpp_use_scale(2), 17);
	p = lp_load(LPP_DIR "/lpp_clone_ok.so", 0);
	lp_enable_wait(p, 5000);
	CHECK_EQ(lpp_use_scale(2), 19);
	lp_disable_wait(p, 5000);
	CHECK_EQ(lpp_use_scale(2), 17);
	CHECK_OK(rw_patch_unload(p));
	printf("clones: ok\n");
}

/* With an argument, only that part (cold, unload, ref, clones). */
static bool part(int argc, char **argv, const char *name)
{
	return argc < 2 || !strcmp(argv[1], name);
}

int main(int argc, char **argv)
{
	static const char *const lib[] = { "lpp_outer.cold",
					   "lpp_scale.constprop.0" };
	static const char *const cold[] = { "outer_new.cold" };
	static const char *const unload[] = { "f2_new.cold" };

	need_symbols(LIB, lib, 2);
	need_symbols(LPP_DIR "/lpp_cold.so", cold, 1);
	need_symbols(LPP_DIR "/lpp_unload.so", unload, 1);
	if (part(argc, argv, "cold"))
		test_cold();
	if (part(argc, argv, "unload"))
		test_unload();
	if (part(argc, argv, "ref"))
		test_ref();
	if (part(argc, argv, "clones"))
		test_clones();
	return 0;
}

#endif
