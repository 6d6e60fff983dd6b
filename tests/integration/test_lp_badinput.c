/* SPDX-License-Identifier: MIT */
/*
 * Integration: the live-patch loader (rw__lp_load, src/livepatch/elf.c)
 * refuses bad patches with the exact error and a message that names the
 * patch file and what is wrong, and leaves the running program as it was.
 *
 * Four workers call compute() all the time and check its result. For each
 * bad patch (built by test_lp_badinput.cmake into LPB_DIR), the test
 * checks:
 *   - the exact negative code, and that rw_patch_last_error() names the
 *     patch file and the expected thing (each message is printed);
 *   - *out is untouched; the first 8 bytes of compute() are the same; the
 *     patch is not mapped any more (same number of loaded objects, its
 *     file not in /proc/self/maps); the workers still get right results.
 * Bad inputs: a missing symbol, an ambiguous one, a position that does not
 * exist, a variable named as a function, an object that is not loaded, a
 * stripped object, a function without a patchable entry, a size mismatch,
 * a function patched twice, a missing reference, another descriptor
 * version, no note, a file writable by others or its group, a file owned
 * by another user (as root only), a missing file; a FIFO with no writer, a
 * device, a directory, a socket (under an alarm: open() used to block on
 * the FIFO); an AArch64 object, a relocatable object, an executable, files
 * cut short (segments, section headers, a section's contents past the
 * end: one died of SIGBUS in dlopen). Also: rw_patch_last_error() never
 * shows an earlier call's message; a patch whose constructor or destructor
 * loads or unloads a patch gets -EDEADLK there (it used to hang). Controls: a
 * good patch loads, with compute() and counter resolved to their
 * addresses; both helpers resolve by position; a second patch loaded while
 * the first is still mapped is its own object.
 */
#include "livepatch/lp.h"

#include "lp_test.h"
#include "lpb.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NWORKERS 4

__attribute__((used)) static int counter;

/* Where lpb_ctor.so's constructor and lpb_dtor.so's destructor report
 * their nested rw_patch_load / rw_patch_unload: code and message. */
extern int lpb_nested_err[2];
extern char lpb_nested_msg[2][512];
__attribute__((visibility("default"))) int lpb_nested_err[2];
__attribute__((visibility("default"))) char lpb_nested_msg[2][512];

__attribute__((noinline, used)) int compute(int x);
__attribute__((noinline, used)) int compute(int x)
{
	return x * 3 + 1;
}

/* The first "helper" of the program (helper2.c has the second). */
__attribute__((noinline, used)) static int helper(int x)
{
	return x * 7 + 3;
}

/* No NOPs at its entry: the loader must refuse to patch it. */
__attribute__((noinline, used, patchable_function_entry(0, 0))) int
not_patchable(int x);
__attribute__((noinline, used, patchable_function_entry(0, 0))) int
not_patchable(int x)
{
	return x - 1;
}

static atomic_bool stop;
static atomic_long wrong, calls[NWORKERS];

static void *worker(void *arg)
{
	long id = (long)(intptr_t)arg;
	int x = (int)id;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int (*volatile fn)(int) = compute;

		if (fn(x) != x * 3 + 1)
			atomic_fetch_add(&wrong, 1);
		if (not_patchable(x) != x - 1 || helper(x) != x * 7 + 3 ||
		    lpb_helper2_call(x) != x * 5 - 2)
			atomic_fetch_add(&wrong, 1);
		atomic_fetch_add_explicit(&calls[id], 1, memory_order_relaxed);
		x = (x + NWORKERS) & 0xffff;
	}
	return NULL;
}

static int count_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)info;
	(void)size;
	++*(int *)arg;
	return 0;
}

static int nobjects(void)
{
	int n = 0;

	dl_iterate_phdr(count_cb, &n);
	return n;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static void patch_path(char *buf, size_t size, const char *name)
{
	lp_patch_path(buf, size, LPB_DIR "/lpb_", name);
}

static void workers_ok(void)
{
	long before[NWORKERS];

	for (int i = 0; i < NWORKERS; i++)
		before[i] = atomic_load(&calls[i]);
	for (int i = 0; i < NWORKERS; i++)
		while (atomic_load(&calls[i]) == before[i])
			usleep(100);
	CHECK_EQ(atomic_load(&wrong), 0);
}

static void expect_fail_path(const char *path, unsigned flags, int code,
			     const char *needles)
{
	uint8_t entry[8], pattern[sizeof(struct rw__lp_obj)];
	struct rw__lp_obj o;
	int n0 = nobjects(), err;
	const char *msg;

	memcpy(entry, (const void *)(uintptr_t)compute, sizeof(entry));
	memset(&o, 0xa5, sizeof(o));
	memset(pattern, 0xa5, sizeof(pattern));

	err = rw__lp_load(path, flags, &o);
	msg = rw_patch_last_error();
	printf("%-16s %d (%s)\n                 %s\n", base_name(path), err,
	       rw_strerror(err), msg);
	fflush(stdout);
	CHECK_EQ(err, code);
	lp_has_all(msg, needles);
	CHECK(strstr(msg, path));
	CHECK(!memcmp(&o, pattern, sizeof(o)));
	CHECK(!memcmp(entry, (const void *)(uintptr_t)compute, sizeof(entry)));
	CHECK_EQ(nobjects(), n0);
	CHECK(!lp_file_mapped(base_name(path)));
	workers_ok();
}

static void expect_fail(const char *name, int code, const char *needles)
{
	char path[512];

	patch_path(path, sizeof(path), name);
	expect_fail_path(path, 0, code, needles);
}

/* A good load: 0, and the object is mapped until rw__lp_unload. */
static void load_ok(const char *path, unsigned flags, struct rw__lp_obj *o)
{
	uint8_t entry[8];
	int err;

	memcpy(entry, (const void *)(uintptr_t)compute, sizeof(entry));
	err = rw__lp_load(path, flags, o);
	if (err)
		fprintf(stderr, "%s: %d (%s): %s\n", path, err,
			rw_strerror(err), rw_patch_last_error());
	CHECK_EQ(err, 0);
	CHECK(!memcmp(entry, (const void *)(uintptr_t)compute, sizeof(entry)));
	CHECK(lp_file_mapped(base_name(path)));
	workers_ok();
}

static void check_sled(const struct rw__lp_func *f)
{
	CHECK(f->sled == f->old_addr || f->sled == f->old_addr + 4);
	CHECK(f->sled_len >= 5);
	CHECK(f->sled + f->sled_len <= f->old_addr + f->old_size);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	CHECK(in >= 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK_EQ(write(out, buf, (size_t)n), n);
	CHECK_EQ(n, 0);
	close(in);
	CHECK_EQ(fchmod(out, mode), 0);
	close(out);
}

static void test_good(void)
{
	struct rw__lp_obj o, o2;
	char path[512], path2[512];
	int n0 = nobjects();

	/* (h), (j): compute and counter resolve to their addresses. */
	patch_path(path, sizeof(path), "good");
	load_ok(path, 0, &o);
	CHECK(o.handle);
	CHECK(o.desc && !strcmp(o.desc->name, "lpb_good"));
	CHECK_EQ(o.nfuncs, 1);
	CHECK_EQ(o.funcs[0].old_addr, (uintptr_t)&compute);
	CHECK(o.funcs[0].old_size > 5);
	check_sled(&o.funcs[0]);
	CHECK_EQ(o.funcs[0].new_addr, (uintptr_t)o.desc->funcs[0].new_func);
	CHECK(o.funcs[0].new_size > 0);
	CHECK(o.funcs[0].desc == &o.desc->funcs[0]);
	CHECK(!strcmp(o.funcs[0].label, "main:compute"));
	CHECK_EQ(o.desc->nrefs, 1);
	CHECK(*o.desc->refs[0].slot == (void *)&counter);
	CHECK(!strcmp(o.path, path));
	printf("good             compute %p (sled %#lx+%zu) -> %#lx (%zu "
	       "bytes), counter %p\n",
	       (void *)(uintptr_t)&compute, (unsigned long)o.funcs[0].sled,
	       o.funcs[0].sled_len, (unsigned long)o.funcs[0].new_addr,
	       o.funcs[0].new_size, (void *)&counter);

	/* (b) control: by position, while the good patch stays mapped (the
	 * loader must not take it for the same object: the two are opened
	 * through /proc/self/fd with the same descriptor number). */
	patch_path(path2, sizeof(path2), "ambig_pos");
	load_ok(path2, 0, &o2);
	CHECK(!strcmp(o2.desc->name, "lpb_ambig_pos"));
	CHECK(o2.handle != o.handle);
	CHECK_EQ(o2.nfuncs, 2);
	CHECK_EQ(o2.funcs[0].old_addr, (uintptr_t)&helper);
	CHECK_EQ(o2.funcs[1].old_addr, lpb_helper2_addr());
	CHECK(!strcmp(o2.funcs[0].label, "main:helper,1"));
	CHECK(!strcmp(o2.funcs[1].label, "main:helper,2"));
	check_sled(&o2.funcs[0]);
	check_sled(&o2.funcs[1]);
	printf("ambig_pos        helper,1 %#lx helper,2 %#lx\n",
	       (unsigned long)o2.funcs[0].old_addr,
	       (unsigned long)o2.funcs[1].old_addr);
	rw__lp_unload(&o2);
	CHECK(!lp_file_mapped("lpb_ambig_pos.so"));
	rw__lp_unload(&o);
	CHECK(!lp_file_mapped("lpb_good.so"));
	CHECK_EQ(nobjects(), n0);

	/* Again, now that both names are free. */
	load_ok(path2, 0, &o2);
	CHECK(!strcmp(o2.desc->name, "lpb_ambig_pos"));
	rw__lp_unload(&o2);
	CHECK_EQ(nobjects(), n0);
}

/* (f), (g): the file's mode and owner. */
static void test_file_checks(void)
{
	char dir[] = "/tmp/rw-lpb-XXXXXX", good[512], copy[600], gcopy[600];
	struct rw__lp_obj o;

	CHECK(mkdtemp(dir));
	patch_path(good, sizeof(good), "good");
	snprintf(copy, sizeof(copy), "%s/lpb_good_0666.so", dir);
	copy_file(good, copy, 0666);
	expect_fail_path(copy, 0, -RW_ERR_PATCH_FILE,
			 "writable by others (mode 0666)");
	/* The flag skips the owner and mode checks. */
	load_ok(copy, RW_PATCH_LOAD_ALLOW_ANY_OWNER, &o);
	rw__lp_unload(&o);

	snprintf(gcopy, sizeof(gcopy), "%s/lpb_good_0620.so", dir);
	copy_file(good, gcopy, 0620);
	expect_fail_path(gcopy, 0, -RW_ERR_PATCH_FILE,
			 "writable by its group (mode 0620)");
	CHECK_EQ(unlink(gcopy), 0);

	CHECK_EQ(chmod(copy, 0644), 0);
	if (geteuid() == 0) {
		CHECK_EQ(chown(copy, 65534, 65534), 0);
		expect_fail_path(copy, 0, -RW_ERR_PATCH_FILE,
				 "owned by uid 65534, not by you (uid 0) or "
				 "root");
		load_ok(copy, RW_PATCH_LOAD_ALLOW_ANY_OWNER, &o);
		rw__lp_unload(&o);
	} else {
		printf("owner check skipped: it needs root to chown a file "
		       "to uid 65534\n");
	}
	CHECK_EQ(unlink(copy), 0);

	snprintf(copy, sizeof(copy), "%s/no_such_patch.so", dir);
	expect_fail_path(copy, 0, -ENOENT, "cannot open");
	CHECK_EQ(rmdir(dir), 0);
}

/* @dir/@name: a copy of @from, changed by @edit (which may change its
 * length, within @cap bytes), mode 0600. */
static void craft(const char *from, char *to, size_t tosize, const char *dir,
		  const char *name,
		  void (*edit)(uint8_t *buf, size_t *len, size_t cap))
{
	size_t cap = 1 << 22, len = 0;
	uint8_t *buf = malloc(cap);
	int fd = open(from, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	CHECK(buf && fd >= 0);
	while ((n = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)n;
	CHECK_EQ(n, 0);
	CHECK(len < cap);
	close(fd);
	edit(buf, &len, cap);
	snprintf(to, tosize, "%s/%s", dir, name);
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, buf, len), (ssize_t)len);
	close(fd);
	free(buf);
}

/* The entry's NOPs that the loader asks for. */
#if defined(__aarch64__)
#define ENTRY_NOPS "2"
#else
#define ENTRY_NOPS "5"
#endif

/* A patch for the other machine rewire supports. */
static void to_other_machine(uint8_t *buf, size_t *len, size_t cap)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;

	(void)len;
	(void)cap;
#if defined(__aarch64__)
	eh->e_machine = EM_X86_64;
#else
	eh->e_machine = EM_AARCH64;
#endif
}

static void to_rel(uint8_t *buf, size_t *len, size_t cap)
{
	(void)len;
	(void)cap;
	((Elf64_Ehdr *)buf)->e_type = ET_REL;
}

static void unchanged(uint8_t *buf, size_t *len, size_t cap)
{
	(void)buf;
	(void)len;
	(void)cap;
}

/* Cut in the middle: loadable segments and section headers are lost. */
static void cut_half(uint8_t *buf, size_t *len, size_t cap)
{
	(void)buf;
	(void)cap;
	*len /= 2;
}

/* Only the end of the section header table is lost. */
static void cut_tail(uint8_t *buf, size_t *len, size_t cap)
{
	(void)buf;
	(void)cap;
	CHECK_EQ(((Elf64_Ehdr *)buf)->e_shoff +
			 ((Elf64_Ehdr *)buf)->e_shnum * sizeof(Elf64_Shdr),
		 *len);
	*len -= 16;
}

/*
 * Point 24 of issue 12: everything up to the second loadable segment (the
 * code) is kept, with the note and .dynsym; the file is cut 64 bytes into
 * it, and the section header table is moved in front of the cut (appended
 * there, e_shoff rewritten). Every header the old loader read was whole,
 * and dlopen mapped segments past the end of the file: SIGBUS.
 */
static void cut_segments(uint8_t *buf, size_t *len, size_t cap)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + eh->e_phoff);
	size_t shsize = (size_t)eh->e_shnum * sizeof(Elf64_Shdr), cut = 0;
	size_t phend = eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr);
	int nload = 0;

	/* A cut 64 bytes into a segment and past the program headers, that
	 * leaves a PT_LOAD ending beyond the new end of the file (the cut
	 * plus the moved section headers): into the second PT_LOAD (x86-64:
	 * text), or where that is not enough (aarch64: ld makes two, text
	 * with the headers, then a small data one), into the first. */
	for (int pass = 0; pass < 2 && !cut; pass++) {
		nload = 0;
		for (int i = 0; i < eh->e_phnum && !cut; i++) {
			size_t at = ph[i].p_offset + 64;

			if (ph[i].p_type != PT_LOAD)
				continue;
			if (++nload != 2 && pass == 0)
				continue;
			if (at < phend + 64)
				at = phend + 64;
			if (at >= ph[i].p_offset + ph[i].p_filesz)
				continue;
			for (int j = 0; j < eh->e_phnum; j++)
				if (ph[j].p_type == PT_LOAD &&
				    ph[j].p_offset + ph[j].p_filesz > at + shsize)
					cut = at;
		}
	}
	CHECK(cut && cut + shsize <= cap && cut < *len);
	memmove(buf + cut, buf + eh->e_shoff, shsize);
	eh->e_shoff = cut;
	*len = cut + shsize;
}

/* .symtab's contents said to lie past the end of the file. */
static void symtab_away(uint8_t *buf, size_t *len, size_t cap)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Shdr *sh = (Elf64_Shdr *)(buf + eh->e_shoff);

	(void)cap;
	for (int i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_type == SHT_SYMTAB)
			sh[i].sh_offset = *len + 4096;
}

/*
 * Issue 12, point 14: files that are not what they claim get the error that
 * says what they are (not "another descriptor version", not "not a regular
 * file", not "build it with RW_PATCH()"); point 24: a truncated patch whose
 * headers are whole but whose segments lie past the end is refused before
 * dlopen (which died of SIGBUS).
 */
static void test_wrong_files(void)
{
	char dir[] = "/tmp/rw-lpb-XXXXXX", good[512], path[600];

	CHECK(mkdtemp(dir));
	patch_path(good, sizeof(good), "good");

	craft(good, path, sizeof(path), dir, "lpb_other.so", to_other_machine);
#if defined(__aarch64__)
	expect_fail_path(path, 0, -RW_ERR_PATCH_FILE,
			 "built for another machine (e_machine 62, x86-64)|"
			 "not AArch64");
#else
	expect_fail_path(path, 0, -RW_ERR_PATCH_FILE,
			 "built for another machine (e_machine 183, AArch64)|"
			 "not x86-64");
#endif
	CHECK_EQ(unlink(path), 0);

	craft(good, path, sizeof(path), dir, "lpb_rel.so", to_rel);
	expect_fail_path(path, 0, -RW_ERR_PATCH_FILE,
			 "a relocatable object (.o) (e_type 1), not a shared "
			 "object");
	CHECK_EQ(unlink(path), 0);

	/* This very program (PIE, or ET_EXEC where PIE is not the default). */
	craft("/proc/self/exe", path, sizeof(path), dir, "lpb_exe.so",
	      unchanged);
	expect_fail_path(path, 0, -RW_ERR_PATCH_FILE,
			 "executable|not a shared object");
	CHECK_EQ(unlink(path), 0);

	craft(good, path, sizeof(path), dir, "lpb_half.so", cut_half);
	expect_fail_path(path, 0, -RW_ERR_PATCH_FILE,
			 "truncated or corrupt: segment|ends beyond the end "
			 "of the file");
	CHECK_EQ(unlink(path), 0);

	craft(good, path, sizeof(path), dir, "lpb_tail.so", cut_tail);
	expect_fail_path(path, 0, -RW_ERR_PATCH_FILE,
			 "truncated or corrupt: its section headers");
	CHECK_EQ(unlink(path), 0);

	craft(good, path, sizeof(path), dir, "lpb_cutseg.so", cut_segments);
	expect_fail_path(path, 0, -RW_ERR_PATCH_FILE,
			 "truncated or corrupt: segment|(PT_LOAD, offset|ends "
			 "beyond the end of the file");
	CHECK_EQ(unlink(path), 0);

	craft(good, path, sizeof(path), dir, "lpb_symtab.so", symtab_away);
	expect_fail_path(path, 0, -RW_ERR_PATCH_FILE,
			 "truncated or corrupt: section|'.symtab'|ends beyond "
			 "the end of the file");
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(rmdir(dir), 0);
}

/*
 * Issue 12, point 11: a FIFO with no writer, a device, a directory and a
 * socket are refused at once, saying what they are. The old loader's
 * open() of the FIFO never returned: the alarm makes that a failure.
 */
static void test_not_regular(void)
{
	char dir[] = "/tmp/rw-lpb-XXXXXX", path[600];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	CHECK(mkdtemp(dir));
	alarm(30);
	snprintf(path, sizeof(path), "%s/lpb_fifo.so", dir);
	CHECK_EQ(mkfifo(path, 0600), 0);
	expect_fail_path(path, 0, -RW_ERR_PATCH_FILE,
			 "refused: not a regular file (a FIFO)");
	CHECK_EQ(unlink(path), 0);

	expect_fail_path("/dev/null", 0, -RW_ERR_PATCH_FILE,
			 "not a regular file (a character device)");
	expect_fail_path(dir, 0, -RW_ERR_PATCH_FILE,
			 "not a regular file (a directory)");

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/lpb_sock.so", dir);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	CHECK_EQ(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ(listen(s, 1), 0);
	expect_fail_path(sa.sun_path, 0, -RW_ERR_PATCH_FILE,
			 "not a regular file (a socket)");
	close(s);
	CHECK_EQ(unlink(sa.sun_path), 0);
	alarm(0);
	CHECK_EQ(rmdir(dir), 0);
}

/*
 * Issue 12, point 14: rw_patch_last_error() is the message of this
 * thread's last rw_patch_* call, never one left from an earlier call.
 */
static void test_stale_error(void)
{
	struct rw_patch_info info;
	struct rw_patch *p = NULL;
	char good[512];

	CHECK_EQ(rw_patch_load("/etc/passwd", 0, &p), -RW_ERR_PATCH_FILE);
	lp_has_all(rw_patch_last_error(), "/etc/passwd: not an ELF file");
	patch_path(good, sizeof(good), "good");
	p = lp_load(good, 0);
	printf("stale error      after a good load: %s\n",
	       rw_patch_last_error());
	/* Or, in a build without -g, the load's own warning. */
	CHECK(!strcmp(rw_patch_last_error(), "no error") ||
	      (!strncmp(rw_patch_last_error(), "warning: ", 9) &&
	       strstr(rw_patch_last_error(), good)));
	CHECK_EQ(rw_patch_enable(NULL), -EINVAL);
	lp_has_all(rw_patch_last_error(), "is not a loaded patch");
	CHECK_EQ(rw_patch_state(p, &info), 0);
	CHECK(!strcmp(rw_patch_last_error(), "no error"));
	CHECK_EQ(rw_patch_unload(p), 0);
	CHECK(!strcmp(rw_patch_last_error(), "no error"));
}

/*
 * Issue 12, point 23: a patch's constructor (run by the loader's dlopen)
 * and destructor (run by the unload's dlclose) that load or unload a patch
 * get -EDEADLK at once, and the outer load and unload complete. The old
 * loader waited on its own lock forever: the alarm makes that a failure.
 * A pre_patch callback (under the patch lock) that loads a patch gets
 * -EDEADLK before that patch is mapped (it used to be mapped and its
 * constructors run first, and the error came without a message).
 */
static void test_nested(void)
{
	struct rw_patch *good, *p;
	char path[512];

	alarm(30);
	lpb_nested_err[0] = lpb_nested_err[1] = 1;
	patch_path(path, sizeof(path), "ctor");
	p = lp_load(path, 0);
	printf("ctor             %d (%s)\n                 %s\n",
	       lpb_nested_err[0], rw_strerror(lpb_nested_err[0]),
	       lpb_nested_msg[0]);
	CHECK_EQ(lpb_nested_err[0], -EDEADLK);
	lp_has_all(lpb_nested_msg[0], "lpb_good.so: refused|constructor or "
				      "destructor");
	/* Its pre_patch callback, under the patch lock: the same. */
	lp_enable_wait(p, 10000);
	printf("pre_patch        %d (%s)\n                 %s\n",
	       lpb_nested_err[1], rw_strerror(lpb_nested_err[1]),
	       lpb_nested_msg[1]);
	CHECK_EQ(lpb_nested_err[1], -EDEADLK);
	lp_has_all(lpb_nested_msg[1], "lpb_good.so: refused: called from a "
				      "patch's callback");
	CHECK(!lp_file_mapped("lpb_good.so"));
	lp_disable_wait(p, 10000);
	CHECK_EQ(rw_patch_unload(p), 0);
	CHECK(!lp_file_mapped("lpb_ctor.so"));
	CHECK(!rw_patch_find("lpb_good"));

	patch_path(path, sizeof(path), "good");
	good = lp_load(path, 0);
	patch_path(path, sizeof(path), "dtor");
	p = lp_load(path, 0);
	lpb_nested_err[0] = lpb_nested_err[1] = 1;
	CHECK_EQ(rw_patch_unload(p), 0);
	printf("dtor             %d (%s)\n                 %s\n"
	       "                 %d (%s)\n                 %s\n",
	       lpb_nested_err[0], rw_strerror(lpb_nested_err[0]),
	       lpb_nested_msg[0], lpb_nested_err[1],
	       rw_strerror(lpb_nested_err[1]), lpb_nested_msg[1]);
	CHECK_EQ(lpb_nested_err[0], -EDEADLK);
	lp_has_all(lpb_nested_msg[0], "lpb_good.so: refused|constructor or "
				      "destructor");
	CHECK_EQ(lpb_nested_err[1], -EDEADLK);
	lp_has_all(lpb_nested_msg[1], "patch lpb_good: refused|constructor or "
				      "destructor");
	CHECK(!lp_file_mapped("lpb_dtor.so"));
	CHECK(rw_patch_find("lpb_good") == good);
	CHECK_EQ(rw_patch_unload(good), 0);
	alarm(0);
	workers_ok();
}

int main(void)
{
	pthread_t t[NWORKERS];
	char path[512];
	void *dso;

#ifndef RW_BACKEND_PATCHING
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
#endif
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 0; i < NWORKERS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, worker,
					(void *)(intptr_t)i),
			 0);

	snprintf(path, sizeof(path), "%s/lpb_dso_stripped.so", LPB_DIR);
	dso = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dso)
		fprintf(stderr, "%s\n", dlerror());
	CHECK(dso);

	expect_fail("missing", -RW_ERR_SYMBOL,
		    "'no_such_function' not found in the main program");
	expect_fail("ambig", -RW_ERR_AMBIGUOUS,
		    "'helper' has 2 symbols in the main program|give its "
		    "position (1..2)");
	expect_fail("badpos", -RW_ERR_SYMBOL,
		    "'helper' has 2 symbols in the main program|"
		    "there is no position 3");
	expect_fail("notfunc", -RW_ERR_SYMBOL,
		    "'counter' in the main program|is not a function");
	expect_fail("noobj", -RW_ERR_SYMBOL,
		    "object 'liblpb_not_loaded.so.1' (of 'f') is not loaded");
	expect_fail("stripped", -RW_ERR_STRIPPED,
		    "lpb_dso_stripped.so has no symbol table (stripped)");
	expect_fail("good_stripped", -RW_ERR_STRIPPED,
		    "has no sized symbol in the patch");
	expect_fail("nopfe", -RW_ERR_NOT_PATCHABLE,
		    "'not_patchable' in the main program|has no patchable "
		    "entry|-fpatchable-function-entry=" ENTRY_NOPS);
	expect_fail("sized", -RW_ERR_NOT_PATCHABLE,
		    "size mismatch: 'compute' in the main "
		    "program|the patch expects 3");
	expect_fail("twice", -EINVAL, "patches 'compute' twice");
	expect_fail("badref", -RW_ERR_SYMBOL,
		    "'no_such_variable' not found in the main program");
	/* These two abort in their constructor if they ever get mapped. */
	expect_fail(
		"v2", -RW_ERR_PATCH_VERSION,
		"built for descriptor version 4, this rewire reads 2 and 3");
	expect_fail("nonote", -RW_ERR_PATCH_VERSION,
		    "not a rewire patch (no .note.rewire)");

	test_file_checks();
	test_good();
	test_not_regular();
	test_wrong_files();
	test_stale_error();
	test_nested();

	atomic_store(&stop, true);
	for (int i = 0; i < NWORKERS; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_EQ(atomic_load(&wrong), 0);
	CHECK_EQ(counter, 0);
	dlclose(dso);
	printf("ok\n");
	return 0;
}
