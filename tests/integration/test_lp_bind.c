/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 14): a patch bound to the build it was made for
 * (.rewire.bind; rewire_add_patch(... BIND <target>) runs `rewire
 * bind-patch`) loads into that build and is refused by any other, with
 * the process unchanged. Before, nothing tied a patch to a build: each
 * refusal below was a successful load.
 *
 * Each case runs one program of test_lp_bind.cmake (lp_bind/prog.c, which
 * does the checks: exact code, message, compute()'s bytes unchanged, old
 * result, patch unmapped) with one patch:
 *   - lpbd_a.so in A: loads, enabled works; the same patch again is
 *     refused (-EEXIST) and changes nothing, the first stays enabled;
 *   - lpbd_a.so in B (another build-id): RW_ERR_BUILD_ID, both ids shown;
 *   - lpbd_d.so (bound to D, no build-id) in D: loads; in C (no build-id,
 *     compute() changed): RW_ERR_BUILD_ID naming compute with both sizes
 *     and hashes; in A (which has a build-id): RW_ERR_BUILD_ID;
 *   - lpbd_libfix.so (bound to a library no program loads):
 *     RW_ERR_SYMBOL;
 *   - malformed bindings (unknown version, unknown record, upper-case
 *     hash, bad escape): RW_ERR_PATCH_FILE with the line.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("live patching needs the x86_64 or aarch64 backend");
}
#else

#include <rewire/common.h>

#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ID_A "0a0a0a0a0a0a0a0a"
#define ID_B "0b0b0b0b0b0b0b0b"

static void run(const char *prog, const char *mode, const char *patch, int code,
		const char *needles)
{
	char exe[512], path[512], codes[16];
	char *argv[] = { exe, (char *)mode, path, codes, (char *)needles, NULL };
	int status;
	pid_t pid;

	snprintf(exe, sizeof(exe), LPBD_DIR "/lpbd_prog_%s", prog);
	snprintf(path, sizeof(path), LPBD_DIR "/lpbd_%s.so", patch);
	snprintf(codes, sizeof(codes), "%d", code);
	if (needles == NULL)
		argv[3] = NULL;
	if (access(exe, X_OK) || access(path, R_OK))
		SKIP("%s or %s not built", exe, path);
	printf("--- %s in %s (%s)\n", patch, prog, mode);
	fflush(stdout);
	CHECK_OK(posix_spawn(&pid, exe, NULL, NULL, argv, environ));
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

int main(void)
{
	run("a", "good", "a", 0, NULL);
	run("b", "refuse", "a", RW_ERR_BUILD_ID,
	    "built for the main program|lpbd_prog_b|build-id " ID_A
	    "|the running one has build-id " ID_B "|rebuild the patch");
	run("d", "good", "d", 0, NULL);
	run("c", "refuse", "d", RW_ERR_BUILD_ID,
	    "main:compute|bytes (hash|the running one has|rebuild");
	run("a", "refuse", "d", RW_ERR_BUILD_ID,
	    "build-id none|the running one has build-id " ID_A);
	run("a", "refuse", "libfix", RW_ERR_SYMBOL,
	    "was built for lpbd_lib.so, which is not loaded in this process");
	run("a", "refuse", "bad_version", RW_ERR_PATCH_FILE,
	    ".rewire.bind line 1|unknown format version");
	run("a", "refuse", "bad_record", RW_ERR_PATCH_FILE,
	    ".rewire.bind line 3|unknown record 'symbol'");
	run("a", "refuse", "bad_hex", RW_ERR_PATCH_FILE,
	    ".rewire.bind line 3|16 lower-case hex digits");
	run("a", "refuse", "bad_escape", RW_ERR_PATCH_FILE,
	    ".rewire.bind line 2|'%' not followed by two hex digits");
	printf("ok\n");
	return 0;
}
#endif
