/* SPDX-License-Identifier: MIT */
/* Logging, formatting, errors, time and /proc reads: small
 * async-signal-safe helpers. */
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

bool rw__log_enabled;

__attribute__((constructor)) static void log_init(void)
{
	const char *s = getenv("REWIRE_LOG");

	rw__log_enabled = s && *s && strcmp(s, "0") != 0;
}

static size_t put_char(char *buf, size_t size, size_t pos, char c)
{
	if (pos + 1 < size)
		buf[pos] = c;
	return pos + 1;
}

static size_t put_str(char *buf, size_t size, size_t pos, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		pos = put_char(buf, size, pos, *s++);
	return pos;
}

static size_t put_uint(char *buf, size_t size, size_t pos, unsigned long long v,
		       unsigned base)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		pos = put_char(buf, size, pos, tmp[--n]);
	return pos;
}

size_t rw__vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	size_t pos = 0;

	for (; *fmt; fmt++) {
		int lng = 0;
		bool sz = false;

		if (*fmt != '%') {
			pos = put_char(buf, size, pos, *fmt);
			continue;
		}
		fmt++;
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		if (*fmt == 'z') {
			sz = true;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			pos = put_str(buf, size, pos, va_arg(ap, const char *));
			break;
		case 'c':
			pos = put_char(buf, size, pos, (char)va_arg(ap, int));
			break;
		case 'd': {
			long long v = lng ? va_arg(ap, long)
					  : (sz ? (long long)va_arg(ap, ssize_t)
						: va_arg(ap, int));
			if (v < 0) {
				pos = put_char(buf, size, pos, '-');
				v = -v;
			}
			pos = put_uint(buf, size, pos, (unsigned long long)v,
				       10);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v =
				lng ? va_arg(ap, unsigned long)
				    : (sz ? va_arg(ap, size_t)
					  : va_arg(ap, unsigned int));
			pos = put_uint(buf, size, pos, v,
				       *fmt == 'x' ? 16 : 10);
			break;
		}
		case 'p':
			pos = put_str(buf, size, pos, "0x");
			pos = put_uint(buf, size, pos,
				       (uintptr_t)va_arg(ap, void *), 16);
			break;
		case '%':
			pos = put_char(buf, size, pos, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			pos = put_char(buf, size, pos, '?');
			break;
		}
	}
	if (size)
		buf[pos < size ? pos : size - 1] = '\0';
	return pos;
}

size_t rw__format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = rw__vformat(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void rw__log_write(const char *func, const char *fmt, ...)
{
	char buf[512];
	size_t n;
	va_list ap;
	int saved = errno;

	n = rw__format(buf, sizeof(buf), "rewire[%d/%d] %s: ", (int)getpid(),
		       (int)rw__gettid(), func);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	va_start(ap, fmt);
	n += rw__vformat(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(STDERR_FILENO, buf, n);
	errno = saved;
}

uint64_t rw__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void rw__sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull),
			       (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

RW_EXPORT const char *rw_version(void)
{
	return RW_VERSION_STRING;
}

RW_EXPORT const char *rw_strerror(int err)
{
	switch (-err) {
	case 0:
		return "success";
	case RW_ERR_THREAD_TIMEOUT:
		return "a thread did not answer in time";
	case RW_ERR_BAD_INSN:
		return "the instruction at the site is not one rewire can patch";
	case RW_ERR_OUT_OF_RANGE:
		return "branch target out of reach of a direct branch "
		       "(x86-64: +-2 GiB, aarch64: +-128 MiB)";
	case RW_ERR_TEXT_WRITE:
		return "the kernel refused a write to code through "
		       "/proc/self/mem and the policy forbids the mprotect "
		       "fallback";
	case RW_ERR_PATCH_FILE:
		return "the patch file is refused: not a regular file, "
		       "another owner or mode, not a whole shared object "
		       "for this machine, or a malformed binding "
		       "(.rewire.bind)";
	case RW_ERR_PATCH_VERSION:
		return "not a rewire patch of this descriptor version";
	case RW_ERR_SYMBOL:
		return "a symbol or object the patch names is not loaded";
	case RW_ERR_AMBIGUOUS:
		return "a symbol name is ambiguous; give its position";
	case RW_ERR_STRIPPED:
		return "an object has no symbol table (stripped)";
	case RW_ERR_NOT_PATCHABLE:
		return "a function has no patchable entry "
		       "(-fpatchable-function-entry) or another size";
	case RW_ERR_NO_PROC:
		return "/proc is not mounted: rewire needs /proc/self/maps "
		       "and /proc/self/mem to change code";
	case RW_ERR_NOT_DUMPABLE:
		return "the process dropped privileges and is not dumpable: "
		       "/proc/self/mem refused (EACCES); rewire opens it at "
		       "start-up, but that descriptor was closed or belongs "
		       "to the parent of this forked process (the policy "
		       "forbids the mprotect fallback)";
	case RW_ERR_INLINED:
		return "the function is inlined into callers (a patch would not "
		       "reach those copies; tracing cannot see them)";
	case RW_ERR_BREAKPOINT:
		return "a breakpoint (int3, BRK) of another tool (a uprobe of "
		       "bpftrace or perf probe, or a debugger) is in the code "
		       "to patch; remove it first";
	case RW_ERR_TRAP_REPLACED:
		return "SIGTRAP handler replaced behind rewire's back (by a raw "
		       "rt_sigaction?): refusing to patch";
	case RW_ERR_SIGNAL_BUSY:
		return "the program already has a handler for rewire's "
		       "cross-thread signal: set REWIRE_SIGNAL to a free "
		       "real-time signal";
	case RW_ERR_SIGNAL_REPLACED:
		return "the program replaced rewire's cross-thread signal "
		       "handler: set REWIRE_SIGNAL to a free real-time signal";
	case RW_ERR_BUILD_ID:
		return "the patch was built for another build of the program "
		       "(build-id, or a function's size or bytes, differ)";
	case EILSEQ:
		return "the bytes at a site are not the expected instruction "
		       "(nothing was written)";
	case EDEADLK:
		return "called from a context that already holds rewire's "
		       "lock (a signal handler, or a patch's constructor, "
		       "destructor or callback)";
	case EINVAL:
		return "invalid argument";
	case ENOMEM:
		return "out of memory";
	case EPERM:
		return "operation not permitted";
	case ETIMEDOUT:
		return "timed out";
	case EOVERFLOW:
		return "reference count overflow";
	case EBUSY:
		return "busy";
	case ENOENT:
		return "no such object";
	case EEXIST:
		return "already exists";
	case ENOSYS:
		return "not supported by this kernel or backend";
	case ESRCH:
		return "no such thread";
	case EAGAIN:
		return "resource temporarily unavailable; try again";
	case ERANGE:
		return "value out of range";
	case EMFILE:
		return "out of file descriptors (the process's limit, "
		       "RLIMIT_NOFILE)";
	case ENFILE:
		return "out of file descriptors (the system's limit)";
	case EACCES:
		return "permission denied";
	default:
		break;
	}
	if (err < 0 && -err < RW_ERR_BASE)
		return "system error (see errno value)";
	return "unknown rewire error";
}

ssize_t rw__task_read(pid_t tid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n, len = 0;
	int fd, err = 0;

	rw__format(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((size_t)len < size - 1) {
		n = read(fd, buf + len, size - 1 - (size_t)len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno == ENOENT ? ESRCH : errno;
			break;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	if (err)
		return -err;
	buf[len] = '\0';
	return len;
}

int rw__task_state(pid_t tid)
{
	char buf[512];
	const char *p;
	ssize_t n = rw__task_read(tid, "stat", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	/* "TID (COMM) STATE ...": COMM may hold anything, even ") ". */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	return (unsigned char)p[2];
}

/* Blocked threads, from /proc/self/task/TID. */

/*
 * Parse /proc/.../syscall: "running", or "NR a1 .. a6 SP PC" (in a
 * system call), or "-1 SP PC" (asleep elsewhere, e.g. in a page fault).
 * 0 and *sp, *pc if blocked; 1 if running; -EIO if unreadable.
 */
int rw__parse_syscall(const char *s, uintptr_t *sp, uintptr_t *pc)
{
	unsigned long long v[9];
	int n = 0;
	char *end;

	if (strncmp(s, "running", 7) == 0)
		return 1;
	while (n < 9) {
		while (*s == ' ')
			s++;
		if (*s == '\n' || *s == '\0')
			break;
		errno = 0;
		v[n] = strtoull(s, &end, 0);
		if (end == s || errno)
			return -EIO;
		s = end;
		n++;
	}
	if (n != 9 && n != 3)
		return -EIO;
	*sp = (uintptr_t)v[n - 2];
	*pc = (uintptr_t)v[n - 1];
	return 0;
}

int rw__thread_blocked_ip(pid_t tid, uintptr_t *ip)
{
	char buf[256];
	uintptr_t sp, pc;
	ssize_t n;
	int r;

	n = rw__task_read(tid, "syscall", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	r = rw__parse_syscall(buf, &sp, &pc);
	if (r < 0)
		return r;
	if (r == 1)
		return 0;
	*ip = pc;
	return 1;
}

bool rw__peek(uintptr_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len };
	struct iovec remote = { (void *)addr, len };

	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) ==
	       (ssize_t)len;
}
