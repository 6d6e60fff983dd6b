// SPDX-License-Identifier: MIT
/*
 * rewire run [--lib PATH] [--patch-dir DIR] [--] CMD [ARGS...]: execute CMD
 * with librewire preloaded and REWIRE_CTL=1, so that its control server
 * starts; with --patch-dir, REWIRE_PATCH_DIR=DIR (absolute), so that the
 * server applies the patches of DIR before main() (rewire/ctl.h).
 *
 * librewire, first that exists: --lib; $REWIRE_LIB; the installed layout
 * <dir of this executable>/../LIBDIR/librewire.so.SOVERSION; the library
 * of the build tree this command was built in (REWIRE_BUILD_LIB).
 */
#include "rewire.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OPT_LIB = 10, OPT_PATCH_DIR };
static const struct opt run_opts[] = {
	{ "lib", 0, true, OPT_LIB },
	{ "patch-dir", 0, true, OPT_PATCH_DIR },
	{ NULL, 0, false, 0 },
};

static bool lib_ok(const char *path)
{
	return path && *path && access(path, R_OK) == 0;
}

/* The librewire to preload into @out, or false (with the places tried in
 * @tried). */
static bool find_lib(const char *opt, char *out, size_t size, char *tried,
		     size_t tsize)
{
	const char *env = getenv("REWIRE_LIB");
	char exe[PATH_MAX], cand[PATH_MAX];
	ssize_t n;

	tried[0] = '\0';
	if (opt) {
		snprintf(tried, tsize, "--lib %s", opt);
		if (!lib_ok(opt))
			return false;
		snprintf(out, size, "%s", opt);
		return true;
	}
	if (env && *env) {
		snprintf(tried, tsize, "$REWIRE_LIB (%s)", env);
		if (!lib_ok(env))
			return false;
		snprintf(out, size, "%s", env);
		return true;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		if (snprintf(cand, sizeof(cand), "%s/../%s/librewire.so.%s",
			     exe, REWIRE_LIBDIR,
			     REWIRE_SOVERSION) >= (int)sizeof(cand))
			cand[0] = '\0';
		snprintf(tried, tsize, "%s", cand);
		if (lib_ok(cand)) {
			/* <prefix>/lib/librewire.so.N: the directory made
			 * canonical, the versioned name kept. */
			char *dir = strrchr(cand, '/'), real[PATH_MAX];

			*dir = '\0';
			if (!realpath(cand, real) ||
			    snprintf(out, size, "%s/%s", real, dir + 1) >=
				    (int)size) {
				*dir = '/';
				snprintf(out, size, "%s", cand);
			}
			return true;
		}
	}
#ifdef REWIRE_BUILD_LIB
	{
		size_t len = strlen(tried);

		snprintf(tried + len, tsize - len, "%s%s", len ? ", " : "",
			 REWIRE_BUILD_LIB);
		if (lib_ok(REWIRE_BUILD_LIB)) {
			snprintf(out, size, "%s", REWIRE_BUILD_LIB);
			return true;
		}
	}
#endif
	return false;
}

int cmd_run(int argc, char **argv)
{
	struct optv v;
	char lib[PATH_MAX], tried[3 * PATH_MAX];
	const char *old;
	char *preload;
	int ret = opts_parse(argc, argv, run_opts, &v, true);

	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (!v.npos)
		return usage_error("missing CMD");
	if (!find_lib(v.set[OPT_LIB] ? v.arg[OPT_LIB] : NULL, lib, sizeof(lib),
		      tried, sizeof(tried)))
		return fail(EX_FAIL, -ENOENT,
			    "run: librewire not found (tried %s); set "
			    "REWIRE_LIB or use --lib PATH",
			    tried);
	if (strchr(lib, ' ') || strchr(lib, ':'))
		return fail(EX_FAIL, -EINVAL,
			    "run: %s: LD_PRELOAD cannot hold a path with a "
			    "space or a colon",
			    lib);

	if (v.set[OPT_PATCH_DIR]) {
		/* Absolute: CMD may change its directory before it starts
		 * the server. Checked here only for existence; the process
		 * checks owner and mode itself. */
		char dir[PATH_MAX];
		struct stat st;

		if (!realpath(v.arg[OPT_PATCH_DIR], dir) || stat(dir, &st))
			return fail(EX_FAIL, -errno, "run: --patch-dir %s: %s",
				    v.arg[OPT_PATCH_DIR], strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return fail(EX_FAIL, -ENOTDIR,
				    "run: --patch-dir %s: not a directory",
				    v.arg[OPT_PATCH_DIR]);
		if (setenv("REWIRE_PATCH_DIR", dir, 1))
			return fail(EX_FAIL, -errno, "run: setenv: %s",
				    strerror(errno));
	}
	old = getenv("LD_PRELOAD");
	preload = old && *old ? xasprintf("%s:%s", lib, old)
			      : xasprintf("%s", lib);
	if (setenv("LD_PRELOAD", preload, 1) || setenv("REWIRE_CTL", "1", 1)) {
		ret = fail(EX_FAIL, -errno, "run: setenv: %s", strerror(errno));
		free(preload);
		return ret;
	}
	free(preload);
	fflush(NULL);
	execvp(v.pos[0], v.pos);
	ret = errno;
	if (ret == ENOENT)
		return fail(EX_NOTFOUND, -ret, "run: %s: command not found",
			    v.pos[0]);
	return fail(EX_NOEXEC, -ret, "run: %s: %s", v.pos[0], strerror(ret));
}
