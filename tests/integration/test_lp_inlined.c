/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 12, point 2): a patch of a function that the compiler
 * inlined into callers used to load and enable with success while the
 * callers kept running their inlined copies of the old code. The loader
 * reads the target's DWARF and refuses, naming the callers.
 *
 * The program is built -O2 -g. scale() is a small static function: GCC
 * inlines it into caller_a() and caller_b(), and keeps an out-of-line copy
 * because its address is taken (scale_ptr). Checks:
 *   - lpi_scale.so (scale alone) is refused with -RW_ERR_INLINED, naming
 *     both callers; scale's entry is unchanged;
 *   - with RW_PATCH_LOAD_ALLOW_INLINED it loads, with a warning naming
 *     them; enabled, scale_ptr() runs the new code and caller_a() still
 *     the old one (what the refusal protects against);
 *   - lpi_all.so (scale with both callers) loads with no warning: the
 *     copies are replaced with their callers;
 *   - in lpi_dbg.so, whose DWARF is in a separate file named by
 *     .gnu_debuglink, dscale() inlined into lpi_dcaller() is refused too;
 *   - in lpi_nodbg.so, built without -g, the patch loads with the warning
 *     that inlining could not be checked;
 *   - the same through the control socket: `rewire patch` is refused
 *     naming the callers, enables with --allow-inlined showing the
 *     warning, and shows the "not checked" warning.
 */
#include "lp_test.h"
#include "lpi.h"

#include <rewire/ctl.h>

#include <dlfcn.h>
#include <string.h>
#include <sys/wait.h>

int caller_a(int x);
int caller_b(int x);
extern int (*volatile scale_ptr)(int);

/* Counted: a body of its own, so that each inlined copy keeps
 * instructions (and a DWARF entry) of its own. */
static volatile unsigned scale_calls;

static int scale(int x)
{
	scale_calls = scale_calls + 1;
	return x * 7;
}

int (*volatile scale_ptr)(int) = scale;

__attribute__((noinline)) int caller_a(int x)
{
	return scale(x) + 1;
}

__attribute__((noinline)) int caller_b(int x)
{
	return scale(x + 1) * 2;
}

static void expect_refused(const char *name, unsigned flags, int code,
			   const char *needles)
{
	struct rw_patch *p = (struct rw_patch *)0x1;
	char path[512];
	int err;

	lp_patch_path(path, sizeof(path), LPI_DIR "/lpi_", name);
	err = rw_patch_load(path, flags, &p);
	printf("%-14s %d (%s)\n               %s\n", name, err,
	       rw_strerror(err), rw_patch_last_error());
	CHECK_EQ(err, code);
	CHECK(p == (struct rw_patch *)0x1);
	lp_has_all(rw_patch_last_error(), needles);
	CHECK(!lp_file_mapped(path));
}

static struct rw_patch *load_warned(const char *name, unsigned flags,
				    const char *needles)
{
	struct rw_patch *p;
	char path[512];

	lp_patch_path(path, sizeof(path), LPI_DIR "/lpi_", name);
	p = lp_load(path, flags);
	printf("%-14s loaded\n               %s\n", name,
	       rw_patch_last_error());
	if (needles) {
		CHECK(!strncmp(rw_patch_last_error(), "warning: ", 9));
		lp_has_all(rw_patch_last_error(), needles);
	} else {
		CHECK(!strcmp(rw_patch_last_error(), "no error"));
	}
	return p;
}

/* Run `rewire ARGS...` against this process: its exit code, its output
 * (stdout and stderr) in @out. */
static int rewire_cmd(char *out, size_t size, const char *a1, const char *a2,
		      const char *a3)
{
	char pid[16], *argv[] = { (char *)REWIRE_TOOL, (char *)a1, pid,
				  (char *)a2,	       (char *)a3, NULL };
	size_t len = 0;
	ssize_t n;
	int fds[2], status;
	pid_t child;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	CHECK_EQ(pipe(fds), 0);
	child = fork();
	CHECK(child >= 0);
	if (!child) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		execv(REWIRE_TOOL, argv);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], out + len, size - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fds[0]);
	CHECK_EQ(waitpid(child, &status, 0), child);
	printf("$ rewire %s PID %s %s: exit %d\n%s", a1, a2, a3 ? a3 : "",
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The same through the control socket and the rewire command. */
static void test_cli(void)
{
	char dir[] = "/tmp/rw-lpi-XXXXXX", out[8192], path[512];

	CHECK(mkdtemp(dir));
	CHECK_EQ(setenv("REWIRE_CTL_DIR", dir, 1), 0);
	CHECK_EQ(rw_ctl_start(), 0);

	lp_patch_path(path, sizeof(path), LPI_DIR "/lpi_", "scale");
	CHECK_EQ(rewire_cmd(out, sizeof(out), "patch", path, NULL), 1);
	lp_has_all(out, "'scale' in the main program is inlined into 2 callers|"
			"caller_a|caller_b|--allow-inlined|RW_ERR_INLINED");
	CHECK(!rw_patch_find("lpi_scale"));

	CHECK_EQ(rewire_cmd(out, sizeof(out), "patch", path, "--allow-inlined"),
		 0);
	lp_has_all(out,
		   "rewire: warning: |allowed: 'scale' in the main program "
		   "is inlined into 2 callers|patch lpi_scale enabled");
	CHECK_EQ(scale_ptr(3), 121);
	CHECK_EQ(rewire_cmd(out, sizeof(out), "unpatch", "lpi_scale", NULL), 0);
	CHECK_EQ(scale_ptr(3), 21);

	lp_patch_path(path, sizeof(path), LPI_DIR "/lpi_", "dscale_nodbg");
	CHECK_EQ(rewire_cmd(out, sizeof(out), "patch", path, NULL), 0);
	lp_has_all(out, "rewire: warning: |inlining not checked: no debug "
			"information for|lpi_nodbg.so|patch lpi_dscale_nodbg "
			"enabled");
	CHECK_EQ(rewire_cmd(out, sizeof(out), "unpatch", "lpi_dscale_nodbg",
			    NULL),
		 0);
	CHECK_EQ(rw_ctl_stop(), 0);
	CHECK_EQ(rmdir(dir), 0);
}

int main(void)
{
	uint8_t entry[5];
	struct rw_patch *p;
	void *dbg, *nodbg;

#ifndef RW_BACKEND_PATCHING
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
#endif
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(60);
	CHECK_EQ(caller_a(3), 22);
	CHECK_EQ(caller_b(3), 56);
	CHECK_EQ(scale_ptr(3), 21);

	lp_entry_read((uintptr_t)scale_ptr, entry);
	expect_refused("scale", 0, -RW_ERR_INLINED,
		       "lpi_scale.so: 'scale' in the main program is inlined "
		       "into 2 callers|caller_a|caller_b|old code|"
		       "--allow-inlined");
	CHECK(lp_entry_is((uintptr_t)scale_ptr, entry));

	p = load_warned("scale", RW_PATCH_LOAD_ALLOW_INLINED,
			"allowed: 'scale' in the main program is inlined into "
			"2 callers|caller_a|caller_b");
	lp_enable_wait(p, 5000);
	/* The out-of-line copy is patched, the inlined ones are not. */
	CHECK_EQ(scale_ptr(3), 121);
	CHECK_EQ(caller_a(3), 22);
	lp_disable_wait(p, 5000);
	CHECK_EQ(rw_patch_unload(p), 0);

	p = load_warned("all", 0, NULL);
	CHECK_EQ(rw_patch_unload(p), 0);

	dbg = dlopen(LPI_DIR "/lpi_dbg.so", RTLD_NOW | RTLD_LOCAL);
	nodbg = dlopen(LPI_DIR "/lpi_nodbg.so", RTLD_NOW | RTLD_LOCAL);
	if (!dbg || !nodbg)
		fprintf(stderr, "%s\n", dlerror());
	CHECK(dbg && nodbg);
	expect_refused(
		"dscale_dbg", 0, -RW_ERR_INLINED,
		"'dscale' in " LPI_DIR "/lpi_dbg.so is inlined into 1 "
		"caller (1 copy): lpi_dcaller; it would keep running the "
		"old code");
	p = load_warned(
		"dscale_nodbg", 0,
		"inlining not checked: no debug information for " LPI_DIR
		"/lpi_nodbg.so");
	CHECK_EQ(rw_patch_unload(p), 0);
	test_cli();
	dlclose(nodbg);
	dlclose(dbg);
	alarm(0);
	printf("ok\n");
	return 0;
}
