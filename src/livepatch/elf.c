/* SPDX-License-Identifier: MIT */
/*
 * The live-patch loader: checks a patch file, maps it, and resolves what
 * its descriptor names against the ELF symbol tables of the loaded objects.
 *
 * rw__lp_load, in this order; nothing of the program changes on any error,
 * and an error leaves nothing mapped:
 *  1. The file: opened once; a regular file owned by the caller's effective
 *     uid or root, not writable by group or others.
 *  2. Its ELF header (ELF64, the machine of this build: x86-64 or
 *     AArch64, ET_DYN), its ".note.rewire" (owner
 *     "rewire", type 1, the descriptor version) and a symbol
 *     rw_patch_descriptor, read from the open file with libelf. No code of
 *     the patch has run yet.
 *     Its binding (.rewire.bind, bind.h), if it has one: each bound object
 *     is loaded with the recorded build-id, each bound function has the
 *     recorded size and hash (of its bytes in the object's file).
 *  3. dlopen of the same open file through /proc/thread-self/fd/N (no second
 *     lookup of the path), then the descriptor: magic, version, size; no
 *     loaded patch has its name.
 *  4. Each function: the object that holds the old one is loaded, its file
 *     is the loaded one (program headers, build id) and has a .symtab; the
 *     symbol exists and is unique, or its position exists; its size
 *     matches when given; __patchable_function_entries records its entry
 *     and the entry holds at least five NOP bytes (or rewire's jump; on
 *     aarch64 one NOP instruction, after a BTI c if there is one). A
 *     compiler clone is replaced only when declared so (RW_PATCH_F_CLONE);
 *     the pieces of the old and of the new function (NAME.cold, ...) are
 *     collected for the stack checks.
 *  5. Each reference resolves, and its slot is writable data of the patch;
 *     the patch's executable segments are recorded for the unload check.
 *     No function has copies inlined into callers, as far as the targets'
 *     DWARF tells (dwarf.c); without DWARF, a warning says so.
 *     Each relocation (version 3) resolves like a reference, its field is
 *     inside the patch's own segments, a PC32 value fits.
 *  6. Only then are the relocations written (through the text writer),
 *     the reference slots written and *out filled.
 *
 * Each object's file is parsed once per load (struct target).
 */
#include "lp.h"

#include "../ctl/fileid.h"
#include "../text.h"
#include "bind.h"

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
#define SLED_MAX 32
#ifdef RW_BACKEND_AARCH64
#include "../arch/aarch64/a64.h"
#define SLED_MIN 8 /* two NOPs: src/entry.c's entry (the first becomes B) */
#define ENTRY_FLAG "-fpatchable-function-entry=2"
#define MACHINE EM_AARCH64
#define MACHINE_NAME "AArch64"
#else
#define SLED_MIN 5
#define ENTRY_FLAG "-fpatchable-function-entry=5"
#define OP_JMP32 0xe9
#define MACHINE EM_X86_64
#define MACHINE_NAME "x86-64"
#endif

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
	bool has_pfe;	/* the object has the section at all */
	bool reloc_pin; /* a relocation's address in it is to be pinned */
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
	size_t index; /* in the symbol table */
};

/* A symbol table, for the compiler's pieces of a function. */
struct symtab {
	Elf *elf;
	Elf_Data *syms;
	size_t nsyms;
	size_t strndx;
	uintptr_t bias;
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
 *
 * The patch's constructors run inside that dlopen and its destructors
 * inside that dlclose, on the calling thread: if one of them calls
 * rw_patch_load or rw_patch_unload, the lock is already held by this very
 * thread. It is a rewire lock, which knows its owner, so that such a call
 * fails with -EDEADLK instead of waiting for itself forever.
 */
struct used_name {
	int n;
	uintptr_t addr;
};
static struct rw__lock names_lock = RW__LOCK_INIT;
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

/* Take names_lock; -EDEADLK (with its message) if this thread holds it. */
static int names_acquire(const char *path)
{
	int err = rw__lock_acquire(&names_lock);

	if (err)
		rw__lp_set_error("%s: refused: a patch is being loaded or "
				 "unloaded by this very thread (its "
				 "constructor or destructor is running): %s",
				 path, strerror(-err));
	return err;
}

bool rw__lp_loader_held(void)
{
	return rw__lock_held_by_me(&names_lock);
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

/* The object @key ("": the main program; @name: its dlpi_name) as messages
 * show it. */
static void shown_name(const char *key, const char *name, char *buf,
		       size_t size)
{
	char exe[PATH_MAX];
	ssize_t len;

	if (key[0]) {
		snprintf(buf, size, "%s", name);
		return;
	}
	len = readlink("/proc/thread-self/exe", exe, sizeof(exe) - 1);
	exe[len > 0 ? len : 0] = '\0';
	snprintf(buf, size, "the main program (%s)",
		 len > 0 ? exe : "/proc/thread-self/exe");
}

/* The parsed object @object (NULL or "": main program). */
static int get_target(struct load *L, const char *object, const char *what,
		      struct target **out)
{
	const char *key = object ? object : "";
	struct obj_query q = { .want = key };
	struct target *t, *grown;
	const char *file;
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

	file = key[0] ? q.name : "/proc/thread-self/exe";
	shown_name(key, q.name, t->shown, sizeof(t->shown));
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

/* ------------------------------------------------------------------------
 * What GCC makes of a function (DESIGN.md 8b).
 *
 * Pieces: NAME.cold (an unlikely block moved out of NAME, entered by a
 * jump from NAME's body) and NAME.part.N (NAME's body after partial
 * inlining, entered by a call or tail call from what is left of NAME) run
 * as NAME: a thread in one is inside NAME. Their own pieces
 * (NAME.part.0.cold) too.
 * Clones: NAME.constprop.N (constant arguments propagated), NAME.isra.N
 * (arguments changed by interprocedural scalar replacement), and again
 * NAME.part.N seen as a function of its own: other calling conventions.
 * Replacing one by a function written with NAME's signature breaks every
 * caller, so a patch must say that it replaces a clone
 * (RW_PATCH_FUNC_CLONE).
 */

/* Length of ".<word>.N" (N decimal digits) at @p, or 0. */
static size_t suffix_len(const char *p, const char *word)
{
	size_t w = strlen(word), n;

	if (p[0] != '.' || strncmp(p + 1, word, w) || p[1 + w] != '.')
		return 0;
	for (n = 0; p[2 + w + n] >= '0' && p[2 + w + n] <= '9'; n++)
		;
	return n ? 2 + w + n : 0;
}

/* Length of a piece's suffix component at @p (".cold", ".cold.N",
 * ".part.N"), or 0. */
static size_t piece_len(const char *p)
{
	size_t n;

	if (!strncmp(p, ".cold", 5) && (p[5] == '\0' || p[5] == '.')) {
		n = suffix_len(p, "cold");
		return n ? n : 5;
	}
	return suffix_len(p, "part");
}

/* Is @sn a piece of @name: @name followed by piece components only? */
static bool is_piece_of(const char *sn, const char *name)
{
	size_t k = strlen(name), n;

	if (strncmp(sn, name, k) || !sn[k])
		return false;
	for (sn += k; *sn; sn += n)
		if (!(n = piece_len(sn)))
			return false;
	return true;
}

/* Where the compiler's clone suffix of @name starts (".constprop.N",
 * ".isra.N", ".part.N"), or NULL. */
static const char *clone_suffix(const char *name)
{
	static const char *const words[] = { "constprop", "isra", "part" };

	for (const char *p = strchr(name, '.'); p && p > name;
	     p = strchr(p + 1, '.'))
		for (size_t i = 0; i < 3; i++)
			if (suffix_len(p, words[i]))
				return p;
	return NULL;
}

/* Is @name a cold piece (a ".cold" component anywhere after the base)? */
static bool is_cold_name(const char *name)
{
	for (const char *p = strchr(name, '.'); p && p > name;
	     p = strchr(p + 1, '.'))
		if (!strncmp(p, ".cold", 5) && (p[5] == '\0' || p[5] == '.'))
			return true;
	return false;
}

/*
 * The pieces of the function at index @fi of @st (named @name) as ranges,
 * appended to *@r (*@n entries). A piece is a local function symbol. Which
 * file's pieces: a local function's own file (the symbols between two
 * STT_FILE entries); for a global one, every file that has no local
 * function of that name (a piece of a static namesake in another file is
 * not the global function's). A file-less table counts as one file.
 */
static int add_pieces(const struct symtab *st, size_t fi, const char *name,
		      struct rw__lp_range **r, size_t *n)
{
	GElf_Sym s, f;
	size_t nfiles = 1, file = 0, ffile = 0;
	bool local, *shadow = NULL;
	int err = 0;

	if (!gelf_getsym(st->syms, (int)fi, &f))
		return 0;
	local = GELF_ST_BIND(f.st_info) == STB_LOCAL;
	for (size_t i = 0; i < st->nsyms; i++)
		if (gelf_getsym(st->syms, (int)i, &s) &&
		    GELF_ST_TYPE(s.st_info) == STT_FILE)
			nfiles++;
	shadow = calloc(nfiles, sizeof(*shadow));
	if (!shadow)
		return -ENOMEM;
	/* Files and the files that have a local function @name. */
	for (size_t i = 0; i < st->nsyms; i++) {
		const char *sn;

		if (!gelf_getsym(st->syms, (int)i, &s))
			continue;
		if (GELF_ST_TYPE(s.st_info) == STT_FILE) {
			file++;
			continue;
		}
		if (i == fi)
			ffile = file;
		if (GELF_ST_BIND(s.st_info) != STB_LOCAL ||
		    GELF_ST_TYPE(s.st_info) != STT_FUNC)
			continue;
		sn = elf_strptr(st->elf, st->strndx, s.st_name);
		if (sn && !strcmp(sn, name))
			shadow[file] = true;
	}
	file = 0;
	for (size_t i = 0; i < st->nsyms && !err; i++) {
		struct rw__lp_range *grown;
		const char *sn;

		if (!gelf_getsym(st->syms, (int)i, &s))
			continue;
		if (GELF_ST_TYPE(s.st_info) == STT_FILE) {
			file++;
			continue;
		}
		if (GELF_ST_BIND(s.st_info) != STB_LOCAL ||
		    GELF_ST_TYPE(s.st_info) != STT_FUNC ||
		    s.st_shndx == SHN_UNDEF || !s.st_size ||
		    (local ? file != ffile : shadow[file]))
			continue;
		sn = elf_strptr(st->elf, st->strndx, s.st_name);
		if (!sn || !is_piece_of(sn, name))
			continue;
		grown = realloc(*r, (*n + 1) * sizeof(**r));
		if (!grown) {
			err = -ENOMEM;
			break;
		}
		*r = grown;
		(*r)[*n].start = st->bias + (uintptr_t)s.st_value;
		(*r)[(*n)++].end =
			st->bias + (uintptr_t)(s.st_value + s.st_size);
	}
	free(shadow);
	return err;
}

/*
 * The clones of @name in @t, for a message: "NAME.constprop.0, ...", or
 * "" if there is none.
 */
static void list_clones(struct target *t, const char *name, char *buf,
			size_t size)
{
	size_t k = strlen(name), len = 0, shown = 0, more = 0;
	GElf_Sym s;

	buf[0] = '\0';
	for (size_t i = 0; i < t->nsyms; i++) {
		const char *sn, *c;
		bool dup = false;
		int w;

		if (!gelf_getsym(t->syms, (int)i, &s) ||
		    s.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(s.st_info) != STT_FUNC)
			continue;
		sn = elf_strptr(t->elf, t->strndx, s.st_name);
		if (!sn || strncmp(sn, name, k) || sn[k] != '.' ||
		    is_cold_name(sn) || (c = clone_suffix(sn)) != sn + k)
			continue;
		/* Once per name (the same clone in several files). */
		for (const char *p = buf; (p = strstr(p, sn)) && !dup; p++)
			dup = (p == buf || p[-1] == ' ') &&
			      (p[strlen(sn)] == ',' || !p[strlen(sn)]);
		if (dup)
			continue;
		if (shown == 8 || len + strlen(sn) + 3 >= size) {
			more++;
			continue;
		}
		w = snprintf(buf + len, size - len, "%s%s", shown ? ", " : "",
			     sn);
		len += (size_t)w;
		shown++;
	}
	if (more && len + 16 < size)
		snprintf(buf + len, size - len, " and %zu more", more);
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
	size_t *index = NULL, *igrown;
	size_t n = 0, cap = 0, other = 0;
	char clones[256];
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
			if (grown)
				match = grown;
			igrown = grown ? realloc(index, cap * sizeof(*index))
				       : NULL;
			if (!igrown) {
				rw__lp_set_error("%s: out of memory", L->path);
				err = -ENOMEM;
				goto out;
			}
			index = igrown;
		}
		index[n] = i;
		match[n++] = s;
	}
	if (!n && other) {
		rw__lp_set_error("%s: '%s' in %s is not a function", L->path,
				 name, t->shown);
		err = -RW_ERR_SYMBOL;
	} else if (!n && func &&
		   (list_clones(t, name, clones, sizeof(clones)), clones[0])) {
		rw__lp_set_error("%s: '%s' was not found in %s; the compiler "
				 "made clones of it: %s, which have another "
				 "calling convention; patch the callers, or "
				 "declare a replacement of a clone with "
				 "RW_PATCH_FUNC_CLONE() (doc/LIVEPATCH.md)",
				 L->path, name, t->shown, clones);
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
		out->index = index[pos ? pos - 1 : 0];
		out->addr = out->s.st_shndx == SHN_ABS
				    ? (uintptr_t)out->s.st_value
				    : t->bias + (uintptr_t)out->s.st_value;
	}
out:
	free(match);
	free(index);
	return err;
}

static bool pfe_has(const struct target *t, uintptr_t addr)
{
	return t->npfe &&
	       bsearch(&addr, t->pfe, t->npfe, sizeof(*t->pfe), cmp_uptr);
}

/* The function's patchable entry, which __patchable_function_entries
 * lists at its start or after a 4-byte landing pad (endbr64, BTI C), in
 * *@sled: its offset from the start. False if it has none (or the
 * function is too short for one). */
static bool entry_sled(const struct target *t, const struct rw__lp_func *f,
		       size_t *sled)
{
	if (pfe_has(t, f->old_addr))
		*sled = 0;
	else if (pfe_has(t, f->old_addr + 4))
		*sled = 4;
	else
		return false;
	return f->old_size >= *sled + SLED_MIN;
}

#ifdef RW_BACKEND_AARCH64
/*
 * aarch64 entries. GCC's -fpatchable-function-entry=2 puts its two NOPs
 * at the function's first instruction, or after the BTI c that
 * -mbranch-protection=bti|standard puts first (a PACIASP comes after the
 * NOPs), and records the first NOP in __patchable_function_entries. That
 * NOP becomes a B (to the new function, a dispatcher or a far stub): NOP
 * and B may be exchanged while other cores run them (CMODX), and the BTI
 * stays, the landing pad of indirect calls, which then run on into the
 * B. A direct call lands on the BTI too. The original body continues
 * after the B (the second NOP is never written).
 */
static uint32_t insn_at(uintptr_t p)
{
	uint32_t i;

	memcpy(&i, (const void *)p, 4);
	return i;
}

static bool is_bti_c(uint32_t i)
{
	return i == A64_BTI_C || i == A64_BTI_JC;
}

/*
 * Another tool's breakpoint (BRK: a debugger; a uprobe's BRK) on the
 * entry of @f: on its first instruction (the BTI) or on one of the NOPs.
 * Returns its offset from the function's start, or -1.
 */
static long foreign_brk(const struct target *t, const struct rw__lp_func *f)
{
	size_t sled;

	if (!entry_sled(t, f, &sled))
		return -1;
	if (a64_is_brk(insn_at(f->old_addr)))
		return 0;
	for (size_t k = sled; k < sled + SLED_MIN; k += 4)
		if (a64_is_brk(insn_at(f->old_addr + k)))
			return (long)k;
	return -1;
}

/* The entry NOP of @f (old_addr, old_size set). */
static int find_sled(struct load *L, struct target *t, struct rw__lp_func *f,
		     const char *name)
{
	long bp = foreign_brk(t, f);
	uint32_t i;

	if (bp >= 0) {
		rw__lp_set_error("%s: '%s' in %s: a breakpoint (brk) from "
				 "another tool, a uprobe (bpftrace, perf "
				 "probe) or a debugger, is at %s+%ld: remove "
				 "it first",
				 L->path, name, t->shown, name, bp);
		return -RW_ERR_BREAKPOINT;
	}
	if (f->old_size >= SLED_MIN && pfe_has(t, f->old_addr))
		f->sled = f->old_addr;
	else if (f->old_size >= 4 + SLED_MIN &&
		 is_bti_c(insn_at(f->old_addr)) && pfe_has(t, f->old_addr + 4))
		f->sled = f->old_addr + 4;
	else
		goto refuse;
	i = insn_at(f->sled);
	f->sled_len = SLED_MIN;
	/* A B: an earlier patch's (or function tracing's). */
	if ((i == A64_NOP || a64_is_b(i)) && insn_at(f->sled + 4) == A64_NOP)
		return 0;
	rw__lp_set_error("%s: '%s' in %s has no two NOPs at its entry "
			 "(0x%08x 0x%08x); build the target with " ENTRY_FLAG,
			 L->path, name, t->shown, (unsigned)i,
			 (unsigned)insn_at(f->sled + 4));
	return -RW_ERR_NOT_PATCHABLE;
refuse:
	rw__lp_set_error("%s: '%s' in %s has no patchable entry%s; build the "
			 "target with " ENTRY_FLAG,
			 L->path, name, t->shown,
			 t->has_pfe ? "" : " (no " PFE_SECTION " at all)");
	return -RW_ERR_NOT_PATCHABLE;
}

#else /* x86-64 */
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

/*
 * Another tool's breakpoint in the entry of @f: a uprobe (bpftrace, perf
 * probe) or a debugger writes an int3 over the first byte of an
 * instruction: the function's first (the endbr64 if there is one), or one
 * of the entry's NOPs, or rewire's jump. A patchable entry holds nothing
 * else, so an int3 at one of those places is not the program's. Returns
 * its offset from the function's start, or -1.
 */
static long foreign_int3(const struct target *t, const struct rw__lp_func *f)
{
	const uint8_t *p = (const uint8_t *)f->old_addr;
	size_t sled;

	if (!entry_sled(t, f, &sled))
		return -1;
	if (p[0] == 0xcc)
		return 0;
	if (p[sled] == OP_JMP32)
		return -1; /* its displacement may hold any byte */
	for (size_t i = sled; i < sled + SLED_MIN; i++)
		if (p[i] == 0xcc)
			return (long)i;
	return -1;
}

/* The NOP sled of @f (old_addr, old_size set). */
static int find_sled(struct load *L, struct target *t, struct rw__lp_func *f,
		     const char *name)
{
	static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
	const uint8_t *p = (const uint8_t *)f->old_addr;
	uintptr_t end = f->old_addr + f->old_size;
	long bp = foreign_int3(t, f);
	size_t max;

	if (bp >= 0) {
		rw__lp_set_error("%s: '%s' in %s: a breakpoint (int3) from "
				 "another tool, a uprobe (bpftrace, perf "
				 "probe) or a debugger, is at %s+%ld: remove "
				 "it first",
				 L->path, name, t->shown, name, bp);
		return -RW_ERR_BREAKPOINT;
	}
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

#endif

/*
 * st_size of the function at @addr in the patch (bias @bias), or 0; with
 * its pieces (NAME.cold, ...) from the table that named it, into @f.
 */
static size_t patch_func_size(Elf *elf, uintptr_t bias, uintptr_t addr,
			      struct rw__lp_func *f)
{
	GElf_Word types[2] = { SHT_SYMTAB, SHT_DYNSYM };

	for (size_t k = 0; k < 2; k++) {
		GElf_Shdr sh = { 0 };
		Elf_Scn *scn = find_scn(elf, types[k], NULL, &sh);
		Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
		size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
		struct symtab st = { elf, d, n, sh.sh_link, bias };
		const char *sn;
		GElf_Sym s;

		for (size_t i = 0; d && i < n; i++) {
			if (!gelf_getsym(d, (int)i, &s) ||
			    GELF_ST_TYPE(s.st_info) != STT_FUNC ||
			    s.st_shndx == SHN_UNDEF || !s.st_size ||
			    bias + s.st_value != addr)
				continue;
			sn = elf_strptr(elf, sh.sh_link, s.st_name);
			if (sn && add_pieces(&st, i, sn, &f->new_pieces,
					     &f->nnew_pieces))
				return 0;
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
	struct symtab st;
	struct sym sym;
	const char *clone;
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
	if (pf->flags & ~(unsigned long)RW_PATCH_F_CLONE) {
		rw__lp_set_error("%s: function %zu ('%s') has unknown flags "
				 "0x%lx",
				 L->path, i, pf->old_name,
				 pf->flags & ~(unsigned long)RW_PATCH_F_CLONE);
		return -RW_ERR_PATCH_VERSION;
	}
	clone = clone_suffix(pf->old_name);
	if (is_cold_name(pf->old_name)) {
		rw__lp_set_error("%s: '%s' is a piece of a function that the "
				 "compiler moved out of it, not a function: "
				 "patch the function it belongs to",
				 L->path, pf->old_name);
		return -RW_ERR_NOT_PATCHABLE;
	}
	if (clone && !(pf->flags & RW_PATCH_F_CLONE)) {
		rw__lp_set_error("%s: '%s' is a clone the compiler made of "
				 "'%.*s', with another calling convention; "
				 "if the new function has the clone's, declare "
				 "it with RW_PATCH_FUNC_CLONE()",
				 L->path, pf->old_name,
				 (int)(clone - pf->old_name), pf->old_name);
		return -RW_ERR_NOT_PATCHABLE;
	}
	if (!clone && (pf->flags & RW_PATCH_F_CLONE)) {
		rw__lp_set_error("%s: '%s' is declared a clone "
				 "(RW_PATCH_FUNC_CLONE) but its name is not "
				 "one (NAME.constprop.N, NAME.isra.N, "
				 "NAME.part.N)",
				 L->path, pf->old_name);
		return -RW_ERR_SYMBOL;
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
	if (!clone) {
		char clones[256];

		/* Their callers keep the old code: worth a line in the log
		 * (like an inlined copy, it is the patch author's call). */
		list_clones(t, pf->old_name, clones, sizeof(clones));
		if (clones[0])
			rw__log("%s: %s has clones that this patch does not "
				"replace (another calling convention): %s",
				L->path, f->label, clones);
	}
	st = (struct symtab){ t->elf, t->syms, t->nsyms, t->strndx, t->bias };
	if (add_pieces(&st, sym.index, pf->old_name, &f->old_pieces,
		       &f->nold_pieces)) {
		rw__lp_set_error("%s: out of memory", L->path);
		return -ENOMEM;
	}
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

/*
 * The address of @name (position @pos) in @object, as RW_PATCH_REF and a
 * named relocation find it: a data or function symbol, not thread-local
 * nor an IFUNC (its address is not what the patch wants). *@tp: the
 * object, for its pin and for messages.
 */
static int resolve_named(struct load *L, const char *object, const char *name,
			 unsigned long pos, const char *what, uintptr_t *addr,
			 struct target **tp)
{
	struct target *t;
	struct sym sym;
	int err, type;

	err = get_target(L, object, name, &t);
	if (!err)
		err = resolve(L, t, name, pos, false, &sym);
	if (err)
		return err;
	type = GELF_ST_TYPE(sym.s.st_info);
	if (type == STT_TLS || type == STT_GNU_IFUNC) {
		rw__lp_set_error("%s: %s '%s' in %s is %s; not supported",
				 L->path, what, name, t->shown,
				 type == STT_TLS ? "thread-local (TLS)"
						 : "an IFUNC");
		return -RW_ERR_SYMBOL;
	}
	*addr = sym.addr;
	*tp = t;
	return 0;
}

static int resolve_ref(struct load *L, size_t i, const struct rw_patch_ref *r,
		       uintptr_t patch_bias, uintptr_t *addr)
{
	struct slot_query q = { .bias = patch_bias };
	struct target *t;
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
	return resolve_named(L, r->object, r->name, r->sympos, "reference",
			     addr, &t);
}

/* ------------------------------------------------------------------------
 * The relocation table (descriptor version 3).
 *
 * Every entry is resolved and checked before the first byte is written:
 * where it writes (inside one of the patch's own PT_LOAD segments), what
 * (the symbol, found as a reference is; or the address the dynamic linker
 * resolved), that a PC32 value fits. Then the values go in through the
 * text writer, nearby fields in one write. Nothing of the program is
 * written: only the patch, which is unmapped again on any error.
 */

/* The patch's PT_LOAD segments. */
struct segs {
	uintptr_t bias;
	struct rw__lp_range r[16];
	size_t n;
	bool found, toomany;
};

static int segs_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct segs *q = arg;

	(void)size;
	if (info->dlpi_addr != q->bias)
		return 0;
	q->found = true;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (q->n == sizeof(q->r) / sizeof(q->r[0])) {
			q->toomany = true;
			break;
		}
		q->r[q->n].start = info->dlpi_addr + ph->p_vaddr;
		q->r[q->n++].end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	return 1;
}

/* The segment of @q that holds [@p, @p + @len), or -1. */
static long seg_of(const struct segs *q, uintptr_t p, size_t len)
{
	for (size_t i = 0; i < q->n; i++)
		if (p >= q->r[i].start && p <= q->r[i].end &&
		    len <= q->r[i].end - p)
			return (long)i;
	return -1;
}

/* One field to write. */
struct field {
	uintptr_t where;
	uintptr_t sym;	  /* S: the symbol's address */
	struct target *t; /* its object, for a named one */
	uint64_t value;
	uint32_t len; /* 4 or 8 */
	uint32_t seg;
	size_t index; /* in the table, for messages */
};

static int cmp_field(const void *a, const void *b)
{
	const struct field *x = a, *y = b;

	return x->where < y->where ? -1 : x->where > y->where;
}

/* Do two named relocations name the same symbol? */
static bool same_symbol(const struct rw_patch_reloc *a,
			const struct rw_patch_reloc *b)
{
	const char *ao = a->object ? a->object : "";
	const char *bo = b->object ? b->object : "";

	return b->name && a->sympos == b->sympos &&
	       (a->name == b->name || !strcmp(a->name, b->name)) &&
	       (ao == bo || !strcmp(ao, bo));
}

/* Fields at most this far apart go in one write (with the bytes between
 * them, read back from the patch). */
#define FIELD_GAP 32
#define WRITE_MAX 4096

/*
 * Resolve and check every relocation of @d (the patch loaded at @bias)
 * into *@fieldsp (sorted, malloc'ed). One address in each object that a
 * named relocation points into is appended to *@pins (for the pin that
 * keeps that object loaded while the patch is).
 */
static int check_relocs(struct load *L, const struct rw_patch_desc *d,
			uintptr_t bias, struct field **fieldsp,
			uintptr_t **pins, size_t *npins)
{
	struct segs q = { .bias = bias };
	struct field *fields;
	size_t n = d->nrelocs;
	int err = 0;

	*fieldsp = NULL;
	if (d->version < 3 || !n)
		return 0;
	dl_iterate_phdr(segs_cb, &q);
	if (!q.found || q.toomany) {
		rw__lp_set_error("%s: %s", L->path,
				 q.toomany ? "more loadable segments than "
					     "rewire checks relocations in (16)"
					   : "its segments were not found");
		return -RW_ERR_PATCH_FILE;
	}
	/* The table itself is the patch's: a wild pointer is refused, not
	 * followed. */
	if (!d->relocs || n > SIZE_MAX / sizeof(*d->relocs) ||
	    seg_of(&q, (uintptr_t)d->relocs, n * sizeof(*d->relocs)) < 0) {
		rw__lp_set_error("%s: bad descriptor: its relocation table "
				 "(%zu entries at %p) is not in the patch",
				 L->path, n, (const void *)d->relocs);
		return -RW_ERR_PATCH_VERSION;
	}
	fields = calloc(n, sizeof(*fields));
	if (!fields) {
		rw__lp_set_error("%s: out of memory", L->path);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && !err; i++) {
		const struct rw_patch_reloc *r = &d->relocs[i];
		struct field *f = &fields[i];
		bool named = r->name && r->name[0];
		struct target *t = NULL;
		char label[128];
		uintptr_t s;
		long seg;

		if (named)
			make_label(label, sizeof(label), r->object, r->name,
				   r->sympos);
		else
			snprintf(label, sizeof(label), "address %p", r->target);
		if ((r->type != RW_PATCH_RELOC_ABS64 &&
		     r->type != RW_PATCH_RELOC_PC32) ||
		    r->flags) {
			rw__lp_set_error("%s: relocation %zu (to %s) has an "
					 "unknown %s %u (a newer rewire "
					 "built it?)",
					 L->path, i, label,
					 r->flags ? "flag set" : "type",
					 r->flags ? (unsigned)r->flags
						  : (unsigned)r->type);
			err = -RW_ERR_PATCH_VERSION;
			break;
		}
		f->where = (uintptr_t)r->where;
		f->len = r->type == RW_PATCH_RELOC_ABS64 ? 8 : 4;
		f->index = i;
		seg = seg_of(&q, f->where, f->len);
		if (seg < 0) {
			rw__lp_set_error("%s: relocation %zu (to %s) writes at "
					 "%p, outside the patch's own "
					 "segments: refused",
					 L->path, i, label, r->where);
			err = -RW_ERR_PATCH_VERSION;
			break;
		}
		f->seg = (uint32_t)seg;
		/* A generated patch names one symbol many times: resolve it
		 * once (a lookup reads the object's whole symbol table). */
		for (size_t j = 0; named && j < i && !t; j++)
			if (same_symbol(r, &d->relocs[j])) {
				s = fields[j].sym;
				t = fields[j].t;
			}
		if (named && !t) {
			err = resolve_named(L, r->object, r->name, r->sympos,
					    "relocation to", &s, &t);
			if (err) {
				char why[RW__LP_ERRLEN];

				snprintf(why, sizeof(why), "%s",
					 rw_patch_last_error());
				rw__lp_set_error("%s (relocation %zu)", why, i);
				break;
			}
		} else if (!named) {
			s = (uintptr_t)r->target;
		}
		f->sym = s;
		f->t = t;
		s += (uintptr_t)r->addend;
		if (r->type == RW_PATCH_RELOC_ABS64) {
			f->value = s;
		} else {
			int64_t v = (int64_t)(s - f->where);

			if (v != (int32_t)v) {
				rw__lp_set_error(
					"%s: relocation %zu: %s%s%s is %s%llx "
					"bytes away from the patch's field "
					"at %p, out of reach of a 32-bit "
					"displacement (PC32); build the patch "
					"with 64-bit references (ABS64)",
					L->path, i, label, t ? " in " : "",
					t ? t->shown : "", v < 0 ? "-0x" : "0x",
					(unsigned long long)(v < 0 ? -(uint64_t)v
								   : (uint64_t)
									     v),
					r->where);
				err = -RW_ERR_OUT_OF_RANGE;
				break;
			}
			f->value = (uint64_t)(uint32_t)(int32_t)v;
		}
		if (t && t->key[0] && !t->reloc_pin) {
			uintptr_t *grown;

			grown = realloc(*pins, (*npins + 1) * sizeof(**pins));
			if (!grown) {
				rw__lp_set_error("%s: out of memory", L->path);
				err = -ENOMEM;
				break;
			}
			*pins = grown;
			(*pins)[(*npins)++] = f->sym;
			t->reloc_pin = true;
		}
	}
	if (!err) {
		qsort(fields, n, sizeof(*fields), cmp_field);
		for (size_t i = 1; i < n; i++) {
			if (fields[i].where >=
			    fields[i - 1].where + fields[i - 1].len)
				continue;
			rw__lp_set_error("%s: relocations %zu and %zu write "
					 "over each other (at %p)",
					 L->path, fields[i - 1].index,
					 fields[i].index,
					 (void *)fields[i].where);
			err = -RW_ERR_PATCH_VERSION;
			break;
		}
	}
	if (err) {
		free(fields);
		return err;
	}
	*fieldsp = fields;
	return 0;
}

/*
 * Write the @n checked @fields into the patch, through the text writer
 * (the patch's code is never made writable), under the text lock. Fields
 * close together in one segment share a write: the bytes between them are
 * the patch's own, copied from where they are.
 */
static int write_relocs(struct load *L, const struct field *fields, size_t n)
{
	uint8_t buf[WRITE_MAX];
	size_t i = 0;
	int err;

	if (!n)
		return 0;
	err = rw__lock_acquire(&rw__text_lock);
	if (err) {
		rw__lp_set_error("%s: cannot take the text lock: %s", L->path,
				 strerror(-err));
		return err;
	}
	rw__text_error_clear();
	while (i < n && !err) {
		uintptr_t start = fields[i].where;
		uintptr_t end = start + fields[i].len;
		size_t j = i + 1;

		while (j < n && fields[j].seg == fields[i].seg &&
		       fields[j].where - end <= FIELD_GAP &&
		       fields[j].where + fields[j].len - start <= WRITE_MAX) {
			end = fields[j].where + fields[j].len;
			j++;
		}
		memcpy(buf, (const void *)start, end - start);
		for (size_t k = i; k < j; k++)
			memcpy(buf + (fields[k].where - start),
			       &fields[k].value, fields[k].len);
		err = rw__text_write((void *)start, buf, end - start);
		if (err)
			rw__lp_set_error("%s: cannot write relocation %zu at "
					 "%p: %s",
					 L->path, fields[i].index,
					 (void *)start, rw__text_error());
		i = j;
	}
	rw__lock_release(&rw__text_lock);
	return err;
}

/* ------------------------------------------------------------------------
 * The binding (.rewire.bind, bind.h): read from the patch's file before it
 * is mapped, checked against the loaded objects.
 */

struct bind_obj {
	char *key;	/* "" main program */
	uint8_t id[64]; /* its build-id ... */
	size_t idlen;	/* ... of this many bytes; 0: "-" */
};

struct bind_func {
	size_t obj; /* index into objs */
	char *name;
	unsigned long sympos;
	uint64_t size, hash;
	size_t line;
};

struct binding {
	struct bind_obj *objs;
	size_t nobjs;
	struct bind_func *funcs;
	size_t nfuncs;
};

static void binding_free(struct binding *b)
{
	for (size_t i = 0; i < b->nobjs; i++)
		free(b->objs[i].key);
	for (size_t i = 0; i < b->nfuncs; i++)
		free(b->funcs[i].name);
	free(b->objs);
	free(b->funcs);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Split the record @p (@len bytes, no '\n') into at most @max decoded
 * fields (NUL-terminated, in @buf of @len + 1 bytes). Returns the number
 * of fields, or -1 for a bad escape or a raw '\r' (*@why says which).
 */
static int split_fields(const char *p, size_t len, char *buf, char **f, int max,
			const char **why)
{
	int n = 0;
	char *o = buf;

	f[n++] = o;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (p[i] == '\t') {
			*o++ = '\0';
			if (n == max) {
				*why = "too many fields";
				return -1;
			}
			f[n++] = o;
		} else if (p[i] == '%') {
			if (len - i < 3 || (hi = hexval(p[i + 1])) < 0 ||
			    (lo = hexval(p[i + 2])) < 0) {
				*why = "a '%' not followed by two hex digits";
				return -1;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (p[i] == '\r' || p[i] == '\0') {
			*why = p[i] ? "a raw carriage return" : "a NUL byte";
			return -1;
		} else {
			*o++ = p[i];
		}
	}
	*o = '\0';
	return n;
}

/* A decimal number, all of @s. */
static bool parse_dec(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

/* Lower-case hex, an even number of digits, at most @max bytes. */
static bool parse_hex(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s);

	if (!n || n % 2 || n / 2 > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	for (size_t i = 0; i < n / 2; i++)
		out[i] =
			(uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
	*len = n / 2;
	return true;
}

/* One record (line @line, @nf fields @f) into @b; a message on error. */
static int bind_record(struct load *L, struct binding *b, size_t line, char **f,
		       int nf)
{
	const char *bad = NULL;

	if (line == 1) {
		if (nf != 2 || strcmp(f[0], "rewire-bind"))
			bad = "the first line is not \"rewire-bind<TAB>1\"";
		else if (strcmp(f[1], "1"))
			bad = "an unknown format version (this rewire reads "
			      "1)";
	} else if (!strcmp(f[0], "rewire-bind")) {
		bad = "a second header line";
	} else if (!strcmp(f[0], "object")) {
		struct bind_obj o = { 0 }, *grown;

		if (nf != 3) {
			bad = "an object record has 3 fields";
		} else if (strcmp(f[2], "-") &&
			   !parse_hex(f[2], o.id, sizeof(o.id), &o.idlen)) {
			bad = "a build-id is lower-case hex digits or \"-\"";
		} else {
			for (size_t i = 0; i < b->nobjs && !bad; i++)
				if (!strcmp(b->objs[i].key, f[1]))
					bad = "the object has a line already";
		}
		if (bad)
			goto bad;
		o.key = strdup(f[1]);
		grown = o.key ? realloc(b->objs, (b->nobjs + 1) * sizeof(o))
			      : NULL;
		if (!grown) {
			free(o.key);
			goto nomem;
		}
		b->objs = grown;
		b->objs[b->nobjs++] = o;
	} else if (!strcmp(f[0], "func")) {
		struct bind_func fn = { .line = line }, *grown;
		uint8_t h[8];
		size_t hl = 0;
		uint64_t pos;

		fn.obj = b->nobjs;
		for (size_t i = 0; nf == 6 && i < b->nobjs; i++)
			if (!strcmp(b->objs[i].key, f[1]))
				fn.obj = i;
		if (nf != 6)
			bad = "a func record has 6 fields";
		else if (fn.obj == b->nobjs)
			bad = "a func of an object without an object line "
			      "before it";
		else if (!f[2][0])
			bad = "a func without a name";
		else if (!parse_dec(f[3], &pos) || pos > ULONG_MAX ||
			 !parse_dec(f[4], &fn.size))
			bad = "a position or size is not a decimal number";
		else if (strlen(f[5]) != 16 ||
			 !parse_hex(f[5], h, sizeof(h), &hl))
			bad = "a hash is 16 lower-case hex digits";
		if (bad)
			goto bad;
		fn.sympos = (unsigned long)pos;
		for (size_t i = 0; i < 8; i++)
			fn.hash = fn.hash << 8 | h[i];
		fn.name = strdup(f[2]);
		grown = fn.name ? realloc(b->funcs,
					  (b->nfuncs + 1) * sizeof(fn))
				: NULL;
		if (!grown) {
			free(fn.name);
			goto nomem;
		}
		b->funcs = grown;
		b->funcs[b->nfuncs++] = fn;
	} else {
		rw__lp_set_error("%s: " RW__BIND_SECTION " line %zu: unknown "
				 "record '%.32s' (a newer rewire made it?)",
				 L->path, line, f[0]);
		return -RW_ERR_PATCH_FILE;
	}
	if (!bad)
		return 0;
bad:
	rw__lp_set_error("%s: " RW__BIND_SECTION " line %zu: %s", L->path, line,
			 bad);
	return -RW_ERR_PATCH_FILE;
nomem:
	rw__lp_set_error("%s: out of memory", L->path);
	return -ENOMEM;
}

/* Parse the section's @size bytes at @p into @b. */
static int parse_binding(struct load *L, const char *p, size_t size,
			 struct binding *b)
{
	size_t line = 0, off = 0;
	char *buf = malloc(size + 1);
	int err = 0;

	if (!buf) {
		rw__lp_set_error("%s: out of memory", L->path);
		return -ENOMEM;
	}
	while (off < size && !err) {
		const char *nl = memchr(p + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (p + off)) : size - off;
		const char *why = NULL;
		char *f[8];
		int nf;

		line++;
		nf = split_fields(p + off, len, buf, f, 8, &why);
		if (nf < 0) {
			rw__lp_set_error("%s: " RW__BIND_SECTION " line %zu: "
					 "%s",
					 L->path, line, why);
			err = -RW_ERR_PATCH_FILE;
		} else {
			err = bind_record(L, b, line, f, nf);
		}
		off += len + 1;
	}
	if (!err && !line) {
		rw__lp_set_error("%s: " RW__BIND_SECTION " is empty", L->path);
		err = -RW_ERR_PATCH_FILE;
	}
	free(buf);
	return err;
}

/* "-" or the hex of @id. */
static void id_hex(const uint8_t *id, size_t len, char *buf, size_t size)
{
	size_t o = 0;

	if (!len) {
		snprintf(buf, size, "none");
		return;
	}
	for (size_t i = 0; i < len && o + 3 <= size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%02x", id[i]);
}

/* The build-id of the loaded object of @q, from its PT_NOTE in memory. */
static size_t loaded_build_id(const struct obj_query *q, const uint8_t **id)
{
	for (ElfW(Half) i = 0; i < q->phnum; i++) {
		const ElfW(Phdr) *ph = &q->phdr[i];
		size_t n;

		if (ph->p_type != PT_NOTE)
			continue;
		n = build_id_in((const uint8_t *)(q->bias + ph->p_vaddr),
				ph->p_memsz, id);
		if (n)
			return n;
	}
	return 0;
}

/* Is the bound object @o the loaded one? */
static int check_bound_object(struct load *L, const struct bind_obj *o)
{
	struct obj_query q = { .want = o->key };
	const uint8_t *id = NULL;
	char shown[PATH_MAX + 32], want[132], have[132];
	size_t len;

	dl_iterate_phdr(find_obj_cb, &q);
	if (!q.found) {
		rw__lp_set_error("%s was built for %s, which is not loaded in "
				 "this process",
				 L->path, o->key);
		return -RW_ERR_SYMBOL;
	}
	len = loaded_build_id(&q, &id);
	if (len == o->idlen && (!len || !memcmp(id, o->id, len)))
		return 0;
	shown_name(o->key, q.name, shown, sizeof(shown));
	id_hex(o->id, o->idlen, want, sizeof(want));
	id_hex(id, len, have, sizeof(have));
	rw__lp_set_error("%s was built for %s with build-id %s; the running "
			 "one has build-id %s: rebuild the patch against this "
			 "build",
			 L->path, shown, want, have);
	return -RW_ERR_BUILD_ID;
}

/* Is the bound function @fn (of @o) the loaded one: size and hash of its
 * bytes in the object's file? */
static int check_bound_func(struct load *L, const struct bind_obj *o,
			    const struct bind_func *fn)
{
	struct target *t;
	struct sym sym;
	GElf_Shdr sh;
	Elf_Scn *scn;
	Elf_Data *d;
	uint64_t hash, off;
	char label[96];
	int err;

	make_label(label, sizeof(label), o->key, fn->name, fn->sympos);
	err = get_target(L, o->key, fn->name, &t);
	if (!err)
		err = resolve(L, t, fn->name, fn->sympos, true, &sym);
	if (err)
		return err;
	scn = elf_getscn(t->elf, sym.s.st_shndx);
	if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
	    sym.s.st_value < sh.sh_addr ||
	    sym.s.st_value - sh.sh_addr > sh.sh_size ||
	    sym.s.st_size > sh.sh_size - (sym.s.st_value - sh.sh_addr) ||
	    !(d = elf_rawdata(scn, NULL)) || d->d_size != sh.sh_size) {
		rw__lp_set_error("%s: cannot read the bytes of %s in %s",
				 L->path, label, t->shown);
		return -RW_ERR_BUILD_ID;
	}
	off = sym.s.st_value - sh.sh_addr;
	hash = rw__func_hash((const uint8_t *)d->d_buf + off, sym.s.st_size);
	if (sym.s.st_size == fn->size && hash == fn->hash)
		return 0;
	rw__lp_set_error("%s was built for another build of %s: %s had %llu "
			 "bytes (hash %016llx), the running one has %llu "
			 "(hash %016llx): rebuild the patch against this build",
			 L->path, t->shown, label, (unsigned long long)fn->size,
			 (unsigned long long)fn->hash,
			 (unsigned long long)sym.s.st_size,
			 (unsigned long long)hash);
	return -RW_ERR_BUILD_ID;
}

/*
 * Step 2b: the patch's binding, if it has one (*@bound). Each bound object
 * is loaded with the recorded build-id, each bound function has the
 * recorded size and hash.
 */
static int check_binding(struct load *L, Elf *elf, bool *bound)
{
	struct binding b = { 0 };
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	GElf_Shdr sh;
	Elf_Data *d = NULL;
	int err;

	*bound = false;
	if (elf_getshdrstrndx(elf, &shstrndx))
		return 0;
	while ((scn = elf_nextscn(elf, scn))) {
		if (gelf_getshdr(scn, &sh) &&
		    !strcmp(scn_name(elf, shstrndx, &sh), RW__BIND_SECTION))
			break;
	}
	if (!scn)
		return 0;
	*bound = true;
	if (sh.sh_type == SHT_NOBITS || !(d = elf_rawdata(scn, NULL)) ||
	    (sh.sh_size && !d->d_buf)) {
		rw__lp_set_error("%s: " RW__BIND_SECTION " cannot be read: %s",
				 L->path, elf_errmsg(-1));
		return -RW_ERR_PATCH_FILE;
	}
	err = parse_binding(L, d->d_buf, d->d_size, &b);
	for (size_t i = 0; !err && i < b.nobjs; i++)
		err = check_bound_object(L, &b.objs[i]);
	for (size_t i = 0; !err && i < b.nfuncs; i++)
		err = check_bound_func(L, &b.objs[b.funcs[i].obj], &b.funcs[i]);
	binding_free(&b);
	return err;
}

/* ------------------------------------------------------------------------
 * The steps.
 */

/* What a file of mode @m is, for messages. */
static const char *file_kind(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFLNK:
		return "a symbolic link";
	default:
		return "of an unknown type";
	}
}

/*
 * Step 1: the file. Opened without blocking: open() of a FIFO with no
 * writer, or of some devices, waits forever, and this may be the control
 * thread. Only a regular file goes on, in blocking mode again.
 *
 * From a descriptor (@given >= 0, rw_patch_load_fd): the file it refers to
 * is opened again through /proc/self/fd, read-only, whatever the
 * descriptor's own mode (O_PATH, write-only, non-blocking) or offset; that
 * needs no search permission on the directories of the file, and works for
 * a file since unlinked. @path then only names it in messages.
 */
static int check_file(const char *path, int given, unsigned flags, int *fdp,
		      uint64_t *sizep)
{
	struct stat st, st0;
	uid_t me = geteuid();
	int fd, err, fl;

	if (given >= 0) {
		char self[64];

		if (fstat(given, &st0)) {
			err = -errno;
			rw__lp_set_error("%s: cannot stat the patch's "
					 "descriptor %d: %s",
					 path, given, strerror(-err));
			return err;
		}
		if (!S_ISREG(st0.st_mode)) {
			rw__lp_set_error("%s: refused: not a regular file (%s)",
					 path, file_kind(st0.st_mode));
			return -RW_ERR_PATCH_FILE;
		}
		snprintf(self, sizeof(self), "/proc/self/fd/%d", given);
		fd = open(self, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			rw__lp_set_error("%s: cannot open the patch from its "
					 "descriptor (%s): %s",
					 path, self, strerror(-err));
			return err;
		}
	} else {
		fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	}
	if (fd < 0) {
		err = -errno;
		/* A socket cannot be opened (ENXIO): say what it is. */
		if (!stat(path, &st) && !S_ISREG(st.st_mode)) {
			rw__lp_set_error("%s: refused: not a regular file (%s)",
					 path, file_kind(st.st_mode));
			return -RW_ERR_PATCH_FILE;
		}
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
		rw__lp_set_error("%s: refused: not a regular file (%s)", path,
				 file_kind(st.st_mode));
		goto fail;
	}
	if (given >= 0 &&
	    (st.st_dev != st0.st_dev || st.st_ino != st0.st_ino)) {
		rw__lp_set_error("%s: refused: descriptor %d reopened as "
				 "another file",
				 path, given);
		goto fail;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) {
		err = -errno;
		rw__lp_set_error("%s: cannot use the patch's descriptor: %s",
				 path, strerror(-err));
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
	*sizep = (uint64_t)st.st_size;
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

/* The name of ELF machine @m, for messages. */
static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_386:
		return "i386";
	case EM_ARM:
		return "ARM";
	case EM_AARCH64:
		return "AArch64";
	case EM_X86_64:
		return "x86-64";
	case EM_PPC64:
		return "PowerPC64";
	case EM_S390:
		return "S/390";
	case EM_RISCV:
		return "RISC-V";
	case EM_NONE:
		return "none";
	default:
		return "not " MACHINE_NAME;
	}
}

/* Does [@off, @off + @len) lie within a file of @size bytes? */
static bool in_file(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* Are the contents of @scn within the file? If not, say so (with its name
 * when @elf, whose section names are whole, is given). */
static bool section_in_file(const char *path, Elf_Scn *scn, Elf *elf,
			    uint64_t size)
{
	size_t shstrndx = 0;
	GElf_Shdr sh;

	if (!gelf_getshdr(scn, &sh)) {
		rw__lp_set_error("%s: corrupt section header %zu: %s", path,
				 elf_ndxscn(scn), elf_errmsg(-1));
		return false;
	}
	if (sh.sh_type == SHT_NOBITS || in_file(sh.sh_offset, sh.sh_size, size))
		return true;
	if (elf && elf_getshdrstrndx(elf, &shstrndx))
		shstrndx = 0;
	rw__lp_set_error("%s: truncated or corrupt: section %zu%s%s%s (offset "
			 "%llu, %llu bytes) ends beyond the end of the file "
			 "(%llu bytes)",
			 path, elf_ndxscn(scn), shstrndx ? " '" : "",
			 shstrndx ? scn_name(elf, shstrndx, &sh) : "",
			 shstrndx ? "'" : "", (unsigned long long)sh.sh_offset,
			 (unsigned long long)sh.sh_size,
			 (unsigned long long)size);
	return false;
}

/*
 * Is the file laid out within its @size bytes? Every program header
 * (each PT_LOAD is mapped by dlopen: a segment past the end of the file
 * would fault with SIGBUS when touched), the section header table and each
 * section with contents. Checked before libelf or dlopen reads any of it.
 */
static int check_layout(const char *path, Elf *elf, const GElf_Ehdr *eh,
			uint64_t size)
{
	size_t phnum, shnum, shstrndx;
	Elf_Scn *scn = NULL;

	if (eh->e_phnum &&
	    (eh->e_phentsize != sizeof(Elf64_Phdr) ||
	     !in_file(eh->e_phoff, (uint64_t)eh->e_phnum * eh->e_phentsize,
		      size))) {
		rw__lp_set_error("%s: truncated or corrupt: its program "
				 "headers (offset %llu, %u of %u bytes) are "
				 "not within the file (%llu bytes)",
				 path, (unsigned long long)eh->e_phoff,
				 (unsigned)eh->e_phnum,
				 (unsigned)eh->e_phentsize,
				 (unsigned long long)size);
		return -RW_ERR_PATCH_FILE;
	}
	if (elf_getphdrnum(elf, &phnum)) {
		rw__lp_set_error("%s: corrupt program headers: %s", path,
				 elf_errmsg(-1));
		return -RW_ERR_PATCH_FILE;
	}
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph)) {
			rw__lp_set_error("%s: corrupt program header %zu: %s",
					 path, i, elf_errmsg(-1));
			return -RW_ERR_PATCH_FILE;
		}
		if (in_file(ph.p_offset, ph.p_filesz, size))
			continue;
		rw__lp_set_error("%s: truncated or corrupt: segment %zu (%s, "
				 "offset %llu, %llu bytes) ends beyond the "
				 "end of the file (%llu bytes)",
				 path, i,
				 ph.p_type == PT_LOAD	   ? "PT_LOAD"
				 : ph.p_type == PT_NOTE	   ? "PT_NOTE"
				 : ph.p_type == PT_DYNAMIC ? "PT_DYNAMIC"
							   : "type other",
				 (unsigned long long)ph.p_offset,
				 (unsigned long long)ph.p_filesz,
				 (unsigned long long)size);
		return -RW_ERR_PATCH_FILE;
	}
	if (eh->e_shoff && (eh->e_shentsize != sizeof(Elf64_Shdr) ||
			    !in_file(eh->e_shoff,
				     (uint64_t)(eh->e_shnum ? eh->e_shnum : 1) *
					     eh->e_shentsize,
				     size))) {
		rw__lp_set_error("%s: truncated or corrupt: its section "
				 "headers (offset %llu) are not within the "
				 "file (%llu bytes)",
				 path, (unsigned long long)eh->e_shoff,
				 (unsigned long long)size);
		return -RW_ERR_PATCH_FILE;
	}
	if (elf_getshdrnum(elf, &shnum) ||
	    (eh->e_shoff &&
	     !in_file(eh->e_shoff, (uint64_t)shnum * sizeof(Elf64_Shdr),
		      size))) {
		rw__lp_set_error("%s: truncated or corrupt: its section "
				 "headers are not within the file (%llu "
				 "bytes)",
				 path, (unsigned long long)size);
		return -RW_ERR_PATCH_FILE;
	}
	/* The section names first, to name the others. */
	if (elf_getshdrstrndx(elf, &shstrndx))
		shstrndx = 0;
	if (shstrndx && (scn = elf_getscn(elf, shstrndx)) &&
	    !section_in_file(path, scn, NULL, size))
		return -RW_ERR_PATCH_FILE;
	scn = NULL;
	while ((scn = elf_nextscn(elf, scn)))
		if (!section_in_file(path, scn, shstrndx ? elf : NULL, size))
			return -RW_ERR_PATCH_FILE;
	return 0;
}

/* Is @elf a position-independent executable (DF_1_PIE)? glibc refuses to
 * dlopen one; say so before. */
static bool is_pie(Elf *elf)
{
	size_t phnum;

	if (elf_getphdrnum(elf, &phnum))
		return false;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		Elf_Data *d;
		GElf_Dyn dyn;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_DYNAMIC)
			continue;
		d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
					 ELF_T_DYN);
		for (int k = 0; d && gelf_getdyn(d, k, &dyn); k++) {
			if (dyn.d_tag == DT_NULL)
				break;
			if (dyn.d_tag == DT_FLAGS_1 &&
			    (dyn.d_un.d_val & DF_1_PIE))
				return true;
		}
	}
	return false;
}

/* Step 2: ELF header, layout, note, descriptor symbol. */
static int check_elf(const char *path, int fd, uint64_t size, Elf **elfp)
{
	static const char magic[SELFMAG] = ELFMAG;
	char head[SELFMAG];
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

		if (pread(fd, head, sizeof(head), 0) == sizeof(head) &&
		    !memcmp(head, magic, sizeof(head)))
			rw__lp_set_error("%s: truncated or corrupt ELF header "
					 "(%llu bytes in all)%s%s",
					 path, (unsigned long long)size,
					 e ? ": " : "", e ? elf_errmsg(e) : "");
		else
			rw__lp_set_error("%s: not an ELF file", path);
		err = -RW_ERR_PATCH_FILE;
		goto fail;
	}
	err = -RW_ERR_PATCH_FILE;
	if (gelf_getclass(elf) != ELFCLASS64) {
		rw__lp_set_error(
			"%s: a 32-bit ELF file (class %d), not an " MACHINE_NAME
			" ELF64 shared object",
			path, gelf_getclass(elf));
		goto fail;
	}
	if (eh.e_machine != MACHINE) {
		rw__lp_set_error("%s: built for another machine (e_machine "
				 "%u, %s), not " MACHINE_NAME,
				 path, (unsigned)eh.e_machine,
				 machine_name(eh.e_machine));
		goto fail;
	}
	if (eh.e_type != ET_DYN) {
		rw__lp_set_error("%s: %s (e_type %u), not a shared object; "
				 "build the patch with RW_PATCH() and -shared",
				 path,
				 eh.e_type == ET_EXEC  ? "an executable"
				 : eh.e_type == ET_REL ? "a relocatable object "
							 "(.o)"
				 : eh.e_type == ET_CORE ? "a core dump"
							: "not a shared object",
				 (unsigned)eh.e_type);
		goto fail;
	}
	err = check_layout(path, elf, &eh, size);
	if (err)
		goto fail;
	err = -RW_ERR_PATCH_FILE;
	if (is_pie(elf)) {
		rw__lp_set_error("%s: a position-independent executable (PIE), "
				 "not a shared object; build the patch with "
				 "RW_PATCH() and -shared",
				 path);
		goto fail;
	}
	err = -RW_ERR_PATCH_VERSION;
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
	if (version != RW_PATCH_ABI_VERSION && version != 2) {
		rw__lp_set_error("%s: built for descriptor version %u, this "
				 "rewire reads 2 and %u",
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
 * under it (and under the dynamic loader's lock); a load or unload of a
 * patch from one of them fails with -EDEADLK (rw__lp_loader_held).
 */
static int map_patch(const char *path, int fd, void **handlep, uintptr_t *biasp)
{
	struct link_map *lm = NULL;
	char name[64];
	static const char UNDEF[] = "undefined symbol: ";
	int n = fd, dupfd = -1, err;
	const char *msg, *undef;
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
		undef = strstr(msg, UNDEF);
		if (undef) {
			/* "undefined symbol: X" or "..., version V". */
			undef += sizeof(UNDEF) - 1;
			rw__lp_set_error(
				"%s: dlopen failed: %s; '%.*s' is exported "
				"neither by the program nor by its libraries: "
				"reach a function or variable of the program "
				"itself with RW_PATCH_REF (or build the patch "
				"with `rewire build-patch`, which does it)",
				path, msg, (int)strcspn(undef, ", "), undef);
		} else {
			rw__lp_set_error("%s: dlopen failed: %s", path, msg);
		}
		err = undef ? -RW_ERR_SYMBOL : -RW_ERR_PATCH_FILE;
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
	/* Version 2 is version 3 without the relocation table. */
	if (d->magic != RW_PATCH_MAGIC ||
	    !((d->version == RW_PATCH_ABI_VERSION && d->size == sizeof(*d)) ||
	      (d->version == 2 &&
	       d->size == offsetof(struct rw_patch_desc, relocs)))) {
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

struct text_query {
	uintptr_t bias;
	struct rw__lp_obj *o;
	bool found, toomany;
};

static int text_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct text_query *q = arg;
	struct rw__lp_obj *o = q->o;

	(void)size;
	if (info->dlpi_addr != q->bias)
		return 0;
	q->found = true;
	o->ntext = 0;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (o->ntext == sizeof(o->text) / sizeof(o->text[0])) {
			q->toomany = true;
			break;
		}
		o->text[o->ntext].start = info->dlpi_addr + ph->p_vaddr;
		o->text[o->ntext++].end =
			info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	return 1;
}

/* The patch's executable segments (loaded at @bias) into @o->text. */
static int patch_text(const char *path, uintptr_t bias, struct rw__lp_obj *o)
{
	struct text_query q = { .bias = bias, .o = o };

	dl_iterate_phdr(text_cb, &q);
	if (q.found && !q.toomany && o->ntext)
		return 0;
	rw__lp_set_error("%s: %s", path,
			 q.toomany ? "more executable segments than rewire "
				     "tracks (8)"
				   : "no executable segment found");
	return -RW_ERR_PATCH_FILE;
}

void rw__lp_funcs_free(struct rw__lp_func *funcs, size_t n)
{
	for (size_t i = 0; funcs && i < n; i++) {
		free(funcs[i].old_pieces);
		free(funcs[i].new_pieces);
	}
	free(funcs);
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
	return rw__lp_load_fd(path, -1, flags, out);
}

int rw__lp_load_fd(const char *path, int given_fd, unsigned flags,
		   struct rw__lp_obj *out)
{
	struct load L = { .path = path };
	const struct rw_patch_desc *desc = NULL;
	struct rw__lp_func *funcs = NULL;
	uintptr_t *ref_addr = NULL, patch_bias = 0;
	struct field *fields = NULL;
	size_t nfuncs = 0, nref_addr = 0;
	bool bound;
	void *handle = NULL;
	Elf *elf = NULL;
	char real[PATH_MAX], notice[RW__LP_ERRLEN], file_id[RW_FILE_ID_MAX];
	uint64_t size = 0;
	int fd = -1, err;

	if (!path || !path[0] || !out) {
		rw__lp_set_error("rw_patch_load: %s",
				 !out ? "no output" : "no path");
		return -EINVAL;
	}
	if (rw__lp_loader_held()) {
		rw__lp_set_error("%s: refused: called by code that runs while "
				 "a patch is loaded or unloaded in this thread "
				 "(a constructor or destructor): it would wait "
				 "for itself",
				 path);
		return -EDEADLK;
	}
	err = check_file(path, given_fd, flags, &fd, &size);
	if (err)
		return err;
	/* The identity of the very file that is checked and mapped. */
	err = rw_file_id(fd, file_id, sizeof(file_id));
	if (err) {
		rw__lp_set_error("%s: cannot read the patch: %s", path,
				 strerror(-err));
		goto out;
	}
	err = check_elf(path, fd, size, &elf);
	if (!err)
		err = check_binding(&L, elf, &bound);
	if (err)
		goto out;
	if (!bound && (flags & RW_PATCH_LOAD_BOUND_ONLY)) {
		rw__lp_set_error(
			"%s: refused: not bound to a build (no " RW__BIND_SECTION
			"): nothing says it was made "
			"for this program; bind it with `rewire "
			"bind-patch`",
			path);
		err = -RW_ERR_BUILD_ID;
		goto out;
	}
	if (!bound)
		rw__log("%s: not bound to a build (no " RW__BIND_SECTION "): "
			"nothing checks that it was made for this one",
			path);

	err = names_acquire(path);
	if (err)
		goto out;
	err = map_patch(path, fd, &handle, &patch_bias);
	rw__lock_release(&names_lock);
	if (err)
		goto out;
	err = check_desc(path, handle, &desc);
	if (!err)
		err = rw__lp_check_name(path, desc->name);
	if (err)
		goto out;

	nfuncs = desc->nfuncs; /* desc goes with the object on error */
	funcs = calloc(nfuncs, sizeof(*funcs));
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
		funcs[i].new_size = patch_func_size(
			elf, patch_bias, funcs[i].new_addr, &funcs[i]);
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
	nref_addr = desc->nrefs;
	err = check_relocs(&L, desc, patch_bias, &fields, &ref_addr,
			   &nref_addr);
	if (err)
		goto out;
	err = patch_text(path, patch_bias, out);
	if (err)
		goto out;

	/* Step 5, continued: copies of the functions inlined into callers,
	 * which the patch cannot reach. */
	err = rw__lp_check_inlined(path, funcs, desc->nfuncs, flags, notice,
				   sizeof(notice));
	if (err)
		goto out;

	/* Step 6: every check passed. The relocations, then the slots. */
	err = write_relocs(&L, fields, desc->version >= 3 ? desc->nrelocs : 0);
	if (err)
		goto out;
	for (size_t i = 0; i < desc->nrefs; i++)
		*desc->refs[i].slot = (void *)ref_addr[i];
	out->handle = handle;
	out->desc = desc;
	memcpy(out->file_id, file_id, sizeof(out->file_id));
	out->funcs = funcs;
	out->nfuncs = desc->nfuncs;
	out->ref_addrs = ref_addr;
	out->nref_addrs = nref_addr;
	/* A descriptor's name is the client's, maybe in another mount
	 * namespace: kept as given. */
	copy_path(out->path, sizeof(out->path),
		  given_fd < 0 && realpath(path, real) ? real : path);
	rw__log("%s: loaded '%s' at %lx, %zu functions, %zu references, "
		"%zu relocations",
		out->path, desc->name, (unsigned long)patch_bias, desc->nfuncs,
		desc->nrefs, desc->version >= 3 ? desc->nrelocs : 0);
	/* A success with something to say: the caller shows it. */
	if (notice[0])
		rw__lp_set_error("warning: %s: %s", path, notice);
	handle = NULL;
	funcs = NULL;
	ref_addr = NULL;
out:
	/* Only this call took the lock since the check above: it is free. */
	if (handle && !names_acquire(path)) {
		close_object(handle, patch_bias);
		rw__lock_release(&names_lock);
	}
	for (size_t i = 0; i < L.ntargets; i++)
		target_free(&L.targets[i]);
	free(L.targets);
	free(ref_addr);
	free(fields);
	rw__lp_funcs_free(funcs, nfuncs);
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
	rw__lp_funcs_free(o->funcs, o->nfuncs);
	o->funcs = NULL;
	o->nfuncs = 0;
	free(o->ref_addrs);
	o->ref_addrs = NULL;
	/* rw_patch_unload refuses first when this thread holds the lock
	 * (rw__lp_loader_held): a failure here cannot happen; the object
	 * then stays mapped. */
	if (names_acquire(o->path))
		return;
	if (dlinfo(o->handle, RTLD_DI_LINKMAP, &lm) || !lm)
		dlclose(o->handle); /* cannot happen; keep the names used */
	else
		close_object(o->handle, lm->l_addr);
	rw__lock_release(&names_lock);
	o->handle = NULL;
	o->desc = NULL;
}
