/* SPDX-License-Identifier: MIT */
/*
 * The code writer. The default path writes through /proc/self/mem: the
 * kernel writes the page through its own mapping (copying file-backed text
 * on write), so no mapping of the process is ever writable and executable.
 * Where the kernel refuses (proc_mem.force_override=never, some security
 * modules, a uid change), the mprotect path makes the pages RWX for the
 * copy and restores them, only if the policy allows it.
 */
#include "text.h"

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

/* Original protection of the mapping holding @addr, from /proc/self/maps. */
static int page_prot(uintptr_t addr, int *prot)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3)
			continue;
		if (addr < lo || addr >= hi)
			continue;
		*prot = (perms[0] == 'r' ? PROT_READ : 0) |
			(perms[1] == 'w' ? PROT_WRITE : 0) |
			(perms[2] == 'x' ? PROT_EXEC : 0);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

int rw__text_check_code(const uintptr_t *addrs, const size_t *lens, size_t n)
{
	struct range {
		uintptr_t lo, hi;
	} *r = NULL;
	size_t nr = 0, cap = 0;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	int err = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 ||
		    perms[2] != 'x')
			continue;
		if (nr == cap) {
			struct range *nrp;

			cap = cap ? cap * 2 : 64;
			nrp = realloc(r, cap * sizeof(*r));
			if (!nrp) {
				err = -ENOMEM;
				goto out;
			}
			r = nrp;
		}
		/* Adjacent executable mappings (a split text segment) count
		 * as one range. */
		if (nr && r[nr - 1].hi == lo)
			r[nr - 1].hi = hi;
		else
			r[nr++] = (struct range){ lo, hi };
	}
	for (size_t i = 0; i < n && !err; i++) {
		size_t k;

		for (k = 0; k < nr; k++)
			if (addrs[i] >= r[k].lo &&
			    addrs[i] + lens[i] <= r[k].hi)
				break;
		if (k == nr) {
			rw__log("site %p is not in executable memory",
				(void *)addrs[i]);
			err = -EFAULT;
		}
	}
out:
	free(r);
	fclose(f);
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
		mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
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
	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		close(mem_fd);
		mem_fd = -1;
		return;
	}
	dup3(fd, mem_fd, O_CLOEXEC);
	close(fd);
}
