/* SPDX-License-Identifier: MIT */
/*
 * The code writer. The default path writes through /proc/self/mem: the
 * kernel writes the page through its own mapping (copying file-backed text
 * on write), so no mapping of the process is ever writable and executable.
 * Where the kernel refuses (proc_mem.force_override=never, some security
 * modules), the mprotect path makes the pages RWX for the copy and restores
 * them, only if the policy allows it.
 *
 * Privileges. The kernel checks who may open /proc/PID/mem when it is
 * opened, not when it is written: once a process changes its user or group
 * IDs (a daemon started as root that switches to its service user) it is
 * no longer dumpable, /proc/self/mem belongs to root and its open() fails
 * with EACCES, but a descriptor opened before keeps working. So the patching
 * backend opens it when the library is loaded, before the program can
 * drop privileges, and keeps it. Making the process dumpable again
 * (prctl(PR_SET_DUMPABLE, 1)) would also make it work, and is not done:
 * it would hand the process to every ptrace, /proc/PID/mem and core dump of
 * its new user, which is what the kernel's rule protects it from.
 *
 * The descriptor is this process's only while it is the one we opened in
 * this process: it is checked before each write (same inode, same pid), so
 * that a program that closed it (daemons close every descriptor) and
 * reused the number, or a child created without fork handlers, never writes
 * through a stranger's file or into its parent's memory. A fork child gets
 * its own in rw__text_after_fork(), if it may open one.
 */
#include "text_poke.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

struct rw__lock rw__text_lock = RW__LOCK_INIT;

/*
 * The /proc/self/mem descriptor (-1: none), the file it was opened on and
 * the process that opened it; why an earlier one is gone, for the message.
 * Protected by the text lock (the constructor and the fork child run
 * alone).
 */
static int mem_fd = -1;
static dev_t mem_dev;
static ino_t mem_ino;
static pid_t mem_pid;
static enum {
	MEM_NEVER,  /* none was opened, or it could not be opened */
	MEM_CLOSED, /* the program closed ours */
	MEM_FORKED, /* ours was the parent's; this child could not open one */
} mem_gone;
static unsigned policy;
static bool policy_read;

/* Why the last write of code in this thread failed ("" if none since the
 * last rw__text_error_clear()). */
static __thread char text_error[384];

void rw__text_error_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text_error, sizeof(text_error), fmt, ap);
	va_end(ap);
	rw__log("%s", text_error);
}

void rw__text_error_clear(void)
{
	text_error[0] = '\0';
}

const char *rw__text_error(void)
{
	return text_error;
}

static const char *errno_name(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "?";
}

static bool env_flag(const char *name)
{
	const char *s = getenv(name);

	return s && *s && strcmp(s, "0") != 0;
}

static void policy_init(void)
{
	if (policy_read)
		return;
	policy_read = true;
	if (env_flag("REWIRE_TEXT_ALLOW_MPROTECT"))
		policy |= RW_TEXT_ALLOW_MPROTECT;
	if (env_flag("REWIRE_TEXT_FORCE_MPROTECT"))
		policy |= RW_TEXT_FORCE_MPROTECT;
}

RW_EXPORT unsigned rw_text_set_policy(unsigned flags)
{
	unsigned old;
	int err = rw__lock_acquire(&rw__text_lock);

	policy_init();
	old = policy;
	policy = flags & (RW_TEXT_ALLOW_MPROTECT | RW_TEXT_FORCE_MPROTECT);
	if (!err)
		rw__lock_release(&rw__text_lock);
	return old;
}

/*
 * Call @fn for each mapping in /proc/self/maps with its bounds and its
 * "rwxp" string. Stops at the first non-zero return of @fn and returns it;
 * 0 after the last mapping; -errno if the file cannot be read.
 */
static int maps_walk(int (*fn)(uintptr_t lo, uintptr_t hi, const char *perms,
			       void *arg),
		     void *arg)
{
	FILE *f = fopen("/proc/thread-self/maps", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	if (!f) {
		int e = errno;

		rw__text_error_set("cannot read /proc/self/maps: %s (%s)%s",
				   strerror(e), errno_name(e),
				   e == ENOENT ? ": /proc is not mounted" : "");
		return e == ENOENT ? -RW_ERR_NO_PROC : -e;
	}
	while (!r && getline(&line, &cap, f) > 0) {
		unsigned long lo, hi;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3)
			r = fn(lo, hi, perms, arg);
	}
	free(line);
	fclose(f);
	return r;
}

struct prot_query {
	uintptr_t addr;
	int prot;
};

static int prot_of(uintptr_t lo, uintptr_t hi, const char *perms, void *arg)
{
	struct prot_query *q = arg;

	if (q->addr < lo || q->addr >= hi)
		return 0;
	q->prot = (perms[0] == 'r' ? PROT_READ : 0) |
		  (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	return 1;
}

/* Original protection of the mapping holding @addr. */
static int page_prot(uintptr_t addr, int *prot)
{
	struct prot_query q = { addr, 0 };
	int r = maps_walk(prot_of, &q);

	if (r < 0)
		return r;
	if (!r)
		return -ENOENT;
	*prot = q.prot;
	return 0;
}

struct exec_ranges {
	struct {
		uintptr_t lo, hi;
	} * r;
	size_t n, cap;
};

static int add_exec(uintptr_t lo, uintptr_t hi, const char *perms, void *arg)
{
	struct exec_ranges *x = arg;

	/* Readable too: the batch reads every site before writing it, and
	 * execute-only memory ([vsyscall] with vsyscall=xonly, PROT_EXEC
	 * alone under protection keys) faults on a read. */
	if (perms[0] != 'r' || perms[2] != 'x')
		return 0;
	/* Adjacent executable mappings (a split text segment) are one. */
	if (x->n && x->r[x->n - 1].hi == lo) {
		x->r[x->n - 1].hi = hi;
		return 0;
	}
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		void *r = realloc(x->r, cap * sizeof(*x->r));

		if (!r)
			return -ENOMEM;
		x->r = r;
		x->cap = cap;
	}
	x->r[x->n].lo = lo;
	x->r[x->n++].hi = hi;
	return 0;
}

int rw__text_check_code(const struct rw__poke *pokes, size_t n)
{
	struct exec_ranges x = { 0 };
	int err = maps_walk(add_exec, &x);

	for (size_t i = 0; i < n && !err; i++) {
		uintptr_t a = pokes[i].addr;
		size_t k;

		for (k = 0; k < x.n; k++)
			if (a >= x.r[k].lo && a + pokes[i].len <= x.r[k].hi)
				break;
		if (k == x.n) {
			rw__log("site %p is not in readable executable "
				"memory",
				(void *)a);
			err = -EFAULT;
		}
	}
	free(x.r);
	return err;
}

static int write_mprotect(void *addr, const void *buf, size_t len)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)addr & ~(pg - 1);
	uintptr_t hi = ((uintptr_t)addr + len + pg - 1) & ~(pg - 1);
	int prot, err;

	/* One mapping may not cover [lo, hi) with one protection; handle the
	 * common case and refuse the rest rather than guess. */
	err = page_prot(lo, &prot);
	if (!err) {
		int prot2;

		err = page_prot(hi - 1, &prot2);
		if (!err && prot2 != prot) {
			rw__text_error_set(
				"mprotect fallback: %p..%p spans two "
				"mappings of different protections",
				(void *)lo, (void *)hi);
			err = -EINVAL;
		}
	}
	if (err)
		return err;
	if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE | PROT_EXEC)) {
		err = errno;
		rw__text_error_set("mprotect fallback: making %p writable and "
				   "executable was refused: %s (%s)",
				   (void *)lo, strerror(err), errno_name(err));
		return -err;
	}
	memcpy(addr, buf, len);
	if (mprotect((void *)lo, hi - lo, prot)) {
		err = -errno;
		rw__log("cannot restore protection of %p: errno %d", (void *)lo,
			-err);
	}
	rw__stat_add(mprotect_writes, 1);
	return err;
}

/* Open /proc/self/mem as this process's descriptor: 0 or -errno. */
static int mem_open(void)
{
	struct stat st;
	int fd = open("/proc/thread-self/mem", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		int err = -errno;

		close(fd);
		return err;
	}
	mem_fd = fd;
	mem_dev = st.st_dev;
	mem_ino = st.st_ino;
	mem_pid = getpid();
	return 0;
}

/*
 * Drop a descriptor that is no longer this process's /proc/self/mem: the
 * program closed it (the number may be another file of the program's now:
 * never close it), or this is a child that no fork handler ran in (a raw
 * clone(); the copy is the child's own, of the parent's memory).
 */
static void mem_check(void)
{
	struct stat st;

	if (mem_fd < 0)
		return;
	if (mem_pid != getpid()) {
		rw__log("/proc/self/mem descriptor %d is the parent's "
			"(created without fork handlers): reopened",
			mem_fd);
		close(mem_fd);
		mem_fd = -1;
		mem_gone = MEM_FORKED;
	} else if (fstat(mem_fd, &st) || st.st_dev != mem_dev ||
		   st.st_ino != mem_ino) {
		rw__log("/proc/self/mem descriptor %d was closed by the "
			"program: reopened",
			mem_fd);
		mem_fd = -1;
		mem_gone = MEM_CLOSED;
	}
}

/*
 * Say why /proc/self/mem could not be opened (-@e) and return the code for
 * it: -RW_ERR_NO_PROC, -RW_ERR_NOT_DUMPABLE, or -errno (EMFILE, ENFILE, a
 * security module's EACCES, ...).
 */
static int open_failed(int e)
{
	static const char *const gone[] = {
		[MEM_NEVER] = "none was open when privileges were dropped "
			      "(the library was loaded after the drop, or "
			      "opening it failed then)",
		[MEM_CLOSED] = "the program closed that descriptor",
		[MEM_FORKED] = "this process was forked after the drop and "
			       "the parent's descriptor writes only the "
			       "parent's memory",
	};

	if (e == ENOENT) {
		rw__text_error_set(
			"cannot open /proc/self/mem: /proc is not mounted "
			"(ENOENT)");
		return -RW_ERR_NO_PROC;
	}
	if ((e == EACCES || e == EPERM) && prctl(PR_GET_DUMPABLE) != 1) {
		rw__text_error_set(
			"the process dropped privileges and is not "
			"dumpable: /proc/self/mem refused (%s); rewire "
			"opens it at start-up, but %s",
			errno_name(e), gone[mem_gone]);
		return -RW_ERR_NOT_DUMPABLE;
	}
	if (e == EMFILE || e == ENFILE)
		rw__text_error_set(
			"cannot open /proc/self/mem: out of file descriptors "
			"(%s: %s)%s",
			errno_name(e),
			e == EMFILE ? "the process's RLIMIT_NOFILE"
				    : "the system's limit",
			mem_gone == MEM_CLOSED ? "; the program closed the "
						 "one rewire had opened"
					       : "");
	else
		rw__text_error_set("cannot open /proc/self/mem: %s (%s)",
				   strerror(e), errno_name(e));
	return -e;
}

static int write_procmem(void *addr, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	off_t off = (off_t)(uintptr_t)addr;
	int fd, err;

	mem_check();
	if (mem_fd < 0) {
		err = mem_open();
		if (err)
			return open_failed(-err);
	}
	/* A handler that forks in the middle of this loop gives the child
	 * its own file under the same number (rw__text_after_fork). */
	fd = mem_fd;
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			rw__text_error_set(
				"the kernel refused a write of %zu bytes to "
				"code at %p through /proc/self/mem: %s (%s)",
				len, (void *)(uintptr_t)off, strerror(err),
				errno_name(err));
			return -RW_ERR_TEXT_WRITE;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	/* It reached this process's code (the descriptor checks above make
	 * anything else a bug; a wrong descriptor writes someone else's). */
	len = (size_t)(p - (const uint8_t *)buf);
	if (memcmp(addr, buf, len)) {
		rw__text_error_set(
			"a write of %zu bytes to code at %p through "
			"/proc/self/mem succeeded but the code did not "
			"change",
			len, addr);
		return -RW_ERR_TEXT_WRITE;
	}
	return 0;
}

static int text_write(void *addr, const void *buf, size_t len)
{
	char why[sizeof(text_error)], how[sizeof(text_error)];
	int err;

	policy_init();
	rw__stat_add(writes, 1);
	if ((policy & RW_TEXT_FORCE_MPROTECT) &&
	    (policy & RW_TEXT_ALLOW_MPROTECT))
		return write_mprotect(addr, buf, len);
	err = write_procmem(addr, buf, len);
	if (!err || !(policy & RW_TEXT_ALLOW_MPROTECT))
		return err;
	rw__log("falling back to mprotect at %p", addr);
	memcpy(why, text_error, sizeof(why));
	err = write_mprotect(addr, buf, len);
	if (err) {
		memcpy(how, text_error, sizeof(how));
		rw__text_error_set("%s; %s", why, how);
	}
	return err;
}

/*
 * Every write of code is followed by the arch's cache maintenance over
 * the written range (nothing on x86-64; on aarch64 the data cache cleaned
 * to the point of unification and the instruction cache invalidated by
 * this process's addresses), so that the callers' cross-core sync is all
 * that remains before every thread fetches the new bytes.
 */
int rw__text_write(void *addr, const void *buf, size_t len)
{
	int err = text_write(addr, buf, len);

	if (!err)
		rw__arch_flush_icache((uintptr_t)addr, len);
	return err;
}

void rw__text_after_fork(void)
{
	int parent = mem_fd, err;

	if (parent < 0)
		return;
	/* The parent's descriptor writes the parent's memory. */
	mem_fd = -1;
	err = mem_open();
	if (err == -EMFILE || err == -ENFILE) {
		/* At the limit: the parent's number is the one to reuse. */
		close(parent);
		parent = -1;
		err = mem_open();
	}
	if (err) {
		/* Not dumpable (forked after a privilege drop): this child
		 * cannot have one. */
		rw__log("fork child: cannot open /proc/self/mem: errno %d",
			-err);
		if (parent >= 0)
			close(parent);
		mem_gone = MEM_FORKED;
		return;
	}
	/* Keep the number: a batch interrupted by a handler that forked
	 * goes on in the child with the same descriptor value. */
	if (parent >= 0 && dup3(mem_fd, parent, O_CLOEXEC) == parent) {
		close(mem_fd);
		mem_fd = parent;
	}
}

#ifdef RW_BACKEND_PATCHING
/* Before the program can drop privileges (see the top of the file). */
__attribute__((constructor)) static void text_init(void)
{
	int err = mem_open();

	if (err)
		rw__log("cannot open /proc/self/mem at start-up: errno %d",
			-err);
}
#endif
