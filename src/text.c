/* SPDX-License-Identifier: MIT */
/*
 * The code writer. The default path writes through /proc/self/mem: the
 * kernel writes the page through its own mapping (copying file-backed text
 * on write), so no mapping of the process is ever writable and executable.
 * Where the kernel refuses (proc_mem.force_override=never, some security
 * modules, a uid change), the mprotect path makes the pages RWX for the
 * copy and restores them, only if the policy allows it.
 */
#include "text_poke.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct rw__lock rw__text_lock = RW__LOCK_INIT;

/* Protected by the text lock. */
static int mem_fd = -1;
static unsigned policy;
static bool policy_read;

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

	if (!f)
		return -errno;
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

	if (perms[2] != 'x')
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
			rw__log("site %p is not in executable memory",
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
		if (!err && prot2 != prot)
			err = -EINVAL;
	}
	if (err)
		return err;
	if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE | PROT_EXEC))
		return -errno;
	memcpy(addr, buf, len);
	if (mprotect((void *)lo, hi - lo, prot)) {
		err = -errno;
		rw__log("cannot restore protection of %p: errno %d", (void *)lo,
			-err);
	}
	rw__stat_add(mprotect_writes, 1);
	return err;
}

static int write_procmem(void *addr, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	off_t off = (off_t)(uintptr_t)addr;

	if (mem_fd < 0) {
		mem_fd = open("/proc/thread-self/mem", O_RDWR | O_CLOEXEC);
		if (mem_fd < 0)
			return -errno;
	}
	while (len) {
		ssize_t n = pwrite(mem_fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int rw__text_write(void *addr, const void *buf, size_t len)
{
	int err;

	policy_init();
	rw__stat_add(writes, 1);
	if ((policy & RW_TEXT_FORCE_MPROTECT) &&
	    (policy & RW_TEXT_ALLOW_MPROTECT))
		return write_mprotect(addr, buf, len);
	err = write_procmem(addr, buf, len);
	if (!err)
		return 0;
	rw__log("/proc/self/mem write at %p refused: errno %d", addr, -err);
	if (policy & RW_TEXT_ALLOW_MPROTECT)
		return write_mprotect(addr, buf, len);
	return -RW_ERR_TEXT_WRITE;
}

void rw__text_after_fork(void)
{
	int fd;

	if (mem_fd < 0)
		return;
	/* Keep the descriptor number: a batch interrupted by a handler that
	 * forked goes on in the child with the same mem_fd value. */
	fd = open("/proc/thread-self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		close(mem_fd);
		mem_fd = -1;
		return;
	}
	dup3(fd, mem_fd, O_CLOEXEC);
	close(fd);
}
