/* SPDX-License-Identifier: MIT */
/*
 * Integration: build-patch's emitter (bp_emit, tools/rewire/bp_emit.c) on
 * GCC's real output, loaded for real.
 *
 * The target is this program's own eu_work (tests/buildpatch/emit_unit/
 * unit.c, built with Debian's flags and patchable entries) and
 * libeu_cxx.so's EuBox::get and eu_twice<int> (cxx.cc). The test compiles
 * the fixed sources (unit_after.c, cxx_after.cc) to after.s as the driver
 * does (the same flags plus -ffunction-sections -fdata-sections -g0
 * -mcmodel=large -fno-pic -fno-pie -S), classifies their symbols by hand
 * as the differ would, and reads each old function's size and hash and
 * the object's build-id from the file as the driver does.
 *
 *   1. C: the patch .so has no DT_TEXTREL, its .rewire.bind is the
 *      binding of eu_work, its descriptor names eu_work; every relocation
 *      by name is one of the program's symbols the code uses (the static
 *      eu_counter, the static eu_scale and cold eu_note, the global
 *      eu_other), the others carry a target the dynamic linker resolved
 *      (string literals, the jump table, stderr, snprintf, fprintf), and
 *      every field the loader fills holds zero. Loaded, enabled: the new
 *      words and numbers, the jump table's every case, the cold path's
 *      message on stderr through libc's stderr, and eu_counter still the
 *      program's (eu_count() goes on counting across enable and
 *      disable). Disabled: the old behaviour again.
 *   2. C++ (object libeu_cxx.so): the personality and LSDA pointers in
 *      PIC form, a type table (the fixed get catches std::exception) and a
 *      template instance in a comdat group; enabled, get returns the new
 *      values, the exception is caught in the patch and the destructor of
 *      the guard runs (the library's static counter).
 *      1b. A two-unit patch (eu_work and other.c's eu_other): the units'
 *      local labels are renamed apart, and eu_scale, a name the program
 *      holds twice, is found by its position.
 *   3. Refusals: no function to replace; a call or a %rip-relative operand
 *      the emitter cannot relocate (aarch64: a conditional branch to the
 *      program, an ADRP/:lo12: pair to its data, a :got: operand); a
 *      thread-local operand (aarch64: :tprel_*:); a static key site (an
 *      entry of __rw_jump_table into the carried code); another function
 *      in a carried function's section (no -ffunction-sections); a
 *      command that fails (named, with its output).
 *   4. Forms, on hand-written assembly: the moffs store and load (aarch64:
 *      the literal pool's .xword entries, and a tail call to libc that
 *      becomes ldr x16 / br x16 with its literal at the end of the
 *      section), a program symbol with an addend from code and from data
 *      (where is the .quad itself), the patch's own data and function
 *      addresses left to ld.so, a clone (RW_PATCH_F_CLONE), another
 *      object, the sources copied to out_src.
 *
 * On aarch64 (bp_emit.c's aarch64 rules) the same parts run on GCC's
 * aarch64 output, built with -mbranch-protection=standard where x86-64
 * has -fcf-protection; the assembly of parts 3 and 4 is aarch64's.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("live patching needs a backend that patches code (x86_64, "
	     "aarch64)");
}
#else

#include "bp.h"
#include "eu.h"
#include "livepatch/bind.h"
#include "lp_test.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <rewire/patch.h>
#include <sys/stat.h>
#include <unistd.h>

/* The machine of after.s (bp_emit.machine), and the encoding of the
 * personality pointer GCC's PIC form uses (DW_EH_PE_indirect | pcrel |
 * sdata4 on x86-64, sdata8 on aarch64, where GCC emits it so itself). */
#if defined(RW_BACKEND_AARCH64)
#define EU_MACHINE EM_AARCH64
#define EU_PERSONALITY "0x9c"
#else
#define EU_MACHINE EM_X86_64
#define EU_PERSONALITY "0x9b"
#endif

static char work[256]; /* the scratch directory */

static void sh(const char *cmd)
{
	int r = system(cmd);

	if (r != 0) {
		fprintf(stderr, "'%s' failed (%d)\n", cmd, r);
		exit(1);
	}
}

/* after.s of src, as build-patch's driver compiles it (a cross build
 * compiles cxx_after.s alike: test_bp_emit.cmake). */
static void compile_after(const char *cc, const char *src, const char *out)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "'%s' %s -I'%s' -ffunction-sections -fdata-sections -g0 "
		 "-mcmodel=large -fno-pic -fno-pie -S -o '%s' '%s/%s'",
		 cc, EU_FLAGS, EU_SRC, out, EU_SRC, src);
	sh(cmd);
}

/* ---- What the driver reads from the program's file ------------------------ */

struct prog_func {
	unsigned long size;
	uint64_t hash;
};

static Elf *elf_of(const char *path, int *fd)
{
	Elf *e;

	CHECK(elf_version(EV_CURRENT) != EV_NONE);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(*fd >= 0);
	e = elf_begin(*fd, ELF_C_READ, NULL);
	CHECK(e != NULL);
	return e;
}

static struct prog_func prog_func(const char *path, const char *name)
{
	struct prog_func pf = { 0, 0 };
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	int fd;
	Elf *e = elf_of(path, &fd);
	bool found = false;

	while ((scn = elf_nextscn(e, scn)) && !found) {
		Elf_Data *d;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		d = elf_getdata(scn, NULL);
		n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < n && !found; i++) {
			GElf_Sym s;
			GElf_Shdr ts;
			uint8_t *code;

			if (!gelf_getsym(d, (int)i, &s) ||
			    strcmp(elf_strptr(e, sh.sh_link, s.st_name), name))
				continue;
			CHECK(gelf_getshdr(elf_getscn(e, s.st_shndx), &ts));
			code = malloc(s.st_size);
			CHECK(code != NULL);
			CHECK(pread(fd, code, s.st_size,
				    (off_t)(ts.sh_offset + s.st_value -
					    ts.sh_addr)) == (ssize_t)s.st_size);
			pf.size = s.st_size;
			pf.hash = rw__func_hash(code, s.st_size);
			free(code);
			found = true;
		}
	}
	elf_end(e);
	close(fd);
	if (!found) {
		fprintf(stderr, "%s: no symbol '%s'\n", path, name);
		exit(1);
	}
	return pf;
}

static size_t build_id(const char *path, uint8_t *out, size_t max)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	int fd;
	Elf *e = elf_of(path, &fd);
	size_t len = 0;

	while ((scn = elf_nextscn(e, scn)) && !len) {
		Elf_Data *d;
		GElf_Nhdr nh;
		size_t off = 0, noff, doff;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		d = elf_getdata(scn, NULL);
		while (d && (off = gelf_getnote(d, off, &nh, &noff, &doff))) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp((char *)d->d_buf + noff, "GNU", 4) &&
			    nh.n_descsz <= max) {
				memcpy(out, (char *)d->d_buf + doff,
				       nh.n_descsz);
				len = nh.n_descsz;
				break;
			}
		}
	}
	elf_end(e);
	close(fd);
	return len;
}

static void need_symbol(const char *path, const char *name)
{
	(void)prog_func(path, name);
}

/* The position of @file's local @name among the symbols of that name (as
 * readelf -s lists them; the symbols of a file follow its STT_FILE). */
static unsigned long sympos_of(const char *path, const char *file,
			       const char *name)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	int fd;
	Elf *e = elf_of(path, &fd);
	unsigned long n = 0, pos = 0;

	while ((scn = elf_nextscn(e, scn))) {
		const char *cur = "";
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			const char *sn;

			if (!gelf_getsym(d, (int)i, &s))
				continue;
			sn = elf_strptr(e, sh.sh_link, s.st_name);
			if (GELF_ST_TYPE(s.st_info) == STT_FILE) {
				cur = sn;
				continue;
			}
			if (strcmp(sn, name))
				continue;
			n++;
			if (strlen(cur) >= strlen(file) &&
			    !strcmp(cur + strlen(cur) - strlen(file), file))
				pos = n;
		}
	}
	elf_end(e);
	close(fd);
	if (!pos) {
		fprintf(stderr, "%s: no '%s' of %s\n", path, name, file);
		exit(1);
	}
	return n > 1 ? pos : 0;
}

/* ---- Checking a patch file ----------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	CHECK(f != NULL);
	CHECK(fseek(f, 0, SEEK_END) == 0);
	n = ftell(f);
	CHECK(n >= 0);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	CHECK(buf != NULL);
	CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* readelf's view: no text relocations; the binding as expected. */
static void check_file(const char *so, const char *bind_expected)
{
	char cmd[PATH_MAX * 2 + 128], out[PATH_MAX];
	size_t len;
	char *bind;

	snprintf(cmd, sizeof(cmd), "readelf -d '%s' | grep -q TEXTREL", so);
	CHECK(system(cmd) != 0);
	snprintf(out, sizeof(out), "%s/bind.txt", work);
	snprintf(
		cmd, sizeof(cmd),
		"objcopy --dump-section .rewire.bind='%s' '%s' '%s/scratch.so'",
		out, so, work);
	sh(cmd);
	bind = read_file(out, &len);
	if (strcmp(bind, bind_expected)) {
		fprintf(stderr, ".rewire.bind is\n%s\nexpected\n%s\n", bind,
			bind_expected);
		exit(1);
	}
	free(bind);
}

static char *bind_of(const char *object, const char *elf_path,
		     const char *const *names, size_t n)
{
	uint8_t id[64];
	size_t idlen = build_id(elf_path, id, sizeof(id));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f != NULL);
	CHECK(idlen > 0);
	fprintf(f, "rewire-bind\t1\nobject\t%s\t", object);
	for (size_t i = 0; i < idlen; i++)
		fprintf(f, "%02x", id[i]);
	fputc('\n', f);
	for (size_t i = 0; i < n; i++) {
		struct prog_func pf = prog_func(elf_path, names[i]);

		fprintf(f, "func\t%s\t%s\t0\t%lu\t%016" PRIx64 "\n", object,
			names[i], pf.size, pf.hash);
	}
	fclose(f);
	return buf;
}

/* The descriptor, read before any loader touched it: names and zeros. */
static void check_descriptor(const char *so, const char *const *named,
			     size_t nnamed, const char *also, size_t nfuncs)
{
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	const struct rw_patch_desc *d;
	bool seen[8] = { false };
	size_t nnames = 0;

	if (!h) {
		fprintf(stderr, "dlopen(%s): %s\n", so, dlerror());
		exit(1);
	}
	d = dlsym(h, RW_PATCH_DESC_SYMBOL);
	CHECK(d != NULL);
	CHECK_EQ(d->version, 3);
	CHECK_EQ(d->nfuncs, nfuncs);
	CHECK(d->nrelocs > nnamed);
	for (size_t i = 0; i < d->nrelocs; i++) {
		const struct rw_patch_reloc *r = &d->relocs[i];
		bool known;
		uint64_t v;

		CHECK_EQ(r->type, RW_PATCH_RELOC_ABS64);
		CHECK_EQ(r->flags, 0);
		memcpy(&v, r->where, 8);
		CHECK_EQ(v, 0);
		if (!r->name) {
			CHECK(r->target != NULL);
			CHECK_EQ(r->addend, 0);
			continue;
		}
		nnames++;
		CHECK(r->target == NULL);
		/* eu_scale: the position of unit.c's, checked by its use */
		CHECK(r->sympos == 0 || !strcmp(r->name, "eu_scale"));
		known = false;
		for (size_t k = 0; k < nnamed; k++) {
			if (!strcmp(r->name, named[k])) {
				seen[k] = known = true;
			}
		}
		if (!known && (!also || strcmp(r->name, also))) {
			fprintf(stderr, "unexpected relocation by name: %s\n",
				r->name);
			exit(1);
		}
	}
	for (size_t k = 0; k < nnamed; k++) {
		if (!seen[k]) {
			fprintf(stderr, "no relocation names %s\n", named[k]);
			exit(1);
		}
	}
	CHECK(nnames >= nnamed);
	dlclose(h);
}

static void emit(struct bp_emit *e, const char *so)
{
	char err[2048];

	e->machine = EU_MACHINE;
	e->cc = EU_CC;
	e->include_dir = EU_INCLUDE;
	e->workdir = work;
	e->out_so = so;
	e->out_src = NULL;
	e->verbose = getenv("EU_VERBOSE") != NULL;
	if (bp_emit(e, err, sizeof(err))) {
		fprintf(stderr, "bp_emit: %s\n", err);
		exit(1);
	}
}

/* ---- 1. C ------------------------------------------------------------------ */

static const char *const c_named[] = { "eu_counter", "eu_scale", "eu_note",
				       "eu_other" };

/* stderr into a file around fn, its content back */
static char *capture_stderr(int k, int *ret)
{
	char path[PATH_MAX], buf[64];
	size_t len;
	int fd, saved;
	char *s;

	snprintf(path, sizeof(path), "%s/stderr.txt", work);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	CHECK(saved >= 0);
	CHECK(dup2(fd, 2) == 2);
	*ret = eu_work(k, buf, sizeof(buf));
	fflush(stderr);
	CHECK(dup2(saved, 2) == 2);
	close(saved);
	close(fd);
	s = read_file(path, &len);
	return s;
}

static void expect_work(int k, int ret, const char *word)
{
	char buf[64] = "";
	long before = eu_count();
	int r = eu_work(k, buf, sizeof(buf));

	if (r != ret || strcmp(buf, word)) {
		fprintf(stderr, "eu_work(%d) = %d \"%s\", expected %d \"%s\"\n",
			k, r, buf, ret, word);
		exit(1);
	}
	/* the program's eu_counter, whichever code ran */
	CHECK_EQ(eu_count(), before + 1);
}

static void expect_old(void)
{
	char *msg;
	int r;

	expect_work(0, 100, "zero");
	expect_work(1, 104, "one 3");
	expect_work(2, 108, "two 102");
	expect_work(4, 116, "four 16");
	expect_work(5, 120, "five f");
	expect_work(9, 136, "many 9");
	msg = capture_stderr(-3, &r);
	CHECK_EQ(r, -1);
	lp_has_all(msg, "eu_note -3|eu_work: negative -3");
	free(msg);
}

/* @extra: what the fixed eu_other adds (the two-unit patch) */
static void expect_new(int extra)
{
	char buf[64], want[64];
	char *msg;
	long n;
	int r;

	snprintf(want, sizeof(want), "TWO %d", 102 + extra);
	expect_work(0, 1100 + extra, "ZERO");
	expect_work(1, 1104 + extra, "ONE 3");
	expect_work(2, 1108 + extra, want);
	CHECK_EQ(eu_other(7), 107 + extra);
	n = eu_count();
	r = eu_work(3, buf, sizeof(buf));
	CHECK_EQ(r, 1112 + extra);
	snprintf(want, sizeof(want), "THREE %ld", n + 1);
	CHECK(!strcmp(buf, want));
	expect_work(4, 1116 + extra, "FOUR 16");
	expect_work(5, 1120 + extra, "FIVE f");
	expect_work(9, 1136 + extra, "MANY 9");
	msg = capture_stderr(-3, &r);
	CHECK_EQ(r, -2);
	lp_has_all(msg, "eu_note -3|eu_work(new): negative -3");
	free(msg);
}

static void part_c(void)
{
	char as[PATH_MAX], so[PATH_MAX];
	uint8_t id[64];
	const char *names[] = { "eu_work" };
	struct prog_func pf = prog_func("/proc/self/exe", "eu_work");
	struct bp_sym syms[] = {
		{ "eu_counter", BP_S_PROGRAM, "eu_counter", true },
		{ "eu_scale", BP_S_PROGRAM, "eu_scale", true },
		{ "eu_note", BP_S_PROGRAM, "eu_note", true },
		{ "eu_other", BP_S_PROGRAM, "eu_other", false },
		{ "eu_count", BP_S_PROGRAM, "eu_count", false },
	};
	unsigned long pos[5] = {
		0, sympos_of("/proc/self/exe", "unit.c", "eu_scale"), 0, 0, 0
	};
	struct bp_emit_func f = {
		.sym = "eu_work",
		.replace = true,
		.old_name = "eu_work",
		.old_size = pf.size,
		.old_hash = pf.hash,
	};
	struct bp_emit_tu tu = { as, &f, 1, syms, 5, pos };
	struct bp_emit e = {
		.name = "eu_fix", .object = "", .tus = &tu, .ntus = 1
	};
	char *bind;
	struct rw_patch *p;

	/* GCC made what the test relies on (aarch64: GCC does not split
	 * eu_work into a cold part there; eu_note is cold) */
#if !defined(RW_BACKEND_AARCH64)
	need_symbol("/proc/self/exe", "eu_work.cold");
#endif
	need_symbol("/proc/self/exe", "eu_scale");
	need_symbol("/proc/self/exe", "eu_note");
	need_symbol("/proc/self/exe", "eu_counter");

	snprintf(as, sizeof(as), "%s/unit_after.s", work);
	snprintf(so, sizeof(so), "%s/eu_fix.so", work);
	compile_after(EU_CC, "unit_after.c", as);
	e.build_id_len = build_id("/proc/self/exe", id, sizeof(id));
	e.build_id = id;
	emit(&e, so);

	bind = bind_of("", "/proc/self/exe", names, 1);
	check_file(so, bind);
	free(bind);
	/* eu_count may be inlined into eu_work */
	check_descriptor(so, c_named, 4, "eu_count", 1);

	expect_old();
	p = lp_load(so, 0);
	expect_old();
	lp_enable_wait(p, 5000);
	expect_new(0);
	lp_disable_wait(p, 5000);
	expect_old();
	lp_enable_wait(p, 5000);
	expect_new(0);
	lp_disable_wait(p, 5000);
	CHECK_OK(rw_patch_unload(p));
	expect_old();

	/* 1b. Two units in one patch: eu_work and other.c's eu_other (its
	 * static eu_scale is the program's second one; the units' local
	 * labels collide in gen.s unless renamed). */
	{
		char as2[PATH_MAX];
		const char *names2[] = { "eu_work", "eu_other" };
		struct prog_func of = prog_func("/proc/self/exe", "eu_other");
		struct bp_sym syms2[] = {
			{ "eu_scale", BP_S_PROGRAM, "eu_scale", true },
		};
		unsigned long pos2[1] = { sympos_of("/proc/self/exe", "other.c",
						    "eu_scale") };
		struct bp_emit_func f2 = {
			.sym = "eu_other",
			.replace = true,
			.old_name = "eu_other",
			.old_size = of.size,
			.old_hash = of.hash,
		};
		struct bp_emit_tu tus[2] = { tu,
					     { as2, &f2, 1, syms2, 1, pos2 } };

		CHECK(pos2[0] != pos[1]);
		snprintf(as2, sizeof(as2), "%s/other_after.s", work);
		snprintf(so, sizeof(so), "%s/eu_fix2.so", work);
		compile_after(EU_CC, "other_after.c", as2);
		e.name = "eu_fix2";
		e.tus = tus;
		e.ntus = 2;
		emit(&e, so);
		bind = bind_of("", "/proc/self/exe", names2, 2);
		check_file(so, bind);
		free(bind);
		check_descriptor(so, c_named, 4, "eu_count", 2);
		p = lp_load(so, 0);
		lp_enable_wait(p, 5000);
		expect_new(50);
		lp_disable_wait(p, 5000);
		CHECK_OK(rw_patch_unload(p));
		expect_old();
	}
}

/* ---- 2. C++ -------------------------------------------------------------- */

#ifdef EU_CXX_AFTER_S
/*
 * Where a cross build's test runs (the aarch64 guest) the C++ run-time
 * library is installed without its development link libstdc++.so, which
 * the patch's link (-lstdc++) looks for: LIBRARY_PATH gives it one, to
 * the libstdc++.so.6 this program runs with (libeu_cxx.so needs it).
 */
static void cxx_link_dir(void)
{
	char dir[PATH_MAX], link[PATH_MAX + 16];
	void *sym = dlsym(RTLD_DEFAULT, "_ZSt9terminatev");
	Dl_info info;

	CHECK(sym != NULL);
	CHECK(dladdr(sym, &info) && info.dli_fname &&
	      strstr(info.dli_fname, "libstdc++"));
	snprintf(dir, sizeof(dir), "%s/lib", work);
	CHECK(mkdir(dir, 0700) == 0);
	snprintf(link, sizeof(link), "%s/libstdc++.so", dir);
	CHECK(symlink(info.dli_fname, link) == 0);
	CHECK(setenv("LIBRARY_PATH", dir, 1) == 0);
}
#endif

#ifdef EU_CXX_AFTER_S
#define CXX_CMD_MAX (2 * PATH_MAX + 64) /* "cp 'EU_CXX_AFTER_S' 'as'" */
#else
#define CXX_CMD_MAX (PATH_MAX + 64)
#endif

static void part_cxx(void)
{
	char as[PATH_MAX], so[PATH_MAX], cmd[CXX_CMD_MAX];
	uint8_t id[64];
	const char *names[] = { "_ZN5EuBox3getEi", "_Z8eu_twiceIiET_S0_" };
	static const char *const named[] = { "_ZL11eu_cleanups" };
	struct prog_func get = prog_func(EU_CXX_LIB, names[0]);
	struct prog_func twice = prog_func(EU_CXX_LIB, names[1]);
	struct bp_sym syms[] = {
		{ "_ZL11eu_cleanups", BP_S_PROGRAM, "_ZL11eu_cleanups", true },
	};
	unsigned long pos[1] = { 0 };
	struct bp_emit_func f[2] = {
		{ .sym = names[0],
		  .replace = true,
		  .old_name = names[0],
		  .old_size = get.size,
		  .old_hash = get.hash },
		{ .sym = names[1],
		  .replace = true,
		  .old_name = names[1],
		  .old_size = twice.size,
		  .old_hash = twice.hash },
	};
	struct bp_emit_tu tu = { as, f, 2, syms, 1, pos };
	struct bp_emit e = { .name = "eu_cxx_fix",
			     .object = "libeu_cxx.so",
			     .tus = &tu,
			     .ntus = 1 };
	char *bind;
	struct rw_patch *p;
	int c0;

	snprintf(as, sizeof(as), "%s/cxx_after.s", work);
	snprintf(so, sizeof(so), "%s/eu_cxx_fix.so", work);
#ifdef EU_CXX_AFTER_S
	/* a cross build compiled it (test_bp_emit.cmake: no g++ where the
	 * test runs) */
	cxx_link_dir();
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", EU_CXX_AFTER_S, as);
	sh(cmd);
#else
	compile_after(EU_CXX, "cxx_after.cc", as);
#endif
	e.build_id_len = build_id(EU_CXX_LIB, id, sizeof(id));
	e.build_id = id;
	emit(&e, so);

	bind = bind_of("libeu_cxx.so", EU_CXX_LIB, names, 2);
	check_file(so, bind);
	free(bind);
	check_descriptor(so, named, 1, NULL, 2);
	/* the PIC forms: a personality through DW.ref, a pcrel LSDA */
	snprintf(
		cmd, sizeof(cmd),
		"grep -q 'cfi_personality " EU_PERSONALITY
		",DW.ref.__gxx_personality_v0' "
		"'%s/gen.s' && grep -q 'DW.ref._ZTISt9exception-\\.' '%s/gen.s'",
		work, work);
	sh(cmd);

	c0 = eu_cxx_cleanups();
	CHECK_EQ(eu_cxx_get(3, 1), 7);
	CHECK_EQ(eu_cxx_get(3, 200), -1);
	CHECK_EQ(eu_cxx_cleanups(), c0 + 2);
	p = lp_load(so, 0);
	lp_enable_wait(p, 5000);
	CHECK_EQ(eu_cxx_get(3, 1), 508);
	CHECK_EQ(eu_cxx_get(3, 200), -7);
	CHECK_EQ(eu_cxx_cleanups(), c0 + 4);
	lp_disable_wait(p, 5000);
	CHECK_EQ(eu_cxx_get(3, 1), 7);
	CHECK_EQ(eu_cxx_get(3, 200), -1);
	CHECK_EQ(eu_cxx_cleanups(), c0 + 6);
	CHECK_OK(rw_patch_unload(p));
}

/* ---- 3. Refusals ----------------------------------------------------------- */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	fputs(text, f);
	CHECK(fclose(f) == 0);
}

static void expect_refusal_cc(const char *asm_text, const char *cc,
			      const char *needles, bool replace)
{
	char as[PATH_MAX], so[PATH_MAX], err[2048];
	struct bp_emit_func f = { .sym = "bad",
				  .replace = replace,
				  .old_name = "bad" };
	struct bp_emit_tu tu = { as, &f, 1, NULL, 0, NULL };
	struct bp_emit e = {
		.name = "bad", .object = "", .tus = &tu, .ntus = 1
	};

	snprintf(as, sizeof(as), "%s/bad.s", work);
	snprintf(so, sizeof(so), "%s/bad.so", work);
	write_text(as, asm_text);
	e.machine = EU_MACHINE;
	e.cc = cc;
	e.include_dir = EU_INCLUDE;
	e.workdir = work;
	e.out_so = so;
	CHECK(bp_emit(&e, err, sizeof(err)) == -1);
	lp_has_all(err, needles);
}

static void expect_refusal(const char *asm_text, bool replace,
			   const char *needles)
{
	expect_refusal_cc(asm_text, EU_CC, needles, replace);
}

static void part_refusals(void)
{
	static const char head[] = "\t.section\t.text.bad,\"ax\",@progbits\n"
				   "\t.globl\tbad\n\t.type\tbad, @function\n"
				   "bad:\n";

	expect_refusal(head, false, "nothing to replace");
	{
		char text[512];

#if defined(RW_BACKEND_AARCH64)
		/* A call (bl puts) is carried through x16 (part 4); a
		 * conditional branch to the program is not. */
		snprintf(text, sizeof(text), "%s\tcbz\tx0, puts\n\tret\n",
			 head);
		expect_refusal(text, true, "'bad'|cbz\tx0, puts|'puts'");
		snprintf(text, sizeof(text),
			 "%s\tmrs\tx1, tpidr_el0\n"
			 "\tadd\tx1, x1, #:tprel_hi12:tv, lsl #12\n"
			 "\tadd\tx1, x1, #:tprel_lo12_nc:tv\n"
			 "\tldr\tw0, [x1]\n\tret\n",
			 head);
		expect_refusal(text, true,
			       "'bad'|thread-local 'tv'|:tprel_hi12:");
		/* the program's data by ADRP, not through a pool */
		snprintf(text, sizeof(text),
			 "%s\tadrp\tx0, counter\n"
			 "\tldr\tx0, [x0, #:lo12:counter]\n\tret\n",
			 head);
		expect_refusal(text, true, "'bad'|adrp\tx0, counter|'counter'");
		snprintf(text, sizeof(text),
			 "%s\tadrp\tx0, :got:counter\n"
			 "\tldr\tx0, [x0, #:got_lo12:counter]\n\tret\n",
			 head);
		expect_refusal(text, true, "'bad'|':got:counter'|cannot carry");
#else
		snprintf(text, sizeof(text), "%s\tcall\tputs\n\tret\n", head);
		expect_refusal(text, true, "'bad'|call\tputs|'puts'");
		snprintf(text, sizeof(text),
			 "%s\tmovl\t%%fs:tv@tpoff, %%eax\n\tret\n", head);
		expect_refusal(text, true, "'bad'|thread-local 'tv'|@tpoff");
		snprintf(text, sizeof(text),
			 "%s\tmovq\tcounter(%%rip), %%rax\n\tret\n", head);
		expect_refusal(text, true, "'bad'|'counter'");
#endif
		/* a static key site (rewire's asm goto) in the carried code */
		snprintf(text, sizeof(text),
			 "%s1:\tnop\n"
			 "\t.pushsection __rw_jump_table, \"aw\"\n"
			 "\t.quad 1b, .Lyes, key + 1\n\t.popsection\n"
			 "\tret\n.Lyes:\tret\n",
			 head);
		expect_refusal(text, true,
			       "table __rw_jump_table|'bad'|static key");
		/* two functions in one section: no -ffunction-sections */
		snprintf(text, sizeof(text),
			 "%s\tret\n\t.type\tother, @function\nother:\n\tret\n",
			 head);
		expect_refusal(text, true,
			       "'other'|.text.bad|-ffunction-sections");
		/* a failing command: named, with its output */
		snprintf(text, sizeof(text), "%s\tret\n", head);
		expect_refusal_cc(text, "false", "'false -c|failed (exit 1)",
				  true);
	}
}

/* ---- 4. Forms: the moffs store, a program symbol in data, a clone ------- */

#if defined(RW_BACKEND_AARCH64)
/*
 * GCC's -mcmodel=large -fno-pic form by hand: the addresses come from a
 * literal pool after the code, 8-aligned at +40 (eight instructions, and
 * the tail call b puts, which becomes ldr x16, .Lrwr_0; br x16: two), so
 * the pool's .xword are at +40, +48 and +56; the call's literal follows
 * at the end of the section, at +64.
 */
static const char forms_text[] =
	"\t.section\t.text.bad.isra.0,\"ax\",@progbits\n"
	"\t.align\t2\n"
	"\t.type\tbad.isra.0, @function\n"
	"bad.isra.0:\n"
	"\tadrp\tx1, .LC0\n"
	"\tldr\tx1, [x1, #:lo12:.LC0]\n"
	"\tstr\tw0, [x1]\n"
	"\tadrp\tx1, .LC1\n"
	"\tldr\tx0, [x1, #:lo12:.LC1]\n"
	"\tadrp\tx1, .LC2\n"
	"\tldr\tx1, [x1, #:lo12:.LC2]\n"
	"\tldr\tw0, [x1]\n"
	"\tb\tputs\n"
	"\t.align\t3\n"
	".LC0:\n"
	"\t.xword\tcounter+4\n"
	".LC1:\n"
	"\t.xword\ttbl\n"
	".LC2:\n"
	"\t.xword\tcounter\n"
	"\t.size\tbad.isra.0, .-bad.isra.0\n"
	"\t.section\t.data.tbl,\"aw\"\n"
	"\t.align\t3\n"
	"\t.type\ttbl, @object\n"
	"tbl:\n"
	"\t.xword\tcounter+8\n"
	"\t.xword\tbad.isra.0\n"
	"\t.section\t.bss.counter,\"aw\",@nobits\n"
	"counter:\n"
	"\t.zero\t16\n";
/* what gen.s holds of the rewritten code (the instructions themselves
 * are checked in the loaded patch) */
#define FORMS_GEN_S "br.x16"
#else
static const char forms_text[] =
	"\t.section\t.text.bad.isra.0,\"ax\",@progbits\n"
	"\t.type\tbad.isra.0, @function\n"
	"bad.isra.0:\n"
	"\tmovabsl\t%eax, counter+4\n"
	"\tmovabsq\t$tbl, %rax\n"
	"\tmovabsl\tcounter, %eax\n"
	"\tret\n"
	"\t.size\tbad.isra.0, .-bad.isra.0\n"
	"\t.section\t.data.tbl,\"aw\"\n"
	"\t.align 8\n"
	"\t.type\ttbl, @object\n"
	"tbl:\n"
	"\t.quad\tcounter+8\n"
	"\t.quad\tbad.isra.0\n"
	"\t.section\t.bss.counter,\"aw\",@nobits\n"
	"counter:\n"
	"\t.zero\t16\n";
#define FORMS_GEN_S "movabs"
#endif

/* The relocation table of the forms patch, as the loader finds it. */
static void check_forms_relocs(const struct rw_patch_desc *d)
{
	const struct rw_patch_reloc *r = d->relocs;
	char *nf = (char *)d->funcs[0].new_func;
#if defined(RW_BACKEND_AARCH64)
	uint32_t insn[2];

	CHECK_EQ(d->nrelocs, 5);
	/* b puts: ldr x16, .Lrwr_0 (+64, 32 bytes on); br x16. puts is
	 * libc's: no name, the dynamic linker's target. */
	memcpy(insn, nf + 32, 8);
	CHECK_EQ(insn[0], 0x58000110u);
	CHECK_EQ(insn[1], 0xd61f0200u);
	CHECK(r[0].name == NULL && r[0].target == dlsym(RTLD_DEFAULT, "puts"));
	CHECK((char *)r[0].where == nf + 64);
	/* the pool: .xword counter+4, tbl, counter */
	CHECK(!strcmp(r[1].name, "counter.2") && r[1].addend == 4);
	CHECK_EQ(r[1].sympos, 3);
	CHECK(!strcmp(r[1].object, "libx.so.1"));
	CHECK((char *)r[1].where == nf + 40);
	/* .xword tbl: the patch's own data, the dynamic linker's target */
	CHECK(r[2].name == NULL && r[2].target != NULL);
	CHECK((char *)r[2].where == nf + 48);
	CHECK(!strcmp(r[3].name, "counter.2") && r[3].addend == 0);
	CHECK((char *)r[3].where == nf + 56);
	r++; /* the rest as on x86-64: tbl is r[1] there */
#else
	CHECK_EQ(d->nrelocs, 4);
	/* movabsl %eax, counter+4 (a3 moffs64): the address ends the
	 * instruction; then movabsq $tbl (48 b8 imm64), movabsl (a1) */
	CHECK(!strcmp(r[0].name, "counter.2") && r[0].addend == 4);
	CHECK_EQ(r[0].sympos, 3);
	CHECK(!strcmp(r[0].object, "libx.so.1"));
	CHECK((char *)r[0].where == nf + 1);
	/* movabsq $tbl: the patch's own data, resolved by ld.so */
	CHECK(r[1].name == NULL && r[1].target != NULL);
	CHECK((char *)r[1].where == nf + 11);
	CHECK(!strcmp(r[2].name, "counter.2") && r[2].addend == 0);
	CHECK((char *)r[2].where == nf + 20);
#endif
	/* .quad counter+8 in tbl: where is the quad itself */
	CHECK(r[3].where == r[1].target);
	CHECK(!strcmp(r[3].name, "counter.2") && r[3].addend == 8);
	/* .quad bad.isra.0 stays for ld.so: the new function */
	CHECK(((void **)r[1].target)[1] == d->funcs[0].new_func);
}

static void part_forms(void)
{
	char as[PATH_MAX], so[PATH_MAX], src[300], cmd[768];
	char err[2048];
	struct bp_sym syms[] = {
		{ "counter", BP_S_PROGRAM, "counter.2", true },
		{ "tbl", BP_S_PATCH, NULL, true },
	};
	unsigned long pos[2] = { 3, 0 };
	struct bp_emit_func f = { .sym = "bad.isra.0",
				  .replace = true,
				  .clone = true,
				  .old_name = "bad.isra.0",
				  .old_size = 17 };
	struct bp_emit_tu tu = { as, &f, 1, syms, 2, pos };
	struct bp_emit e = {
		.name = "forms", .object = "libx.so.1", .tus = &tu, .ntus = 1
	};
	const struct rw_patch_desc *d;
	void *h;

	snprintf(as, sizeof(as), "%s/forms.s", work);
	snprintf(so, sizeof(so), "%s/forms.so", work);
	snprintf(src, sizeof(src), "%s/src", work);
	CHECK(mkdir(src, 0700) == 0);
	write_text(as, forms_text);
	e.machine = EU_MACHINE;
	e.cc = EU_CC;
	e.include_dir = EU_INCLUDE;
	e.workdir = work;
	e.out_so = so;
	e.out_src = src;
	if (bp_emit(&e, err, sizeof(err))) {
		fprintf(stderr, "bp_emit: %s\n", err);
		exit(1);
	}
	snprintf(cmd, sizeof(cmd),
		 "grep -q 'RW_PATCH_F_CLONE' '%s/gen.c' && test -s '%s/gen.s'",
		 src, src);
	sh(cmd);
	/* out_src may be the work directory (the driver's --keep) */
	e.out_src = work;
	if (bp_emit(&e, err, sizeof(err))) {
		fprintf(stderr, "bp_emit: %s\n", err);
		exit(1);
	}
	snprintf(cmd, sizeof(cmd),
		 "grep -q 'RW_PATCH_F_CLONE' '%s/gen.c' && "
		 "grep -q '" FORMS_GEN_S "' '%s/gen.s'",
		 work, work);
	sh(cmd);

	h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	CHECK(h != NULL);
	d = dlsym(h, RW_PATCH_DESC_SYMBOL);
	CHECK(d != NULL);
	CHECK_EQ(d->nfuncs, 1);
	CHECK_EQ(d->funcs[0].flags, RW_PATCH_F_CLONE);
	CHECK_EQ(d->funcs[0].old_size, 17);
	CHECK(!strcmp(d->funcs[0].old_object, "libx.so.1"));
	check_forms_relocs(d);
	dlclose(h);
}

int main(void)
{
#ifndef EU_GCC
	SKIP("the emitter reads GCC's assembly; another compiler built this");
#endif
	const char *tmp = getenv("TMPDIR");

	snprintf(work, sizeof(work), "%s/rw_bp_emit.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(work) != NULL);
	part_refusals();
	part_forms();
	part_c();
	part_cxx();
	if (!getenv("EU_KEEP")) {
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
		sh(cmd);
	}
	printf("ok\n");
	return 0;
}
#endif
