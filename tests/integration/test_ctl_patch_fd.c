/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 16): PATCH_LOAD with the patch file passed as a
 * descriptor (SCM_RIGHTS). The server loads the descriptor and never the
 * PATH that comes with it (the client's name of the file, which a process
 * in another mount namespace cannot see), with the owner and mode checks
 * of rw_patch_load made on the file the descriptor refers to:
 *   - an unlinked copy of pfd_fix.so, its directory removed, sent with a
 *     PATH that does not exist here: loads, reports that PATH and the
 *     file's FILE_ID (its build-id), enables (pfd_compute changes), is
 *     listed by LS with FILE_ID and FROM_DIR 0; the server closes the
 *     descriptor it received;
 *   - an O_PATH descriptor of pfd_fix_noid.so (no build-id): loads, FILE_ID
 *     "size:N-fnv:HEX" of its bytes (computed here independently);
 *   - a group-writable copy, a copy owned by another user (as root), a
 *     FIFO: refused with the loader's message naming the client's PATH,
 *     without blocking;
 *   - rw_patch_load_fd's own argument checks.
 * Before, the server ignored the descriptor and loaded PATH: the first
 * case failed with "No such file or directory".
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
}
#else

#include "client.h"
#include "ctl/fileid.h"

#include <rewire/livepatch.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

__attribute__((noinline)) int pfd_compute(int x);
__attribute__((noinline)) int pfd_compute(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

static char tmp[64];

/* How many descriptors of this process are open on a file whose name
 * contains @name. */
static int nfds(const char *name)
{
	DIR *d = opendir("/proc/self/fd");
	char link[300], to[512];
	struct dirent *de;
	int n = 0;

	CHECK(d);
	while ((de = readdir(d))) {
		ssize_t len;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		len = readlink(link, to, sizeof(to) - 1);
		if (len <= 0)
			continue;
		to[len] = '\0';
		n += strstr(to, name) != NULL;
	}
	closedir(d);
	return n;
}

static void copy(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (in < 0)
		SKIP("%s not built", from);
	CHECK(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK_EQ(write(out, buf, (size_t)n), n);
	CHECK_EQ(n, 0);
	CHECK_OK(fchmod(out, mode));
	close(in);
	close(out);
}

/* PATCH_LOAD of @fd, named @path. Returns the reply's type. */
static uint16_t load(struct tc *c, const char *path, int fd)
{
	rw_wire_begin(&c->b, RW_MSG_PATCH_LOAD);
	rw_wire_str(&c->b, RW_TAG_PATH, path);
	return tc_call(c, fd);
}

static uint16_t by_name(struct tc *c, uint16_t type, const char *name)
{
	rw_wire_begin(&c->b, type);
	rw_wire_str(&c->b, RW_TAG_NAME, name);
	if (type == RW_MSG_PATCH_STATE)
		rw_wire_u64(&c->b, RW_TAG_TIMEOUT_MS, 1000);
	return tc_call(c, -1);
}

static void wait_state(struct tc *c, const char *name, uint64_t want)
{
	uint64_t st = ~0ull;

	for (int i = 0; i < 30 && st != want; i++) {
		CHECK_EQ(by_name(c, RW_MSG_PATCH_STATE, name), RW_MSG_OK);
		CHECK(rw_wire_find_u64(c->m.payload, c->m.len, RW_TAG_STATE,
				       &st));
	}
	CHECK_EQ(st, want);
}

static void unload(struct tc *c, const char *name)
{
	CHECK_EQ(by_name(c, RW_MSG_PATCH_UNLOAD, name), RW_MSG_OK);
}

/* The reply must be a refusal with @code whose message has each needle. */
static void refused(struct tc *c, int64_t code, const char *n1, const char *n2)
{
	CHECK_EQ(c->m.type, RW_MSG_ERROR);
	CHECK_EQ(tc_errno(c), code);
	CHECK_STR_HAS(tc_message(c), n1);
	if (n2)
		CHECK_STR_HAS(tc_message(c), n2);
	printf("refused as expected: %s\n", tc_message(c));
}

static void fnv_id(const char *path, char *out, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ull, n = 0;
	FILE *f = fopen(path, "rb");
	int ch;

	CHECK(f);
	while ((ch = getc(f)) != EOF) {
		h = (h ^ (uint64_t)ch) * 0x100000001b3ull;
		n++;
	}
	fclose(f);
	snprintf(out, size, "size:%llu-fnv:%016llx", (unsigned long long)n,
		 (unsigned long long)h);
}

int main(void)
{
	char path[512], dir[256], id[RW_FILE_ID_MAX], got[RW_FILE_ID_MAX];
	char expect[RW_FILE_ID_MAX];
	struct rw_wire_field g;
	struct rw_patch *p = NULL;
	uint64_t v = 9;
	struct tc c;
	int fd;

	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(tmp, sizeof(tmp), "/tmp/rwpfd.XXXXXX");
	CHECK(mkdtemp(tmp));
	snprintf(path, sizeof(path), "%s/ctl", tmp);
	setenv("REWIRE_CTL_DIR", path, 1);
	CHECK_OK(rw_ctl_start());
	tc_connect(&c);
	tc_hello(&c);
	CHECK_EQ(pfd_compute(1), 2);

	printf("--- an unlinked file in a removed directory, by descriptor\n");
	snprintf(dir, sizeof(dir), "%s/private", tmp);
	CHECK_OK(mkdir(dir, 0700));
	snprintf(path, sizeof(path), "%s/pfd_fix.so", dir);
	copy(PFD_DIR "/pfd_fix.so", path, 0644);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_OK(rw_file_id(fd, id, sizeof(id)));
	CHECK_EQ(strspn(id, "0123456789abcdef"), strlen(id));
	CHECK(strlen(id) >= 16);
	CHECK_OK(unlink(path));
	CHECK_OK(rmdir(dir));
	CHECK_EQ(nfds("/private/pfd_fix.so"), 1);
	if (load(&c, "/client/only/pfd_fix.so", fd) != RW_MSG_OK)
		refused(&c, 0, "loaded", NULL);
	CHECK(tc_str(c.m.payload, c.m.len, RW_TAG_PATH, got, sizeof(got)));
	CHECK(!strcmp(got, "/client/only/pfd_fix.so"));
	CHECK(tc_str(c.m.payload, c.m.len, RW_TAG_FILE_ID, got, sizeof(got)));
	printf("FILE_ID %s\n", got);
	CHECK(!strcmp(got, id));
	CHECK(rw_wire_find_u64(c.m.payload, c.m.len, RW_TAG_FROM_DIR, &v));
	CHECK_EQ(v, 0);
	CHECK_EQ(by_name(&c, RW_MSG_PATCH_ENABLE, "pfd_fix"), RW_MSG_OK);
	wait_state(&c, "pfd_fix", RW_PATCH_ENABLED);
	CHECK_EQ(pfd_compute(1), 3);
	/* The reply to the load came before the server closed the
	 * descriptor it received; by now it has. */
	CHECK_EQ(nfds("/private/pfd_fix.so"), 1);
	close(fd);
	rw_wire_begin(&c.b, RW_MSG_LS);
	CHECK_EQ(tc_call(&c, -1), RW_MSG_OK);
	CHECK(tc_group_named(&c, RW_TAG_PATCH, "pfd_fix", &g));
	CHECK(tc_str(g.data, g.len, RW_TAG_FILE_ID, got, sizeof(got)));
	CHECK(!strcmp(got, id));
	CHECK(rw_wire_find_u64(g.data, g.len, RW_TAG_FROM_DIR, &v));
	CHECK_EQ(v, 0);
	CHECK_EQ(by_name(&c, RW_MSG_PATCH_DISABLE, "pfd_fix"), RW_MSG_OK);
	wait_state(&c, "pfd_fix", RW_PATCH_DISABLED);
	CHECK_EQ(pfd_compute(1), 2);
	unload(&c, "pfd_fix");

	printf("--- an O_PATH descriptor of a file without a build-id\n");
	fd = open(PFD_DIR "/pfd_fix_noid.so", O_PATH | O_CLOEXEC);
	if (fd < 0)
		SKIP(PFD_DIR "/pfd_fix_noid.so not built");
	fnv_id(PFD_DIR "/pfd_fix_noid.so", expect, sizeof(expect));
	CHECK_EQ(load(&c, "/elsewhere/pfd_fix_noid.so", fd), RW_MSG_OK);
	CHECK(tc_str(c.m.payload, c.m.len, RW_TAG_FILE_ID, got, sizeof(got)));
	printf("FILE_ID %s\n", got);
	CHECK(!strcmp(got, expect));
	close(fd);
	unload(&c, "pfd_fix");

	printf("--- the owner and mode checks apply to the descriptor's file\n");
	snprintf(path, sizeof(path), "%s/gw.so", tmp);
	copy(PFD_DIR "/pfd_fix.so", path, 0664);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	load(&c, "/client/gw.so", fd);
	refused(&c, -RW_ERR_PATCH_FILE, "/client/gw.so",
		"writable by its group");
	close(fd);
	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "%s/other.so", tmp);
		copy(PFD_DIR "/pfd_fix.so", path, 0644);
		CHECK_OK(chown(path, 65534, 65534));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		CHECK(fd >= 0);
		load(&c, "/client/other.so", fd);
		refused(&c, -RW_ERR_PATCH_FILE, "/client/other.so",
			"owned by uid 65534");
		close(fd);
	} else {
		printf("(not root: the other owner's file is not tried)\n");
	}
	snprintf(path, sizeof(path), "%s/fifo", tmp);
	CHECK_OK(mkfifo(path, 0600));
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	CHECK(fd >= 0);
	load(&c, "/client/fifo.so", fd);
	refused(&c, -RW_ERR_PATCH_FILE, "/client/fifo.so", "a FIFO");
	close(fd);
	CHECK_EQ(rw_patch_list(NULL, 0), 0);

	printf("--- rw_patch_load_fd's arguments\n");
	CHECK_EQ(rw_patch_load_fd(-1, "x", 0, &p), -EINVAL);
	CHECK_EQ(rw_patch_load_fd(0, "x", 0, NULL), -EINVAL);

	tc_close(&c);
	CHECK_OK(rw_ctl_stop());
	snprintf(path, sizeof(path), "rm -rf %s", tmp);
	CHECK_EQ(system(path), 0);
	printf("PASS\n");
	return 0;
}
#endif
