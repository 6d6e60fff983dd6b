/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the live-patching tests (test_lp_*, torture_lp_churn).
 * Every helper is static inline: each test stays one translation unit. C
 * and C++ (test_lp_unwind_cxx.cc). Checks fail through check.h (exit 1);
 * the helpers a forked child uses (lp_syscall_of, lp_ctxt_switches,
 * lp_wait_in_syscall, lp_go) report instead of exiting.
 *
 * The entry of a patchable function (5 NOPs, after an endbr64 if any; on
 * aarch64 two NOP instructions, after a BTI c if any: the first becomes a
 * B, the far stub is "LDR X16, #8; BR X16; .quad target"):
 *   lp_entry_sled(fn)          its 5 bytes
 *   lp_entry_read(fn, out)     copy them
 *   lp_entry_is(fn, bytes)     they are these 5 bytes
 *   lp_entry_is_nops(fn)       they are the original NOPs
 *   lp_rel32_target(at)        target of "e9 rel32" at @at, or 0
 *   lp_stub_target(at)         target of the far stub "ff 25 00000000
 *                              abs64" (jmp *0(%rip)) at @at, or 0
 *   lp_jump_target(at)         either, or 0
 *   lp_entry_jmp(fn)           where the entry's jmp rel32 goes, or 0
 *   lp_entry_target(fn)        the same, through a far stub if it is one
 * Mappings (/proc/self/maps; the loader maps a patch through
 * /proc/self/fd/N, so dladdr() does not name it):
 *   lp_mapping_path(addr, out, len)  the file mapped at @addr ("" if none)
 *   lp_in_object(addr, name)         that file's path contains @name
 *   lp_file_mapped(name)             a file is mapped whose path is @name
 *                                    or, if @name has no '/', whose base
 *                                    name is @name
 * Threads (/proc/self/task/TID):
 *   lp_syscall_of(tid)         the system call it is blocked in, -1 when
 *                              running, -2 when there is no such thread
 *   lp_ctxt_switches(tid)      voluntary plus involuntary context
 *                              switches (they move whenever a blocked
 *                              thread is woken, even by a signal it then
 *                              ignores), -1 when unreadable
 *   lp_wait_in_syscall(tid, nr)  wait until it sleeps in @nr; false after
 *                              5 s
 * Messages: lp_has_all(msg, "a|b|c") checks that @msg holds a, b and c.
 * Waiting: LP_WAIT_UNTIL(cond, deadline_ns) polls @cond every ms until it
 * holds (true) or rw_test_now_ns() passes @deadline_ns (false);
 * lp_deadline_ms(ms) is the deadline @ms from now (times
 * rw_test_time_scale(), as are lp_go()'s waits).
 * LP_FRAME_POINTERS_BUILD: whether the test's .cmake hook set
 * LP_FRAME_POINTERS (code built with frame pointers: the sanitizer builds).
 * enum lp_phase: the phases of an enable and a disable, for the oracle of
 * the threads that call a patched function through them.
 * Patches (rewire/livepatch.h):
 *   lp_patch_path(buf, len, stem, name)  "<stem><name>.so"
 *   lp_load(path, flags)       rw_patch_load, or fail with the error
 *   lp_new_func_of(path, i)    the new function of the i-th entry of the
 *                              loaded patch @path (its descriptor)
 *   lp_state(p)                rw_patch_state(p)'s state
 *   lp_go(p, enable, ms)       start a transition and wait: 0 or the first
 *                              error
 *   lp_enable_wait(p, ms)      lp_go() that must succeed and end ENABLED
 *   lp_disable_wait(p, ms)     the same, to DISABLED
 */
#ifndef REWIRE_TEST_LP_TEST_H
#define REWIRE_TEST_LP_TEST_H

#include <rewire/livepatch.h>
#include <rewire/text_poke.h>

#include "check.h"
#include "crash_report.h"
#include "wait_child.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <ucontext.h>
#include <unistd.h>

#ifdef LP_FRAME_POINTERS
#define LP_FRAME_POINTERS_BUILD true
#else
#define LP_FRAME_POINTERS_BUILD false
#endif

/* The phases of a test that enables and disables a patch while threads
 * call the patched function: what a call made inside one phase returns. */
enum lp_phase {
	LP_BEFORE,    /* stable: old */
	LP_ENABLING,  /* either */
	LP_ENABLED,   /* stable: new */
	LP_DISABLING, /* either */
	LP_DISABLED,  /* stable: old */
	LP_STOP,
	LP_NPHASES
};

/* ---- The entry ------------------------------------------------------------ */

#if defined(__aarch64__)
static inline uint32_t lp_insn_at(uintptr_t at)
{
	return *(const volatile uint32_t *)at;
}
#endif

static inline const volatile uint8_t *lp_entry_sled(uintptr_t fn)
{
	const volatile uint8_t *p = (const volatile uint8_t *)fn;

#if defined(__aarch64__)
	if (lp_insn_at(fn) == 0xd503245fu || lp_insn_at(fn) == 0xd50324dfu)
		p += 4; /* bti c, bti jc */
#else
	if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa)
		p += 4;
#endif
	return p;
}

static inline void lp_entry_read(uintptr_t fn, uint8_t out[5])
{
	const volatile uint8_t *s = lp_entry_sled(fn);

	for (int i = 0; i < 5; i++)
		out[i] = s[i];
}

static inline bool lp_entry_is(uintptr_t fn, const uint8_t bytes[5])
{
	uint8_t now[5];

	lp_entry_read(fn, now);
	return memcmp(now, bytes, 5) == 0;
}

static inline bool lp_entry_is_nops(uintptr_t fn)
{
#if defined(__aarch64__)
	uintptr_t s = (uintptr_t)lp_entry_sled(fn);

	return lp_insn_at(s) == 0xd503201fu && lp_insn_at(s + 4) == 0xd503201fu;
#else
	static const uint8_t nops[5] = { 0x90, 0x90, 0x90, 0x90, 0x90 };

	return lp_entry_is(fn, nops);
#endif
}

#if defined(__aarch64__)
/* The target of the B at @at, or 0 (the name is x86-64's "jmp rel32"). */
static inline uintptr_t lp_rel32_target(uintptr_t at)
{
	uint32_t i = lp_insn_at(at);
	int64_t off;

	if ((i & 0xfc000000u) != 0x14000000u)
		return 0;
	off = (int64_t)((uint64_t)(i & 0x3ffffffu) << 38) >> 36;
	return at + (uintptr_t)off;
}

/* The far stub "LDR X16, #8; BR X16; .quad target" at @at, or 0. */
static inline uintptr_t lp_stub_target(uintptr_t at)
{
	if (lp_insn_at(at) != 0x58000050u || lp_insn_at(at + 4) != 0xd61f0200u)
		return 0;
	return *(const volatile uintptr_t *)(at + 8);
}
#else
static inline uintptr_t lp_rel32_target(uintptr_t at)
{
	const volatile uint8_t *p = (const volatile uint8_t *)at;
	uint8_t b[4];
	int32_t rel;

	if (p[0] != 0xe9)
		return 0;
	for (int i = 0; i < 4; i++)
		b[i] = p[1 + i];
	memcpy(&rel, b, 4);
	return at + 5 + (uintptr_t)(intptr_t)rel;
}

static inline uintptr_t lp_stub_target(uintptr_t at)
{
	const volatile uint8_t *p = (const volatile uint8_t *)at;
	uint8_t b[8];
	uintptr_t abs;

	if (p[0] != 0xff || p[1] != 0x25 || p[2] || p[3] || p[4] || p[5])
		return 0;
	for (int i = 0; i < 8; i++)
		b[i] = p[6 + i];
	memcpy(&abs, b, 8);
	return abs;
}
#endif

static inline uintptr_t lp_jump_target(uintptr_t at)
{
	uintptr_t t = lp_rel32_target(at);

	return t ? t : lp_stub_target(at);
}

static inline uintptr_t lp_entry_jmp(uintptr_t fn)
{
	return lp_rel32_target((uintptr_t)lp_entry_sled(fn));
}

static inline uintptr_t lp_entry_target(uintptr_t fn)
{
	uintptr_t at = lp_entry_jmp(fn), t;

	/* A stub "ff 25" leads on; a dispatcher does not start with one. */
	if (at && (t = lp_stub_target(at)) != 0)
		at = t;
	return at;
}

/* ---- Mappings ------------------------------------------------------------- */

/* The path field of a /proc/self/maps line (newline cut; "" for an
 * anonymous mapping) and the range it maps; NULL if the line is not one. */
static inline const char *lp_maps_line(char *line, uintptr_t *lo, uintptr_t *hi)
{
	unsigned long l, h;
	int pos = 0;

	if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &l, &h, &pos) < 2)
		return NULL;
	*lo = l;
	*hi = h;
	line[strcspn(line, "\n")] = 0;
	return pos > 0 ? line + pos : "";
}

static inline void lp_mapping_path(uintptr_t addr, char *out, size_t len)
{
	char line[PATH_MAX + 256];
	FILE *f = fopen("/proc/self/maps", "r");

	CHECK(f != NULL);
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t lo, hi;
		const char *path = lp_maps_line(line, &lo, &hi);

		if (path && addr >= lo && addr < hi) {
			snprintf(out, len, "%s", path);
			break;
		}
	}
	fclose(f);
}

static inline bool lp_in_object(uintptr_t addr, const char *name)
{
	char path[PATH_MAX];

	lp_mapping_path(addr, path, sizeof(path));
	return strstr(path, name) != NULL;
}

static inline bool lp_file_mapped(const char *name)
{
	char line[PATH_MAX + 256];
	bool found = false, base = !strchr(name, '/');
	FILE *f = fopen("/proc/self/maps", "r");

	CHECK(f != NULL);
	while (!found && fgets(line, sizeof(line), f)) {
		uintptr_t lo, hi;
		const char *path = lp_maps_line(line, &lo, &hi), *slash;

		if (!path)
			continue;
		if (base && (slash = strrchr(path, '/')) != NULL)
			path = slash + 1;
		found = !strcmp(path, name);
	}
	fclose(f);
	return found;
}

/* ---- Threads -------------------------------------------------------------- */

static inline long lp_syscall_of(pid_t tid)
{
	char path[64], buf[256];
	FILE *f;
	long nr = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return -2;
	if (fgets(buf, sizeof(buf), f) && buf[0] >= '0' && buf[0] <= '9')
		nr = strtol(buf, NULL, 10);
	fclose(f);
	return nr;
}

static inline long lp_ctxt_switches(pid_t tid)
{
	char path[64], line[256];
	long n = 0, v;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
		    sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1) {
			n += v;
			found++;
		}
	}
	fclose(f);
	return found == 2 ? n : -1;
}

/* ---- Waiting -------------------------------------------------------------- */

/* @msg holds each of the '|'-separated parts of @needles (exit 1 if not,
 * naming the part it lacks). */
static inline void lp_has_all(const char *msg, const char *needles)
{
	char part[256];

	while (*needles) {
		size_t n = strcspn(needles, "|");

		CHECK(n < sizeof(part));
		memcpy(part, needles, n);
		part[n] = '\0';
		if (!strstr(msg, part)) {
			fprintf(stderr, "message lacks '%s'\n", part);
			exit(1);
		}
		needles += n + (needles[n] == '|');
	}
}

static inline uint64_t lp_deadline_ms(uint64_t ms)
{
	return rw_test_now_ns() + ms * rw_test_time_scale() * 1000000ull;
}

#define LP_WAIT_UNTIL(cond, deadline_ns)                                       \
	({                                                                     \
		bool lp_ok_;                                                   \
		while (!(lp_ok_ = (cond)) && rw_test_now_ns() < (deadline_ns)) \
			usleep(1000);                                          \
		lp_ok_;                                                        \
	})

static inline bool lp_wait_in_syscall(pid_t tid, long nr)
{
	if (!LP_WAIT_UNTIL(lp_syscall_of(tid) == nr, lp_deadline_ms(5000)))
		return false;
	/* The number shows on entry; let it go to sleep. */
	usleep(20000);
	return lp_syscall_of(tid) == nr;
}

/* ---- Patches -------------------------------------------------------------- */

static inline void lp_patch_path(char *buf, size_t len, const char *stem,
				 const char *name)
{
	snprintf(buf, len, "%s%s.so", stem, name);
}

static inline struct rw_patch *lp_load(const char *path, unsigned flags)
{
	struct rw_patch *p = NULL;
	int err = rw_patch_load(path, flags, &p);

	if (err) {
		fprintf(stderr, "rw_patch_load(%s): %s: %s\n", path,
			rw_strerror(err), rw_patch_last_error());
		exit(1);
	}
	return p;
}

static inline uintptr_t lp_new_func_of(const char *path, size_t i)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	const struct rw_patch_desc *d;

	CHECK(h != NULL);
	d = (const struct rw_patch_desc *)dlsym(h, RW_PATCH_DESC_SYMBOL);
	CHECK(d != NULL);
	CHECK(i < d->nfuncs);
	dlclose(h);
	return (uintptr_t)d->funcs[i].new_func;
}

static inline int lp_state(struct rw_patch *p)
{
	struct rw_patch_info info;

	CHECK_OK(rw_patch_state(p, &info));
	return info.state;
}

static inline int lp_go(struct rw_patch *p, bool enable, int timeout_ms)
{
	int err = enable ? rw_patch_enable(p) : rw_patch_disable(p);

	return err ? err
		   : rw_patch_wait(p, timeout_ms * (int)rw_test_time_scale());
}

/* A thread of this process, on stderr: /proc's stat and syscall lines. */
static inline void lp_print_thread(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	rw_test_print_file(path, "      stat    ");
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	rw_test_print_file(path, "      syscall ");
}

static inline void lp_go_checked(struct rw_patch *p, bool enable,
				 int timeout_ms)
{
	int err = lp_go(p, enable, timeout_ms);
	struct rw_patch_info info;

	if (err) {
		fprintf(stderr, "%s: %s: %s\n", enable ? "enable" : "disable",
			rw_strerror(err), rw_patch_last_error());
		/* Which threads held it, and why (enum rw_patch_thread_why),
		 * with their state in the kernel. */
		if (rw_patch_state(p, &info) == 0) {
			fprintf(stderr,
				"  state %d, %zu/%zu switched, %u rounds, "
				"%.3f ms, %zu pending:\n",
				info.state, info.threads_switched,
				info.threads_total, info.attempts,
				(double)info.transition_ns / 1e6,
				info.npending);
			for (size_t i = 0;
			     i < info.npending && i < RW_PATCH_INFO_THREADS;
			     i++) {
				fprintf(stderr,
					"    tid %d why %d ip %#lx '%s'\n",
					(int)info.pending[i].tid,
					info.pending[i].why,
					(unsigned long)info.pending[i].ip,
					info.pending[i].func);
				lp_print_thread(info.pending[i].tid);
			}
		}
		exit(1);
	}
	CHECK_EQ(lp_state(p), enable ? RW_PATCH_ENABLED : RW_PATCH_DISABLED);
}

static inline void lp_enable_wait(struct rw_patch *p, int timeout_ms)
{
	lp_go_checked(p, true, timeout_ms);
}

static inline void lp_disable_wait(struct rw_patch *p, int timeout_ms)
{
	lp_go_checked(p, false, timeout_ms);
}

/*
 * A thread that stopped making progress: its kernel state (stat, syscall
 * line), then, from a SIGUSR2 handler run on it, the interrupted pc and
 * its backtrace (a running thread's pc is in no /proc file). For a test's
 * failure message before it exits; replaces SIGUSR2's handler.
 */
/* sig_atomic_t: the header is C and C++. */
static volatile sig_atomic_t lp_stall_done;

static void lp_stall_handler(int sig, siginfo_t *si, void *ucv)
{
	void *bt[32];
	char line[128];
	unsigned long pc, sp, lr;
	int n, len;

	(void)sig;
	(void)si;
	rw_test_uc_regs(ucv, &pc, &sp, &lr);
	len = snprintf(line, sizeof(line),
		       "  interrupted at pc %#lx sp %#lx lr %#lx; backtrace:\n",
		       pc, sp, lr);
	if (write(2, line, (size_t)len) < 0)
		return;
	n = backtrace(bt, 32);
	backtrace_symbols_fd(bt, n, 2);
	lp_stall_done = 1;
}

static inline void lp_report_stall(pid_t tid)
{
	struct sigaction sa;

	fprintf(stderr, "  thread %d:\n", (int)tid);
	lp_print_thread(tid);
	{
		/* A thread that traps again and again (a site it keeps
		 * seeing armed) shows in the counters. */
		struct rw_text_stats a, b;

		rw_text_get_stats(&a);
		usleep(500000);
		rw_text_get_stats(&b);
		fprintf(stderr,
			"  in 0.5 s: %llu traps replayed, %llu emulated, %llu "
			"batches\n",
			(unsigned long long)(b.traps_replayed -
					     a.traps_replayed),
			(unsigned long long)(b.traps_emulated -
					     a.traps_emulated),
			(unsigned long long)(b.batches - a.batches));
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = lp_stall_handler;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR2, &sa, NULL);
	lp_stall_done = 0;
	if (syscall(SYS_tgkill, getpid(), tid, SIGUSR2) == 0)
		LP_WAIT_UNTIL(lp_stall_done, lp_deadline_ms(2000));
	fflush(stderr);
}

#endif /* REWIRE_TEST_LP_TEST_H */
