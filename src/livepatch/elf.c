/* SPDX-License-Identifier: MIT */
/*
 * The live-patch loader: checks a patch file, maps it, and resolves what
 * its descriptor names against the ELF symbol tables of the loaded objects.
 *
 * rw__lp_load, in this order; nothing of the program changes on any error,
 * and an error leaves nothing mapped:
 *  1. The file: opened once; a regular file owned by the caller's effective
 *     uid or root, not writable by group or others.
 *  2. Its ELF header (ELF64, x86-64, ET_DYN), its ".note.rewire" (owner
 *     "rewire", type 1, the descriptor version) and a symbol
 *     rw_patch_descriptor, read from the open file with libelf. No code of
 *     the patch has run yet.
 *  3. dlopen of the same open file through /proc/thread-self/fd/N (no second
 *     lookup of the path), then the descriptor: magic, version, size.
 *  4. Each function: the object that holds the old one is loaded, its file
 *     is the loaded one (program headers, build id) and has a .symtab; the
 *     symbol exists and is unique, or its position exists; its size
 *     matches when given; __patchable_function_entries records its entry
 *     and the entry holds at least five NOP bytes (or rewire's jump).
 *  5. Each reference resolves, and its slot is writable data of the patch.
 *  6. Only then are the reference slots written and *out filled.
 *
 * Each object's file is parsed once per load (struct target).
 */
#include "lp.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NOTE_SECTION ".note.rewire"
#define NOTE_OWNER "rewire"
#define NOTE_TYPE 1
#define PFE_SECTION "__patchable_function_entries"
#define SLED_MIN 5
#define SLED_MAX 32
#define OP_JMP32 0xe9

/* An object of the program the patch names, parsed once per load. */
struct target {
	char *key; /* the object as the patch names it; "" main */
	char shown[PATH_MAX + 32]; /* its name in messages */
	uintptr_t bias;		   /* dlpi_addr */
	int fd;
	Elf *elf;
	Elf_Data *syms; /* .symtab */
	size_t nsyms;
	size_t strndx;	/* its string table */
	uintptr_t *pfe; /* __patchable_function_entries, run-time, sorted */
	size_t npfe;
	bool has_pfe; /* the object has the section at all */
};

struct load {
	const char *path; /* as given, for messages */
	struct target *targets;
	size_t ntargets;
};

/* A symbol resolved in a target. */
struct sym {
	uintptr_t addr;
	GElf_Sym s;
};

/* ------------------------------------------------------------------------
 * /proc/thread-self/fd/N names.
 *
 * glibc finds an already loaded object by name before it looks at the
 * file: dlopen("/proc/thread-self/fd/5") returns whatever object was loaded under
 * that name earlier, even if fd 5 is now another file. So a name is used
 * again only once the object it named is unmapped. names[] holds the fd
 * numbers whose names may still belong to a loaded object, with that
 * object's load address. Protected by names_lock, which is also held
 * across dlopen and dlclose so that two loads never pick the same name.
 */
struct used_name {
	int n;
	uintptr_t addr;
};
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct used_name *names;
static size_t nnames, names_cap;

static bool name_used(int n)
{
	for (size_t i = 0; i < nnames; i++)
		if (names[i].n == n)
			return true;
	return false;
}

struct addr_query {
	uintptr_t addr;
	const char *name;
	bool found;
};

static int addr_loaded_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct addr_query *q = arg;

	(void)size;
	if (q->name ? !strcmp(info->dlpi_name, q->name)
		    : info->dlpi_addr == q->addr) {
		q->found = true;
		return 1;
	}
	return 0;
}

/* Is an object loaded at @addr (or, with @name, under that name)? */
static bool object_loaded(uintptr_t addr, const char *name)
{
	struct addr_query q = { .addr = addr, .name = name };

	dl_iterate_phdr(addr_loaded_cb, &q);
	return q.found;
}

/* dlclose @handle (loaded at @addr); names_lock held. */
static void close_object(void *handle, uintptr_t addr)
{
	size_t i = 0;

	dlclose(handle);
	if (object_loaded(addr, NULL))
		return; /* still mapped: another reference, or NODELETE */
	while (i < nnames) {
		if (names[i].addr == addr)
			names[i] = names[--nnames];
		else
			i++;
	}
}

/* ------------------------------------------------------------------------
 * ELF helpers.
 */

static const char *scn_name(Elf *elf, size_t shstrndx, const GElf_Shdr *sh)
{
	const char *s = elf_strptr(elf, shstrndx, sh->sh_name);

	return s ? s : "";
}

/* The first section of @elf of type @type (and name @name, if not NULL). */
static Elf_Scn *find_scn(Elf *elf, GElf_Word type, const char *name,
			 GElf_Shdr *out)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, out) || out->sh_type != type)
			continue;
		if (!name || !strcmp(scn_name(elf, shstrndx, out), name))
			return scn;
	}
	return NULL;
}

/* Is a defined symbol @name in the symbol table section @scn? */
static bool has_symbol(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh,
		       const char *name)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
	GElf_Sym s;

	for (size_t i = 0; d && i < n; i++) {
		const char *sn;

		if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF)
			continue;
		sn = elf_strptr(elf, sh->sh_link, s.st_name);
		if (sn && !strcmp(sn, name))
			return true;
	}
	return false;
}

/*
 * The version in the first "rewire" note of type 1 in @d. 1: found (in
 * *version), 0: none, -1: a rewire note with a malformed descriptor.
 */
static int note_version(Elf_Data *d, uint32_t *version)
{
	size_t off = 0, name_off, desc_off, next;
	GElf_Nhdr nh;

	while (off < d->d_size &&
	       (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
		if (nh.n_namesz == sizeof(NOTE_OWNER) &&
		    !memcmp((const char *)d->d_buf + name_off, NOTE_OWNER,
			    sizeof(NOTE_OWNER)) &&
		    nh.n_type == NOTE_TYPE) {
			if (nh.n_descsz != 4)
				return -1;
			memcpy(version, (const char *)d->d_buf + desc_off, 4);
			return 1;
		}
		off = next;
	}
	return 0;
}

/* Find the rewire note in the note sections, or in PT_NOTE segments when
 * the file has no section headers. Same returns as note_version. */
static int find_note(Elf *elf, uint32_t *version)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	size_t phnum;
	bool any_scn = false;
	int r;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *d;

		any_scn = true;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		d = elf_getdata(scn, NULL);
		if (d && (r = note_version(d, version)))
			return r;
	}
	if (any_scn || elf_getphdrnum(elf, &phnum))
		return 0;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		Elf_Data *d;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
					 ELF_T_NHDR);
		if (d && (r = note_version(d, version)))
			return r;
	}
	return 0;
}

/* The GNU build id in a note area @buf of @size bytes (memory layout).
 * Returns its length (0: none) and sets *id. */
static size_t build_id_in(const uint8_t *buf, size_t size, const uint8_t **id)
{
	size_t off = 0;

	while (off + 12 <= size) {
		uint32_t namesz, descsz, type;
		size_t name_off, desc_off;

		memcpy(&namesz, buf + off, 4);
		memcpy(&descsz, buf + off + 4, 4);
		memcpy(&type, buf + off + 8, 4);
		name_off = off + 12;
		desc_off = name_off + (((size_t)namesz + 3) & ~(size_t)3);
		if (desc_off > size || descsz > size - desc_off)
			return 0;
		if (type == NT_GNU_BUILD_ID && namesz == 4 &&
		    !memcmp(buf + name_off, "GNU", 4)) {
			*id = buf + desc_off;
			return descsz;
		}
		off = desc_off + (((size_t)descsz + 3) & ~(size_t)3);
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Loaded objects.
 */

struct obj_query {
	const char *want; /* "" main program */
	bool found;
	uintptr_t bias;
	char name[PATH_MAX];
	const ElfW(Phdr) * phdr;
	ElfW(Half) phnum;
};

static int find_obj_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct obj_query *q = arg;
	const char *base;

	(void)size;
	if (!q->want[0]) {
		/* The main program is the first entry, unnamed. */
		if (info->dlpi_name[0])
			return 0;
	} else {
		base = strrchr(info->dlpi_name, '/');
		base = base ? base + 1 : info->dlpi_name;
		if (strcmp(info->dlpi_name, q->want) &&
		    (strchr(q->want, '/') || strcmp(base, q->want)))
			return 0;
	}
	q->found = true;
	q->bias = info->dlpi_addr;
	snprintf(q->name, sizeof(q->name), "%s", info->dlpi_name);
	q->phdr = info->dlpi_phdr;
	q->phnum = info->dlpi_phnum;
	return 1;
}

static const char *obj_label(const char *object)
{
	return object && object[0] ? object : "main";
}

/*
 * Check that the file @t->elf is the object mapped as @q: same program
 * headers and, when both have one, the same build id.
 */
static int check_same_file(struct load *L, struct target *t,
			   const struct obj_query *q)
{
	const uint8_t *mem_id = NULL, *file_id = NULL;
	size_t mem_len = 0, file_len = 0, phnum;

	if (elf_getphdrnum(t->elf, &phnum) || phnum != q->phnum)
		goto differ;
	for (size_t i = 0; i < phnum; i++) {
		const ElfW(Phdr) *m = &q->phdr[i];
		GElf_Phdr ph;

		if (!gelf_getphdr(t->elf, (int)i, &ph) ||
		    ph.p_type != m->p_type || ph.p_flags != m->p_flags ||
		    ph.p_offset != m->p_offset || ph.p_vaddr != m->p_vaddr ||
		    ph.p_filesz != m->p_filesz || ph.p_memsz != m->p_memsz)
			goto differ;
		if (ph.p_type != PT_NOTE)
			continue;
		if (!mem_len)
			mem_len = build_id_in(
				(const uint8_t *)(q->bias + m->p_vaddr),
				m->p_memsz, &mem_id);
		if (!file_len) {
			Elf_Data *d = elf_getdata_rawchunk(t->elf,
							   (int64_t)ph.p_offset,
							   ph.p_filesz,
							   ELF_T_BYTE);

			if (d && d->d_buf)
				file_len = build_id_in(d->d_buf, d->d_size,
						       &file_id);
		}
	}
	if (mem_len && file_len &&
	    (mem_len != file_len || memcmp(mem_id, file_id, mem_len)))
		goto differ;
	return 0;
differ:
	rw__lp_set_error("%s: %s on disk is not the file that is loaded "
			 "(program headers or build id differ: rebuilt or "
			 "replaced since it was loaded?)",
			 L->path, t->shown);
	return -RW_ERR_SYMBOL;
}

static int cmp_uptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Read the sections of @t: .symtab, and __patchable_function_entries from
 * memory (its 8-byte addresses are relocated at run time).
 */
static int read_sections(struct load *L, struct target *t)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	GElf_Shdr sh;

	if (elf_getshdrstrndx(t->elf, &shstrndx))
		shstrndx = 0;
	while ((scn = elf_nextscn(t->elf, scn))) {
		uintptr_t *grown;
		size_t n;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB && !t->syms && sh.sh_entsize) {
			t->syms = elf_getdata(scn, NULL);
			t->nsyms = sh.sh_size / sh.sh_entsize;
			t->strndx = sh.sh_link;
			continue;
		}
		if (!shstrndx || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_ALLOC) ||
		    strcmp(scn_name(t->elf, shstrndx, &sh), PFE_SECTION))
			continue;
		t->has_pfe = true;
		n = sh.sh_size / sizeof(uintptr_t);
		if (!n)
			continue;
		grown = realloc(t->pfe, (t->npfe + n) * sizeof(*t->pfe));
		if (!grown) {
			rw__lp_set_error("%s: out of memory", L->path);
			return -ENOMEM;
		}
		t->pfe = grown;
		memcpy(t->pfe + t->npfe, (const void *)(t->bias + sh.sh_addr),
		       n * sizeof(uintptr_t));
		t->npfe += n;
	}
	if (!t->syms) {
		rw__lp_set_error("%s: %s has no symbol table (stripped); keep "
				 ".symtab in the target",
				 L->path, t->shown);
		return -RW_ERR_STRIPPED;
	}
	if (t->npfe)
		qsort(t->pfe, t->npfe, sizeof(*t->pfe), cmp_uptr);
	return 0;
}

static void target_free(struct target *t)
{
	if (t->elf)
		elf_end(t->elf);
	if (t->fd >= 0)
		close(t->fd);
	free(t->pfe);
	free(t->key);
}

/* The parsed object @object (NULL or "": main program). */
static int get_target(struct load *L, const char *object, const char *what,
		      struct target **out)
{
	const char *key = object ? object : "";
	struct obj_query q = { .want = key };
	struct target *t, *grown;
	const char *file;
	char exe[PATH_MAX];
	ssize_t len;
	int err;

	for (size_t i = 0; i < L->ntargets; i++) {
		if (!strcmp(L->targets[i].key, key)) {
			*out = &L->targets[i];
			return 0;
		}
	}
	dl_iterate_phdr(find_obj_cb, &q);
	if (!q.found) {
		rw__lp_set_error("%s: object '%s' (of '%s') is not loaded",
				 L->path, key, what);
		return -RW_ERR_SYMBOL;
	}
	grown = realloc(L->targets, (L->ntargets + 1) * sizeof(*grown));
	if (!grown) {
		rw__lp_set_error("%s: out of memory", L->path);
		return -ENOMEM;
	}
	L->targets = grown;
	t = &L->targets[L->ntargets];
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->bias = q.bias;
	t->key = strdup(key);
	if (!t->key) {
		rw__lp_set_error("%s: out of memory", L->path);
		return -ENOMEM;
	}
	L->ntargets++;

	if (!key[0]) {
		file = "/proc/thread-self/exe";
		len = readlink(file, exe, sizeof(exe) - 1);
		exe[len > 0 ? len : 0] = '\0';
		snprintf(t->shown, sizeof(t->shown), "the main program (%s)",
			 len > 0 ? exe : file);
	} else {
		file = q.name;
		snprintf(t->shown, sizeof(t->shown), "%s", q.name);
	}
	t->fd = open(file, O_RDONLY | O_CLOEXEC);
	if (t->fd < 0) {
		err = -errno;
		rw__lp_set_error("%s: cannot read %s (for '%s'): %s", L->path,
				 t->shown, what, strerror(-err));
		return -RW_ERR_SYMBOL;
	}
	t->elf = elf_begin(t->fd, ELF_C_READ_MMAP, NULL);
	if (!t->elf || elf_kind(t->elf) != ELF_K_ELF) {
		rw__lp_set_error("%s: cannot read %s as ELF: %s", L->path,
				 t->shown, elf_errmsg(-1));
		return -RW_ERR_SYMBOL;
	}
	err = check_same_file(L, t, &q);
	if (!err)
		err = read_sections(L, t);
	if (err)
		return err;
	*out = t;
	return 0;
}

/*
 * Resolve @name at position @pos in @t: function symbols (@func) or any
 * data or function symbol. Symbols at the same address count once, as
 * aliases of one another. Returns 0 or an error with its message.
 */
static int resolve(struct load *L, struct target *t, const char *name,
		   unsigned long pos, bool func, struct sym *out)
{
	GElf_Sym *match = NULL, *grown, s;
	size_t n = 0, cap = 0, other = 0;
	int err = 0;

	for (size_t i = 0; i < t->nsyms; i++) {
		const char *sn;
		int type;
		bool dup = false;

		if (!gelf_getsym(t->syms, (int)i, &s) ||
		    s.st_shndx == SHN_UNDEF)
			continue;
		type = GELF_ST_TYPE(s.st_info);
		if (type == STT_SECTION || type == STT_FILE)
			continue;
		sn = elf_strptr(t->elf, t->strndx, s.st_name);
		if (!sn || strcmp(sn, name))
			continue;
		if (func && type != STT_FUNC) {
			other++;
			continue;
		}
		for (size_t j = 0; j < n && !dup; j++)
			dup = match[j].st_value == s.st_value &&
			      GELF_ST_TYPE(match[j].st_info) == type;
		if (dup)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 4;
			grown = realloc(match, cap * sizeof(*match));
			if (!grown) {
				rw__lp_set_error("%s: out of memory", L->path);
				err = -ENOMEM;
				goto out;
			}
			match = grown;
		}
		match[n++] = s;
	}
	if (!n && other) {
		rw__lp_set_error("%s: '%s' in %s is not a function", L->path,
				 name, t->shown);
		err = -RW_ERR_SYMBOL;
	} else if (!n) {
		rw__lp_set_error("%s: '%s' not found in %s", L->path, name,
				 t->shown);
		err = -RW_ERR_SYMBOL;
	} else if (!pos && n > 1) {
		rw__lp_set_error("%s: '%s' has %zu symbols in %s; give its "
				 "position (1..%zu)",
				 L->path, name, n, t->shown, n);
		err = -RW_ERR_AMBIGUOUS;
	} else if (pos > n) {
		rw__lp_set_error("%s: '%s' has %zu symbol%s in %s; there is no "
				 "position %lu",
				 L->path, name, n, n > 1 ? "s" : "", t->shown,
				 pos);
		err = -RW_ERR_SYMBOL;
	} else {
		out->s = match[pos ? pos - 1 : 0];
		out->addr = out->s.st_shndx == SHN_ABS
				    ? (uintptr_t)out->s.st_value
				    : t->bias + (uintptr_t)out->s.st_value;
	}
out:
	free(match);
	return err;
}

/* Length of the NOP run at @p (at most @max bytes read). */
static size_t nop_run(const uint8_t *p, size_t max)
{
	static const uint8_t nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	size_t n = 0;

	while (n < max) {
		if (p[n] == 0x90)
			n++;
		else if (max - n >= 2 && p[n] == 0x66 && p[n + 1] == 0x90)
			n += 2;
		else if (max - n >= 5 && !memcmp(p + n, nop5, 5))
			n += 5; /* what rewire's x86_64 backend writes back */
		else
			break;
	}
	return n;
}

static bool pfe_has(const struct target *t, uintptr_t addr)
{
	return t->npfe &&
	       bsearch(&addr, t->pfe, t->npfe, sizeof(*t->pfe), cmp_uptr);
}

/* The NOP sled of @f (old_addr, old_size set). */
static int find_sled(struct load *L, struct target *t, struct rw__lp_func *f,
		     const char *name)
{
	static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
	const uint8_t *p = (const uint8_t *)f->old_addr;
	uintptr_t end = f->old_addr + f->old_size;
	size_t max;

	if (pfe_has(t, f->old_addr))
		f->sled = f->old_addr;
	else if (f->old_size > 4 + SLED_MIN && !memcmp(p, endbr64, 4) &&
		 pfe_has(t, f->old_addr + 4))
		f->sled = f->old_addr + 4;
	else
		goto refuse;
	p = (const uint8_t *)f->sled;
	max = end - f->sled < SLED_MAX ? end - f->sled : SLED_MAX;
	if (max >= SLED_MIN && p[0] == OP_JMP32) {
		f->sled_len = SLED_MIN; /* an earlier patch's jump */
		return 0;
	}
	f->sled_len = nop_run(p, max);
	if (f->sled_len >= SLED_MIN)
		return 0;
	rw__lp_set_error("%s: '%s' in %s has %zu NOP bytes at its entry, "
			 "5 are needed; build the target with "
			 "-fpatchable-function-entry=5",
			 L->path, name, t->shown, f->sled_len);
	return -RW_ERR_NOT_PATCHABLE;
refuse:
	rw__lp_set_error("%s: '%s' in %s has no patchable entry%s; build the "
			 "target with -fpatchable-function-entry=5",
			 L->path, name, t->shown,
			 t->has_pfe ? "" : " (no " PFE_SECTION " at all)");
	return -RW_ERR_NOT_PATCHABLE;
}

/* st_size of the function at @addr in the patch (bias @bias), or 0. */
static size_t patch_func_size(Elf *elf, uintptr_t bias, uintptr_t addr)
{
	GElf_Word types[2] = { SHT_SYMTAB, SHT_DYNSYM };

	for (size_t k = 0; k < 2; k++) {
		GElf_Shdr sh = { 0 };
		Elf_Scn *scn = find_scn(elf, types[k], NULL, &sh);
		Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
		size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
		GElf_Sym s;

		for (size_t i = 0; d && i < n; i++) {
			if (gelf_getsym(d, (int)i, &s) &&
			    GELF_ST_TYPE(s.st_info) == STT_FUNC &&
			    s.st_shndx != SHN_UNDEF && s.st_size &&
			    bias + s.st_value == addr)
				return s.st_size;
		}
	}
	return 0;
}

static void make_label(char *buf, size_t size, const char *object,
		       const char *name, unsigned long pos)
{
	if (pos)
		snprintf(buf, size, "%s:%s,%lu", obj_label(object), name, pos);
	else
		snprintf(buf, size, "%s:%s", obj_label(object), name);
}

static int resolve_func(struct load *L, size_t i,
			const struct rw_patch_func *pf, struct rw__lp_func *f)
{
	struct target *t;
	struct sym sym;
	int err;

	if (!pf->old_name || !pf->old_name[0]) {
		rw__lp_set_error("%s: function %zu has no old name", L->path,
				 i);
		return -RW_ERR_PATCH_VERSION;
	}
	if (!pf->new_func) {
		rw__lp_set_error("%s: function %zu ('%s') has no new function",
				 L->path, i, pf->old_name);
		return -RW_ERR_PATCH_VERSION;
	}
	err = get_target(L, pf->old_object, pf->old_name, &t);
	if (!err)
		err = resolve(L, t, pf->old_name, pf->old_sympos, true, &sym);
	if (err)
		return err;
	memset(f, 0, sizeof(*f));
	f->desc = pf;
	f->old_addr = sym.addr;
	f->old_size = sym.s.st_size;
	f->new_addr = (uintptr_t)pf->new_func;
	make_label(f->label, sizeof(f->label), pf->old_object, pf->old_name,
		   pf->old_sympos);
	if (!f->old_size) {
		rw__lp_set_error("%s: '%s' in %s has size 0; cannot patch it",
				 L->path, pf->old_name, t->shown);
		return -RW_ERR_NOT_PATCHABLE;
	}
	if (pf->old_size && pf->old_size != f->old_size) {
		rw__lp_set_error("%s: size mismatch: '%s' in %s has %zu bytes, "
				 "the patch expects %lu (another build?)",
				 L->path, pf->old_name, t->shown, f->old_size,
				 pf->old_size);
		return -RW_ERR_NOT_PATCHABLE;
	}
	return find_sled(L, t, f, pf->old_name);
}

/* Is [@p, @p + 8) writable data of the object loaded at @bias? */
struct slot_query {
	uintptr_t bias, p;
	bool found, writable;
};

static int slot_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct slot_query *q = arg;
	bool in_w = false, in_relro = false;

	(void)size;
	if (info->dlpi_addr != q->bias)
		return 0;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t s = info->dlpi_addr + ph->p_vaddr;
		bool in = q->p >= s && q->p + sizeof(void *) <= s + ph->p_memsz;

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && in)
			in_w = true;
		if (ph->p_type == PT_GNU_RELRO && q->p + sizeof(void *) > s &&
		    q->p < s + ph->p_memsz)
			in_relro = true;
	}
	q->found = true;
	q->writable = in_w && !in_relro;
	return 1;
}

static int resolve_ref(struct load *L, size_t i, const struct rw_patch_ref *r,
		       uintptr_t patch_bias, uintptr_t *addr)
{
	struct slot_query q = { .bias = patch_bias };
	struct target *t;
	struct sym sym;
	int err, type;
	char label[96];

	if (!r->name || !r->name[0]) {
		rw__lp_set_error("%s: reference %zu has no name", L->path, i);
		return -RW_ERR_PATCH_VERSION;
	}
	make_label(label, sizeof(label), r->object, r->name, r->sympos);
	q.p = (uintptr_t)r->slot;
	if (r->slot && !(q.p % sizeof(void *)))
		dl_iterate_phdr(slot_cb, &q);
	if (!q.writable) {
		rw__lp_set_error("%s: reference %zu ('%s') has no slot in the "
				 "patch's writable data",
				 L->path, i, label);
		return -RW_ERR_PATCH_VERSION;
	}
	err = get_target(L, r->object, r->name, &t);
	if (!err)
		err = resolve(L, t, r->name, r->sympos, false, &sym);
	if (err)
		return err;
	type = GELF_ST_TYPE(sym.s.st_info);
	if (type == STT_TLS || type == STT_GNU_IFUNC) {
		rw__lp_set_error(
			"%s: reference '%s' in %s is %s; not supported",
			L->path, r->name, t->shown,
			type == STT_TLS ? "thread-local (TLS)" : "an IFUNC");
		return -RW_ERR_SYMBOL;
	}
	*addr = sym.addr;
	return 0;
}

/* ------------------------------------------------------------------------
 * The steps.
 */

/* Step 1: the file. */
static int check_file(const char *path, unsigned flags, int *fdp)
{
	struct stat st;
	uid_t me = geteuid();
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		rw__lp_set_error("%s: cannot open the patch: %s", path,
				 strerror(-err));
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		rw__lp_set_error("%s: cannot stat the patch: %s", path,
				 strerror(-err));
		goto fail;
	}
	err = -RW_ERR_PATCH_FILE;
	if (!S_ISREG(st.st_mode)) {
		rw__lp_set_error("%s: refused: not a regular file", path);
		goto fail;
	}
	if (!(flags & RW_PATCH_LOAD_ALLOW_ANY_OWNER)) {
		if (st.st_uid != me && st.st_uid != 0) {
			rw__lp_set_error("%s: refused: owned by uid %u, not by "
					 "you (uid %u) or root",
					 path, (unsigned)st.st_uid,
					 (unsigned)me);
			goto fail;
		}
		if (st.st_mode & (S_IWGRP | S_IWOTH)) {
			rw__lp_set_error("%s: refused: writable by %s (mode "
					 "0%03o)",
					 path,
					 (st.st_mode & S_IWOTH) ? "others"
								: "its group",
					 (unsigned)(st.st_mode & 07777));
			goto fail;
		}
	}
	*fdp = fd;
	return 0;
fail:
	close(fd);
	return err;
}

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;
static unsigned elf_ok; /* written once, under elf_once */

static void elf_init(void)
{
	elf_ok = elf_version(EV_CURRENT) == EV_NONE ? EV_NONE : EV_CURRENT;
}

/* Step 2: ELF header, note, descriptor symbol. */
static int check_elf(const char *path, int fd, Elf **elfp)
{
	GElf_Ehdr eh;
	GElf_Shdr sh;
	Elf_Scn *scn;
	uint32_t version = 0;
	Elf *elf;
	int r, err;

	pthread_once(&elf_once, elf_init);
	if (elf_ok != EV_CURRENT) {
		rw__lp_set_error("%s: libelf: %s", path, elf_errmsg(-1));
		return -RW_ERR_PATCH_FILE;
	}
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
		int e = elf_errno();

		if (e)
			rw__lp_set_error("%s: not an ELF file (%s)", path,
					 elf_errmsg(e));
		else
			rw__lp_set_error("%s: not an ELF file", path);
		err = -RW_ERR_PATCH_FILE;
		goto fail;
	}
	err = -RW_ERR_PATCH_VERSION;
	if (gelf_getclass(elf) != ELFCLASS64 || eh.e_machine != EM_X86_64 ||
	    eh.e_type != ET_DYN) {
		rw__lp_set_error("%s: not an x86-64 ELF64 shared object "
				 "(class %d, machine %u, type %u)",
				 path, gelf_getclass(elf),
				 (unsigned)eh.e_machine, (unsigned)eh.e_type);
		goto fail;
	}
	r = find_note(elf, &version);
	if (r == 0) {
		rw__lp_set_error("%s: not a rewire patch (no " NOTE_SECTION
				 "); build it with RW_PATCH() from "
				 "rewire/patch.h",
				 path);
		goto fail;
	}
	if (r < 0) {
		rw__lp_set_error("%s: malformed " NOTE_SECTION
				 " (descriptor size is not 4)",
				 path);
		goto fail;
	}
	if (version != RW_PATCH_ABI_VERSION) {
		rw__lp_set_error("%s: built for descriptor version %u, this "
				 "rewire reads %u",
				 path, (unsigned)version,
				 (unsigned)RW_PATCH_ABI_VERSION);
		goto fail;
	}
	scn = find_scn(elf, SHT_DYNSYM, NULL, &sh);
	if (!scn || !has_symbol(elf, scn, &sh, RW_PATCH_DESC_SYMBOL)) {
		rw__lp_set_error("%s: no exported symbol " RW_PATCH_DESC_SYMBOL
				 "; build it with RW_PATCH() from "
				 "rewire/patch.h",
				 path);
		goto fail;
	}
	*elfp = elf;
	return 0;
fail:
	if (elf)
		elf_end(elf);
	return err;
}

/*
 * Step 3: map the open file. names_lock held: the patch's constructors run
 * under it (and under the dynamic loader's lock), so they must not load or
 * unload patches; nor may any library's constructor.
 */
static int map_patch(const char *path, int fd, void **handlep, uintptr_t *biasp)
{
	struct link_map *lm = NULL;
	char name[64];
	int n = fd, dupfd = -1, err;
	const char *msg;
	void *handle;

	/* A name that no loaded object has (see names[] above). */
	for (;;) {
		snprintf(name, sizeof(name), "/proc/thread-self/fd/%d", n);
		if (!name_used(n) && !object_loaded(0, name))
			break;
		if (dupfd >= 0)
			close(dupfd);
		dupfd = fcntl(fd, F_DUPFD_CLOEXEC, n + 1);
		if (dupfd < 0) {
			err = -errno;
			rw__lp_set_error("%s: cannot duplicate its descriptor: "
					 "%s",
					 path, strerror(-err));
			return err;
		}
		n = dupfd;
	}
	if (nnames == names_cap) {
		size_t cap = names_cap ? 2 * names_cap : 8;
		struct used_name *grown = realloc(names, cap * sizeof(*grown));

		if (!grown) {
			rw__lp_set_error("%s: out of memory", path);
			err = -ENOMEM;
			goto out;
		}
		names = grown;
		names_cap = cap;
	}
	dlerror();
	handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		msg = dlerror();
		msg = msg ? msg : "unknown error";
		rw__lp_set_error("%s: dlopen failed: %s", path, msg);
		err = strstr(msg, "undefined symbol") ? -RW_ERR_SYMBOL
						      : -RW_ERR_PATCH_FILE;
		goto out;
	}
	if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) || !lm) {
		rw__lp_set_error("%s: dlinfo failed: %s", path, dlerror());
		dlclose(handle);
		err = -RW_ERR_PATCH_FILE;
		goto out;
	}
	names[nnames].n = n;
	names[nnames].addr = lm->l_addr;
	nnames++;
	*handlep = handle;
	*biasp = lm->l_addr;
	err = 0;
out:
	if (dupfd >= 0)
		close(dupfd);
	return err;
}

/* Step 3, continued: the descriptor. */
static int check_desc(const char *path, void *handle,
		      const struct rw_patch_desc **descp)
{
	const struct rw_patch_desc *d;

	dlerror();
	d = dlsym(handle, RW_PATCH_DESC_SYMBOL);
	if (!d) {
		rw__lp_set_error("%s: no " RW_PATCH_DESC_SYMBOL ": %s", path,
				 dlerror());
		return -RW_ERR_PATCH_VERSION;
	}
	if (d->magic != RW_PATCH_MAGIC || d->version != RW_PATCH_ABI_VERSION ||
	    d->size != sizeof(*d)) {
		rw__lp_set_error("%s: bad descriptor (magic 0x%x, version %u, "
				 "size %u; expected 0x%x, %u, %zu)",
				 path, (unsigned)d->magic, (unsigned)d->version,
				 (unsigned)d->size, RW_PATCH_MAGIC,
				 (unsigned)RW_PATCH_ABI_VERSION, sizeof(*d));
		return -RW_ERR_PATCH_VERSION;
	}
	if (!d->name || !d->name[0] || !d->nfuncs || !d->funcs ||
	    (d->nrefs && !d->refs)) {
		rw__lp_set_error("%s: bad descriptor: %s", path,
				 !d->name || !d->name[0] ? "no name"
				 : !d->nfuncs || !d->funcs
					 ? "no functions"
					 : "references without an array");
		return -RW_ERR_PATCH_VERSION;
	}
	*descp = d;
	return 0;
}

/* Copy @src into @dst, cut at @size - 1 bytes. */
static void copy_path(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int rw__lp_load(const char *path, unsigned flags, struct rw__lp_obj *out)
{
	struct load L = { .path = path };
	const struct rw_patch_desc *desc = NULL;
	struct rw__lp_func *funcs = NULL;
	uintptr_t *ref_addr = NULL, patch_bias = 0;
	void *handle = NULL;
	Elf *elf = NULL;
	char real[PATH_MAX];
	int fd = -1, err;

	if (!path || !path[0] || !out) {
		rw__lp_set_error("rw_patch_load: %s",
				 !out ? "no output" : "no path");
		return -EINVAL;
	}
	err = check_file(path, flags, &fd);
	if (err)
		return err;
	err = check_elf(path, fd, &elf);
	if (err)
		goto out;

	pthread_mutex_lock(&names_lock);
	err = map_patch(path, fd, &handle, &patch_bias);
	pthread_mutex_unlock(&names_lock);
	if (err)
		goto out;
	err = check_desc(path, handle, &desc);
	if (err)
		goto out;

	funcs = calloc(desc->nfuncs, sizeof(*funcs));
	ref_addr = calloc(desc->nrefs ? desc->nrefs : 1, sizeof(*ref_addr));
	if (!funcs || !ref_addr) {
		rw__lp_set_error("%s: out of memory", path);
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < desc->nfuncs; i++) {
		err = resolve_func(&L, i, &desc->funcs[i], &funcs[i]);
		if (err)
			goto out;
		funcs[i].new_size =
			patch_func_size(elf, patch_bias, funcs[i].new_addr);
		if (!funcs[i].new_size) {
			/* Without it a thread inside the new function cannot
			 * be told apart: no safe disable. */
			rw__lp_set_error("%s: the new function for %s has no "
					 "sized symbol in the patch (stripped "
					 "patch?)",
					 path, funcs[i].label);
			err = -RW_ERR_STRIPPED;
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			if (funcs[j].old_addr != funcs[i].old_addr)
				continue;
			rw__lp_set_error("%s: patches '%s' twice (functions "
					 "%zu and %zu, as %s and %s)",
					 path, desc->funcs[i].old_name, j, i,
					 funcs[j].label, funcs[i].label);
			err = -EINVAL;
			goto out;
		}
	}
	for (size_t i = 0; i < desc->nrefs; i++) {
		err = resolve_ref(&L, i, &desc->refs[i], patch_bias,
				  &ref_addr[i]);
		if (err)
			goto out;
	}

	/* Step 6: every check passed. */
	for (size_t i = 0; i < desc->nrefs; i++)
		*desc->refs[i].slot = (void *)ref_addr[i];
	out->handle = handle;
	out->desc = desc;
	out->funcs = funcs;
	out->nfuncs = desc->nfuncs;
	copy_path(out->path, sizeof(out->path),
		  realpath(path, real) ? real : path);
	rw__log("%s: loaded '%s' at %lx, %zu functions, %zu references",
		out->path, desc->name, (unsigned long)patch_bias, desc->nfuncs,
		desc->nrefs);
	handle = NULL;
	funcs = NULL;
out:
	if (handle) {
		pthread_mutex_lock(&names_lock);
		close_object(handle, patch_bias);
		pthread_mutex_unlock(&names_lock);
	}
	for (size_t i = 0; i < L.ntargets; i++)
		target_free(&L.targets[i]);
	free(L.targets);
	free(ref_addr);
	free(funcs);
	if (elf)
		elf_end(elf);
	if (fd >= 0)
		close(fd);
	return err;
}

void rw__lp_unload(struct rw__lp_obj *o)
{
	struct link_map *lm = NULL;

	if (!o || !o->handle)
		return;
	free(o->funcs);
	o->funcs = NULL;
	o->nfuncs = 0;
	pthread_mutex_lock(&names_lock);
	if (dlinfo(o->handle, RTLD_DI_LINKMAP, &lm) || !lm)
		dlclose(o->handle); /* cannot happen; keep the names used */
	else
		close_object(o->handle, lm->l_addr);
	pthread_mutex_unlock(&names_lock);
	o->handle = NULL;
	o->desc = NULL;
}
