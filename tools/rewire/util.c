// SPDX-License-Identifier: MIT
/* Messages, error names, number parsing, tables. */
#include "rewire.h"

#include <rewire/common.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void msg(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("rewire: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int fail(int code, int err, const char *fmt, ...)
{
	char text[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	msg("%s", text);
	sel_note_error(text);
	snprintf(g.last_error, sizeof(g.last_error), "%s", text);
	if (g.json && !g.json_reported) {
		struct json j;

		g.json_reported = 1;
		json_init(&j, stdout);
		json_obj_begin(&j);
		json_key(&j, "error");
		json_obj_begin(&j);
		json_kstr(&j, "command", g.cmd ? g.cmd : "");
		json_ki64(&j, "exit", code);
		if (err) {
			json_ki64(&j, "errno", err);
			json_kstr(&j, "errname", err_name(err));
		}
		json_kstr(&j, "message", text);
		json_obj_end(&j);
		json_obj_end(&j);
		json_done(&j);
	}
	return code;
}

static const struct {
	int code;
	const char *name;
	const char *desc;
} rw_errs[] = {
	{ RW_ERR_THREAD_TIMEOUT, "RW_ERR_THREAD_TIMEOUT",
	  "a thread did not answer in time" },
	{ RW_ERR_BAD_INSN, "RW_ERR_BAD_INSN",
	  "the instruction at the site is not one rewire can patch" },
	{ RW_ERR_OUT_OF_RANGE, "RW_ERR_OUT_OF_RANGE",
	  "branch target out of reach of a direct branch" },
	{ RW_ERR_TEXT_WRITE, "RW_ERR_TEXT_WRITE",
	  "the kernel refused a write to code" },
	{ RW_ERR_PATCH_FILE, "RW_ERR_PATCH_FILE",
	  "the patch file is refused (owner, mode, type, machine, "
	  "truncated)" },
	{ RW_ERR_PATCH_VERSION, "RW_ERR_PATCH_VERSION",
	  "not a rewire patch of this version" },
	{ RW_ERR_SYMBOL, "RW_ERR_SYMBOL", "unknown symbol" },
	{ RW_ERR_AMBIGUOUS, "RW_ERR_AMBIGUOUS", "ambiguous name" },
	{ RW_ERR_STRIPPED, "RW_ERR_STRIPPED", "no symbol table (stripped)" },
	{ RW_ERR_NOT_PATCHABLE, "RW_ERR_NOT_PATCHABLE",
	  "no patchable entry, or another size" },
	{ RW_ERR_NO_PROC, "RW_ERR_NO_PROC", "/proc is not mounted" },
	{ RW_ERR_NOT_DUMPABLE, "RW_ERR_NOT_DUMPABLE",
	  "not dumpable after a privilege drop: /proc/self/mem refused" },
	{ RW_ERR_INLINED, "RW_ERR_INLINED",
	  "a function is inlined into callers (not patched, not traced)" },
	{ RW_ERR_BREAKPOINT, "RW_ERR_BREAKPOINT",
	  "another tool's breakpoint (uprobe, debugger) is in the code" },
	{ RW_ERR_TRAP_REPLACED, "RW_ERR_TRAP_REPLACED",
	  "SIGTRAP handler replaced behind rewire's back" },
	{ RW_ERR_SIGNAL_BUSY, "RW_ERR_SIGNAL_BUSY",
	  "rewire's cross-thread signal already has a handler" },
	{ RW_ERR_SIGNAL_REPLACED, "RW_ERR_SIGNAL_REPLACED",
	  "rewire's cross-thread signal handler was replaced" },
	{ RW_ERR_BUILD_ID, "RW_ERR_BUILD_ID",
	  "the patch was built for another build (build-id differs)" },
};

#define E(x)          \
	{             \
		x, #x \
	}
static const struct {
	int code;
	const char *name;
} errnos[] = {
	E(EPERM),	 E(ENOENT),	 E(ESRCH),	     E(EINTR),
	E(EIO),		 E(ENXIO),	 E(E2BIG),	     E(ENOEXEC),
	E(EBADF),	 E(ECHILD),	 E(EAGAIN),	     E(ENOMEM),
	E(EACCES),	 E(EFAULT),	 E(EBUSY),	     E(EEXIST),
	E(ENODEV),	 E(ENOTDIR),	 E(EISDIR),	     E(EINVAL),
	E(ENFILE),	 E(EMFILE),	 E(ENOSPC),	     E(ESPIPE),
	E(EROFS),	 E(EPIPE),	 E(ERANGE),	     E(EDEADLK),
	E(ENAMETOOLONG), E(ENOSYS),	 E(ENOTEMPTY),	     E(ELOOP),
	E(ENODATA),	 E(ETIME),	 E(EPROTO),	     E(EBADMSG),
	E(EOVERFLOW),	 E(EMSGSIZE),	 E(EPROTONOSUPPORT), E(EOPNOTSUPP),
	E(EADDRINUSE),	 E(ECONNRESET),	 E(ECONNREFUSED),    E(ETIMEDOUT),
	E(EALREADY),	 E(EINPROGRESS), E(ECANCELED),	     E(ENOTSOCK),
	E(ENOTCONN),	 E(ESTALE),
};
#undef E

const char *err_name(int err)
{
	static char buf[32];
	int e = err < 0 ? -err : err;

	for (size_t i = 0; i < sizeof(rw_errs) / sizeof(rw_errs[0]); i++)
		if (rw_errs[i].code == e)
			return rw_errs[i].name;
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (errnos[i].code == e)
			return errnos[i].name;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

const char *err_desc(int err)
{
	int e = err < 0 ? -err : err;

	for (size_t i = 0; i < sizeof(rw_errs) / sizeof(rw_errs[0]); i++)
		if (rw_errs[i].code == e)
			return rw_errs[i].desc;
	if (e >= RW_ERR_BASE)
		return "unknown rewire error";
	return strerror(e);
}

bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

bool parse_pid(const char *s, pid_t *out)
{
	uint64_t v;

	if (!parse_u64(s, &v) || v == 0 || v > INT_MAX)
		return false;
	*out = (pid_t)v;
	return true;
}

bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	default:
		return false;
	}
	if (*end) {
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return false;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

bool parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < 0 || v > 1e9)
		return false;
	*out = v;
	return true;
}

volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
	g_interrupted = sig;
}

void sig_catch(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool proc_exists(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return stat(path, &st) == 0;
}

void thread_comm(pid_t pid, pid_t tid, char *out, size_t size)
{
	char path[96];
	FILE *f;

	snprintf(out, size, "?");
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid,
		 (int)tid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(out, (int)size, f))
		out[strcspn(out, "\n")] = '\0';
	else
		snprintf(out, size, "?");
	fclose(f);
}

const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s && s[1] ? s + 1 : path;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		msg("out of memory");
		exit(EX_FAIL);
	}
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		msg("out of memory");
		exit(EX_FAIL);
	}
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		msg("out of memory");
		exit(EX_FAIL);
	}
	return s;
}

void table_init(struct table *t, int ncols, const char **head)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->head = head;
}

void table_add(struct table *t, const char *const *cells)
{
	char **row = xmalloc(sizeof(char *) * (size_t)t->ncols);

	for (int i = 0; i < t->ncols; i++)
		row[i] = xasprintf("%s", cells[i] ? cells[i] : "-");
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->rows = xrealloc(t->rows, sizeof(char **) * t->cap);
	}
	t->rows[t->nrows++] = row;
}

/* Display width of a UTF-8 string (code points; good enough for names). */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void table_print(struct table *t, FILE *f)
{
	size_t *w = xmalloc(sizeof(size_t) * (size_t)t->ncols);

	for (int c = 0; c < t->ncols; c++) {
		w[c] = width(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++)
			if (width(t->rows[r][c]) > w[c])
				w[c] = width(t->rows[r][c]);
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *cell = r ? t->rows[r - 1][c] : t->head[c];
			bool last = c == t->ncols - 1;

			fputs(cell, f);
			if (!last)
				fprintf(f, "%*s", (int)(w[c] - width(cell) + 2),
					"");
		}
		fputc('\n', f);
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++)
			free(t->rows[r][c]);
		free(t->rows[r]);
	}
	free(t->rows);
	free(w);
	t->rows = NULL;
	t->nrows = t->cap = 0;
}
