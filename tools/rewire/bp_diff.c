/* SPDX-License-Identifier: MIT */
/*
 * bp_diff.c - the differ of `rewire build-patch` (bp.h): which functions of
 * a translation unit changed between before.o and after.o, which of them
 * the patch carries, where every symbol their code uses lives, and what a
 * live patch cannot do safely.
 *
 * The method is kpatch's create-diff-object, for user space:
 *
 *  1. Both objects are read with libelf. Every relocation against a
 *     section symbol (or a .L label) is turned into one against the named
 *     symbol defined at that place (+offset), so that two compilations
 *     compare by name, not by section layout. What has no name (string
 *     literals, constants of .rodata.cst*, jump tables) stays anonymous and
 *     is compared by content.
 *  2. Symbols are correlated by name. Function-scope statics ("count.1")
 *     are numbered by GCC from the last one declared, so they correlate
 *     by the function declaring them (DWARF), then by the functions using
 *     them; a local function whose number changed ("f.constprop.1") by
 *     its name without the number when only one matches.
 *  3. A function changed when its bytes or its normalised relocations
 *     differ. A reference to another function compares by name only:
 *     calls go through the entry, which the patch redirects. A function
 *     no hunk touches whose bytes differ only in line numbers that moved
 *     (assert's __LINE__) is left out, as kpatch leaves it out.
 *  4. What a change drags in, until nothing more changes: a .cold piece
 *     and its parent go together; a changed clone (.constprop/.isra/.part)
 *     brings every function that uses it (its calling convention is the
 *     compiler's private business); a read-only object whose content
 *     changed is copied into the patch and brings every function that
 *     reads it; a changed function inlined into callers brings the callers
 *     (DWARF of both objects); a static function whose signature changed
 *     brings every function that uses it.
 *  5. Refusals: changed initialised writable data or data layout;
 *     signatures of changed global functions; thread-local data used by
 *     included code; virtual tables; struct, union and class layouts. The
 *     rule for layouts is the simple one: every named type in both
 *     objects' DWARF is compared (size, members' names, offsets and type
 *     names), and any difference is refused. The DWARF of a file holds
 *     the types the file uses, so a type that changed and that the file
 *     uses anywhere is refused, whether or not the patched code touches
 *     it.
 *  6. DWARF of after.o with the diff's hunks tells "edited" from "changed
 *     because something inlined into it changed", and finds functions
 *     that exist only as inlined copies.
 *
 * Relocations are RELA, of x86-64 or aarch64 objects (both objects of
 * one machine). On x86-64 a PC-relative relocation's addend is the
 * target minus the end of the instruction's operand; when the operand is
 * followed by an immediate (addl $1, x(%rip)) the target is a few bytes
 * further. Where the section holds several symbols the target is looked
 * up at addend + 4 .. addend + 8; with -fdata-sections every object has a
 * section of its own and the question does not arise. On aarch64 every
 * relocation's addend is the target's offset itself (ADRP and the :lo12:
 * of ADD/LDR, B/BL, LDR literal, data): no bias.
 */
#include "bp.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEPTH 16 /* anonymous data compared through data */
#define MAX_TDEPTH 8 /* type names through pointers, arrays, typedefs */
#define MAX_LISTED 4 /* names listed in one message */
#define MAX_SHOWN 16 /* bytes of a value shown in a message */

/* ---- growing strings and arrays ---- */

struct sb {
	char *s;
	size_t len, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt,
			      ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap : 64) * 2 + (size_t)n;
		char *s = realloc(b->s, cap);

		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

/* The string built, or NULL when memory ran out; @b is empty after. */
static char *sb_take(struct sb *b)
{
	char *s = b->oom ? NULL : b->s;

	if (b->oom)
		free(b->s);
	if (!s)
		s = b->oom ? NULL : strdup("");
	memset(b, 0, sizeof(*b));
	return s;
}

/* Make room for one more element of @size in *@v (count *@n, capacity
 * *@cap). Returns the new element, zeroed, or NULL. */
static void *grow(void *v, size_t *n, size_t *cap, size_t size)
{
	void **pv = v;

	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		void *p = realloc(*pv, c * size);

		if (!p)
			return NULL;
		*pv = p;
		*cap = c;
	}
	void *e = (char *)*pv + *n * size;

	memset(e, 0, size);
	(*n)++;
	return e;
}

/* ---- the objects ---- */

struct sym;

struct rel {
	uint64_t off; /* in its section */
	uint32_t type;
	bool biased;	 /* x86-64 PC-relative: the addend is the target
			    minus 4 (or up to 8: an immediate follows) */
	struct sym *sym; /* the target, named when it has a name */
	int64_t addend;	 /* relative to sym */
};

struct sec {
	const char *name;
	GElf_Shdr sh;
	const unsigned char *data; /* NULL: SHT_NOBITS */
	struct rel *rels;	   /* sorted by offset */
	size_t nrels;
	bool named;	   /* defines a function or data symbol */
	bool busy;	   /* being compared (cycles through anonymous data) */
	bool read_by_code; /* unnamed data a function refers to */
};

enum { K_OTHER, K_FUNC, K_DATA };

struct sym {
	const char *name;
	unsigned char type, bind;
	int kind;  /* K_FUNC, K_DATA (objects, TLS) or K_OTHER */
	bool anon; /* section symbol or .L label: compared by content */
	bool defined;
	struct sec *sec;
	uint64_t value, size;
	struct sym *twin; /* the same symbol in the other object */
	struct rel *rels; /* its relocations, within sec->rels */
	size_t nrels;
	int dsub;  /* its DWARF function, or -1 */
	int owner; /* function-scope static: the DWARF function declaring
		      it, or -1 */

	/* Results (after.o's symbols; before.o's for deleted ones). */
	bool changed;  /* own bytes or references differ */
	bool include;  /* function: in the patch */
	bool patch;    /* data: the patch carries its own copy */
	bool refused;  /* a refusal names it already */
	bool sig_diff; /* function: its signature changed */
	bool listed;   /* in out->syms */
	char *why;
};

struct dsub;
struct dtype;

struct obj {
	const char *path;
	const char *what; /* "before.o" or "after.o" */
	uint16_t machine; /* EM_X86_64 or EM_AARCH64 */
	int fd;
	Elf *elf;
	struct sec *secs;
	size_t nsecs;
	struct sym *syms;
	size_t nsyms;
	/* DWARF */
	Dwfl *dwfl;
	struct dsub *subs;
	size_t nsubs, csubs;
	struct dtype *types;
	size_t ntypes, ctypes;
};

/* x86-64 only: the relocations whose addend is biased (struct rel). */
static bool is_pcrel(uint32_t type)
{
	switch (type) {
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
	case R_X86_64_PC64:
	case R_X86_64_GOTPCREL64:
	case R_X86_64_PC16:
	case R_X86_64_PC8:
		return true;
	default:
		return false;
	}
}

/* Sections whose content is no part of any function or object. */
static bool ignored_section(const char *name)
{
	static const char *const skip[] = {
		"__patchable_function_entries",
		".note.gnu.property",
		".note.GNU-stack",
		".comment",
		".eh_frame",
		".group",
	};

	if (!strncmp(name, ".debug_", 7) || !strncmp(name, ".rela", 5))
		return true;
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (!strcmp(name, skip[i]))
			return true;
	return false;
}

static int rel_cmp(const void *a, const void *b)
{
	const struct rel *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* The named symbol of @sec that covers @pos, or NULL. */
static struct sym *sym_at(struct obj *o, struct sec *sec, int64_t pos)
{
	struct sym *zero = NULL;

	if (pos < 0)
		return NULL;
	for (size_t i = 0; i < o->nsyms; i++) {
		struct sym *s = &o->syms[i];

		if (s->sec != sec || s->anon || s->kind == K_OTHER)
			continue;
		if ((uint64_t)pos >= s->value &&
		    (uint64_t)pos - s->value < s->size)
			return s;
		if (!s->size && s->value == (uint64_t)pos)
			zero = s;
	}
	return zero;
}

/* Step 1: a relocation against a section symbol or a label becomes one
 * against the symbol defined there. */
static void normalise(struct obj *o, struct rel *r)
{
	struct sym *t = r->sym;

	if (!t->anon || !t->sec || !t->sec->named)
		return;
	int64_t base = (int64_t)t->value + r->addend;
	int lo = r->biased ? 4 : 0, hi = r->biased ? 8 : 0;

	for (int bias = lo; bias <= hi; bias++) {
		struct sym *s = sym_at(o, t->sec, base + bias);

		if (s) {
			r->sym = s;
			r->addend = base - (int64_t)s->value;
			return;
		}
	}
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int load_rels(struct obj *o, size_t ri, GElf_Shdr *rsh, char *err,
		     size_t errlen)
{
	Elf_Scn *scn = elf_getscn(o->elf, ri);
	Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
	struct sec *sec;
	size_t n;

	if (rsh->sh_info >= o->nsecs || !rsh->sh_entsize)
		return fail(err, errlen, "%s: relocation section %zu is broken",
			    o->path, ri);
	sec = &o->secs[rsh->sh_info];
	if (ignored_section(sec->name) || sec->rels)
		return 0;
	if (!d)
		return fail(err, errlen,
			    "%s: cannot read relocations of %s: %s", o->path,
			    sec->name, elf_errmsg(-1));
	n = d->d_size / rsh->sh_entsize;
	sec->rels = calloc(n ? n : 1, sizeof(*sec->rels));
	if (!sec->rels)
		return fail(err, errlen, "out of memory");
	for (size_t i = 0; i < n; i++) {
		GElf_Rela ra;
		size_t si;

		if (!gelf_getrela(d, (int)i, &ra))
			return fail(err, errlen,
				    "%s: cannot read relocation %zu of %s",
				    o->path, i, sec->name);
		si = GELF_R_SYM(ra.r_info);
		if (si >= o->nsyms || !si)
			return fail(
				err, errlen,
				"%s: relocation %zu of %s names symbol %zu of %zu",
				o->path, i, sec->name, si, o->nsyms);
		if (ra.r_offset >= sec->sh.sh_size)
			return fail(err, errlen,
				    "%s: relocation %zu of %s lies outside it",
				    o->path, i, sec->name);
		sec->rels[i] =
			(struct rel){ .off = ra.r_offset,
				      .type = GELF_R_TYPE(ra.r_info),
				      .biased =
					      o->machine == EM_X86_64 &&
					      is_pcrel(GELF_R_TYPE(ra.r_info)),
				      .sym = &o->syms[si],
				      .addend = ra.r_addend };
	}
	sec->nrels = n;
	qsort(sec->rels, n, sizeof(*sec->rels), rel_cmp);
	return 0;
}

static void obj_close(struct obj *o);

static int obj_open(struct obj *o, const char *path, const char *what,
		    char *err, size_t errlen)
{
	GElf_Ehdr eh;
	size_t shstrndx, symndx = 0;
	Elf_Data *symd = NULL;
	GElf_Shdr symsh;

	memset(o, 0, sizeof(*o));
	o->path = path;
	o->what = what;
	o->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (o->fd < 0)
		return fail(err, errlen, "cannot open %s: %s", path,
			    strerror(errno));
	o->elf = elf_begin(o->fd, ELF_C_READ_MMAP, NULL);
	if (!o->elf || elf_kind(o->elf) != ELF_K_ELF ||
	    !gelf_getehdr(o->elf, &eh))
		return fail(err, errlen, "%s is not an ELF file", path);
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64))
		return fail(err, errlen,
			    "%s is not an x86-64 or aarch64 object (machine "
			    "%u, class %u)",
			    path, eh.e_machine, eh.e_ident[EI_CLASS]);
	o->machine = eh.e_machine;
	if (eh.e_type != ET_REL)
		return fail(err, errlen,
			    "%s is not a relocatable object (ELF type %u): "
			    "compile with -c",
			    path, eh.e_type);
	if (elf_getshdrnum(o->elf, &o->nsecs) ||
	    elf_getshdrstrndx(o->elf, &shstrndx))
		return fail(err, errlen,
			    "%s: cannot read its section headers: %s", path,
			    elf_errmsg(-1));
	o->secs = calloc(o->nsecs ? o->nsecs : 1, sizeof(*o->secs));
	if (!o->secs)
		return fail(err, errlen, "out of memory");
	for (size_t i = 1; i < o->nsecs; i++) {
		Elf_Scn *scn = elf_getscn(o->elf, i);
		struct sec *s = &o->secs[i];

		if (!scn || !gelf_getshdr(scn, &s->sh))
			return fail(err, errlen,
				    "%s: cannot read section %zu: %s", path, i,
				    elf_errmsg(-1));
		s->name = elf_strptr(o->elf, shstrndx, s->sh.sh_name);
		if (!s->name)
			s->name = "";
		if (s->sh.sh_type == SHT_SYMTAB) {
			symndx = i;
			symsh = s->sh;
		}
		if (s->sh.sh_type == SHT_NOBITS || ignored_section(s->name) ||
		    !(s->sh.sh_flags & SHF_ALLOC))
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);

		if (!d || d->d_size != s->sh.sh_size ||
		    (s->sh.sh_size && !d->d_buf))
			return fail(err, errlen,
				    "%s: cannot read section %s: %s", path,
				    s->name, elf_errmsg(-1));
		s->data = d->d_buf;
	}
	if (!symndx)
		return fail(err, errlen, "%s has no symbol table", path);
	symd = elf_getdata(elf_getscn(o->elf, symndx), NULL);
	if (!symd || !symsh.sh_entsize)
		return fail(err, errlen, "%s: cannot read its symbol table: %s",
			    path, elf_errmsg(-1));
	o->nsyms = symd->d_size / symsh.sh_entsize;
	o->syms = calloc(o->nsyms ? o->nsyms : 1, sizeof(*o->syms));
	if (!o->syms)
		return fail(err, errlen, "out of memory");
	for (size_t i = 1; i < o->nsyms; i++) {
		struct sym *s = &o->syms[i];
		GElf_Sym es;

		if (!gelf_getsym(symd, (int)i, &es))
			return fail(err, errlen, "%s: cannot read symbol %zu",
				    path, i);
		s->name = elf_strptr(o->elf, symsh.sh_link, es.st_name);
		if (!s->name)
			return fail(err, errlen,
				    "%s: symbol %zu has no name string", path,
				    i);
		s->type = GELF_ST_TYPE(es.st_info);
		s->bind = GELF_ST_BIND(es.st_info);
		s->value = es.st_value;
		s->size = es.st_size;
		s->dsub = -1;
		s->owner = -1;
		if (es.st_shndx != SHN_UNDEF && es.st_shndx < SHN_LORESERVE) {
			if (es.st_shndx >= o->nsecs)
				return fail(
					err, errlen,
					"%s: symbol %s is in section %u of %zu",
					path, s->name, es.st_shndx, o->nsecs);
			s->sec = &o->secs[es.st_shndx];
			s->defined = true;
			if (s->sec->sh.sh_type != SHT_NOBITS &&
			    (s->value > s->sec->sh.sh_size ||
			     s->size > s->sec->sh.sh_size - s->value))
				return fail(
					err, errlen,
					"%s: symbol %s lies outside its section",
					path, s->name);
		} else if (es.st_shndx != SHN_UNDEF) {
			s->defined = true; /* absolute or common */
		}
		if (s->type == STT_SECTION || s->type == STT_FILE ||
		    (s->bind == STB_LOCAL && !strncmp(s->name, ".L", 2)) ||
		    !*s->name)
			s->anon = true;
		if (s->type == STT_FUNC || s->type == STT_GNU_IFUNC)
			s->kind = K_FUNC;
		else if (s->type == STT_OBJECT || s->type == STT_TLS ||
			 s->type == STT_COMMON)
			s->kind = K_DATA;
		else if (s->type == STT_NOTYPE && !s->defined && !s->anon)
			s->kind = K_OTHER; /* undefined: a name */
		if (s->sec && !s->anon && s->kind != K_OTHER)
			s->sec->named = true;
	}
	for (size_t i = 1; i < o->nsecs; i++) {
		GElf_Shdr *sh = &o->secs[i].sh;

		if (sh->sh_type == SHT_REL)
			return fail(
				err, errlen,
				"%s: REL relocations (%s): x86-64 and aarch64 objects use RELA",
				path, o->secs[i].name);
		if (sh->sh_type == SHT_RELA && load_rels(o, i, sh, err, errlen))
			return -1;
	}
	for (size_t i = 1; i < o->nsecs; i++)
		for (size_t j = 0; j < o->secs[i].nrels; j++)
			normalise(o, &o->secs[i].rels[j]);
	/* Each symbol's relocations: those of its section within its bytes. */
	for (size_t i = 1; i < o->nsyms; i++) {
		struct sym *s = &o->syms[i];
		struct sec *sec = s->sec;
		size_t a = 0, b;

		if (!sec || s->anon || s->kind == K_OTHER)
			continue;
		while (a < sec->nrels && sec->rels[a].off < s->value)
			a++;
		b = a;
		while (b < sec->nrels && sec->rels[b].off < s->value + s->size)
			b++;
		s->rels = sec->rels + a;
		s->nrels = b - a;
	}
	return 0;
}

/* ---- step 2: correlation ---- */

/* @name without the digits after its dots ("count.#", "f.constprop.#"). */
static void unnumbered(const char *name, char *buf, size_t len)
{
	size_t j = 0;

	for (const char *p = name; *p && j + 2 < len; p++) {
		buf[j++] = *p;
		if (*p == '.' && p[1] >= '0' && p[1] <= '9') {
			buf[j++] = '#';
			while (p[1] >= '0' && p[1] <= '9')
				p++;
		}
	}
	buf[j] = 0;
}

static bool has_number(const char *name)
{
	for (const char *p = strchr(name, '.'); p; p = strchr(p + 1, '.'))
		if (p[1] >= '0' && p[1] <= '9')
			return true;
	return false;
}

static bool correlatable(const struct sym *s)
{
	return !s->anon && (s->kind != K_OTHER || !s->defined);
}

/* Does a function of @o whose name (unnumbered) is @fname use @s? */
static bool used_by(struct obj *o, const struct sym *s, const char *fname)
{
	char b[256];

	for (size_t i = 1; i < o->nsyms; i++) {
		struct sym *f = &o->syms[i];

		if (f->kind != K_FUNC || !f->defined)
			continue;
		unnumbered(f->name, b, sizeof(b));
		if (strcmp(b, fname))
			continue;
		for (size_t j = 0; j < f->nrels; j++)
			if (f->rels[j].sym == s)
				return true;
	}
	return false;
}

/* How many functions that use @n in after.o have a namesake (unnumbered)
 * that uses @o in before.o. */
static int shared_users(struct obj *before, struct sym *o, struct obj *after,
			struct sym *n)
{
	int score = 0;
	char b[256];

	for (size_t i = 1; i < after->nsyms; i++) {
		struct sym *f = &after->syms[i];
		bool uses = false;

		if (f->kind != K_FUNC || !f->defined)
			continue;
		for (size_t j = 0; j < f->nrels && !uses; j++)
			uses = f->rels[j].sym == n;
		if (!uses)
			continue;
		unnumbered(f->name, b, sizeof(b));
		if (used_by(before, o, b))
			score++;
	}
	return score;
}

/* A function-scope static ("count.3"): GCC numbers them in the order it
 * meets them, so a static added anywhere renumbers the others. They
 * correlate by the functions that use them (kpatch does the same). */
static bool numbered_static(const struct sym *s)
{
	return s->kind == K_DATA && s->defined && !s->anon &&
	       s->bind == STB_LOCAL && has_number(s->name);
}

static bool has_users(struct obj *o, const struct sym *s)
{
	for (size_t i = 1; i < o->nsyms; i++) {
		struct sym *f = &o->syms[i];

		for (size_t j = 0; f->kind == K_FUNC && j < f->nrels; j++)
			if (f->rels[j].sym == s)
				return true;
	}
	return false;
}

static void twins(struct sym *o, struct sym *n)
{
	n->twin = o;
	o->twin = n;
}

static const char *sub_key(const struct obj *o, int i);

static void correlate(struct obj *before, struct obj *after)
{
	char bn[256], an[256];
	bool more = true;

	for (size_t i = 1; i < after->nsyms; i++) {
		struct sym *n = &after->syms[i];

		if (!correlatable(n) || numbered_static(n))
			continue;
		for (size_t j = 1; j < before->nsyms; j++) {
			struct sym *o = &before->syms[j];

			if (o->twin || !correlatable(o) || numbered_static(o) ||
			    o->kind != n->kind || o->defined != n->defined ||
			    strcmp(o->name, n->name))
				continue;
			twins(o, n);
			break;
		}
	}
	/* Function-scope statics: by the function declaring them (DWARF),
	 * then the pair sharing the most users first. */
	for (size_t i = 1; i < after->nsyms; i++) {
		struct sym *n = &after->syms[i];

		if (n->twin || !numbered_static(n) || n->owner < 0)
			continue;
		unnumbered(n->name, an, sizeof(an));
		for (size_t j = 1; j < before->nsyms; j++) {
			struct sym *o = &before->syms[j];

			if (o->twin || !numbered_static(o) || o->owner < 0 ||
			    strcmp(sub_key(before, o->owner),
				   sub_key(after, n->owner)))
				continue;
			unnumbered(o->name, bn, sizeof(bn));
			if (!strcmp(an, bn)) {
				twins(o, n);
				break;
			}
		}
	}
	while (more) {
		struct sym *bo = NULL, *bn_ = NULL;
		int best = 0;

		more = false;
		for (size_t i = 1; i < after->nsyms; i++) {
			struct sym *n = &after->syms[i];

			if (n->twin || !numbered_static(n))
				continue;
			unnumbered(n->name, an, sizeof(an));
			for (size_t j = 1; j < before->nsyms; j++) {
				struct sym *o = &before->syms[j];
				int score;

				if (o->twin || !numbered_static(o))
					continue;
				unnumbered(o->name, bn, sizeof(bn));
				if (strcmp(an, bn))
					continue;
				score = shared_users(before, o, after, n);
				if (score > best) {
					best = score;
					bo = o;
					bn_ = n;
				}
			}
		}
		if (bo) {
			twins(bo, bn_);
			more = true;
		}
	}
	/* Statics no function uses, on both sides: by name. */
	for (size_t i = 1; i < after->nsyms; i++) {
		struct sym *n = &after->syms[i];

		if (n->twin || !numbered_static(n) || has_users(after, n))
			continue;
		for (size_t j = 1; j < before->nsyms; j++) {
			struct sym *o = &before->syms[j];

			if (!o->twin && numbered_static(o) &&
			    !strcmp(o->name, n->name) &&
			    !has_users(before, o)) {
				twins(o, n);
				break;
			}
		}
	}
	/* Local functions whose number changed ("f.constprop.1"): the only
	 * candidate. */
	for (size_t i = 1; i < after->nsyms; i++) {
		struct sym *n = &after->syms[i], *cand = NULL;
		int cands = 0;

		if (n->twin || !n->defined || n->anon || n->kind != K_FUNC ||
		    n->bind != STB_LOCAL || !has_number(n->name))
			continue;
		unnumbered(n->name, an, sizeof(an));
		for (size_t j = 1; j < before->nsyms; j++) {
			struct sym *o = &before->syms[j];

			if (o->twin || !o->defined || o->anon ||
			    o->kind != K_FUNC || o->bind != STB_LOCAL)
				continue;
			unnumbered(o->name, bn, sizeof(bn));
			if (!strcmp(an, bn)) {
				cand = o;
				cands++;
			}
		}
		if (cands == 1)
			twins(cand, n);
	}
}

/* ---- step 3: comparison ---- */

static bool same_content(struct sec *os, uint64_t opos, uint64_t olen,
			 struct sec *ns, uint64_t npos, uint64_t nlen,
			 int depth);

/* The string of a mergeable string section that a reference at @pos
 * (PC-relative: up to 4 bytes before the string) means. */
static uint64_t string_start(const struct sec *s, int64_t pos, bool pcrel)
{
	int64_t p = pos + (pcrel ? 4 : 0);

	for (int i = 0; pcrel && i < 4; i++, p++)
		if (p <= 0 || (p < (int64_t)s->sh.sh_size && !s->data[p - 1]))
			break;
	return p < 0 ? 0 : (uint64_t)p;
}

static bool same_anon(const struct rel *o, const struct rel *n, int depth)
{
	struct sec *os = o->sym->sec, *ns = n->sym->sec;
	int64_t opos = (int64_t)o->sym->value + o->addend;
	int64_t npos = (int64_t)n->sym->value + n->addend;

	if (!os || !ns)
		return false; /* an unnamed absolute symbol: never seen */
	if (os->sh.sh_flags != ns->sh.sh_flags ||
	    os->sh.sh_type != ns->sh.sh_type)
		return false;
	if (!os->data || !ns->data)
		return opos == npos && os->sh.sh_size == ns->sh.sh_size;
	if ((os->sh.sh_flags & SHF_MERGE) && (os->sh.sh_flags & SHF_STRINGS)) {
		uint64_t a = string_start(os, opos, o->biased);
		uint64_t b = string_start(ns, npos, n->biased);

		if (a >= os->sh.sh_size || b >= ns->sh.sh_size ||
		    (int64_t)a - opos != (int64_t)b - npos)
			return false;
		size_t la =
			strnlen((const char *)os->data + a, os->sh.sh_size - a);
		size_t lb =
			strnlen((const char *)ns->data + b, ns->sh.sh_size - b);

		return la == lb && !memcmp(os->data + a, ns->data + b, la);
	}
	if (os->sh.sh_flags & SHF_MERGE) {
		uint64_t e = os->sh.sh_entsize ? os->sh.sh_entsize : 1;
		int64_t bias = o->biased ? 4 : 0;
		int64_t a = opos + bias, b = npos + bias;

		if (a < 0 || b < 0 || e != ns->sh.sh_entsize ||
		    a % (int64_t)e != b % (int64_t)e)
			return false;
		a -= a % (int64_t)e;
		b -= b % (int64_t)e;
		if ((uint64_t)a + e > os->sh.sh_size ||
		    (uint64_t)b + e > ns->sh.sh_size)
			return false;
		return !memcmp(os->data + a, ns->data + b, e);
	}
	/* Jump tables and other unnamed data: the whole section, its own
	 * references compared the same way. */
	return opos == npos && same_content(os, 0, os->sh.sh_size, ns, 0,
					    ns->sh.sh_size, depth + 1);
}

static bool same_rel(const struct rel *o, uint64_t obase, const struct rel *n,
		     uint64_t nbase, int depth)
{
	if (o->off - obase != n->off - nbase || o->type != n->type)
		return false;
	if (o->sym->anon != n->sym->anon)
		return false;
	if (o->sym->anon)
		return same_anon(o, n, depth);
	if (o->addend != n->addend)
		return false;
	if (n->sym->twin)
		return n->sym->twin == o->sym;
	/* Not correlated: equal only if neither is defined here. */
	return !o->sym->defined && !n->sym->defined &&
	       !strcmp(o->sym->name, n->sym->name);
}

static size_t rels_in(const struct sec *s, uint64_t pos, uint64_t len,
		      struct rel **first)
{
	size_t a = 0, b;

	while (a < s->nrels && s->rels[a].off < pos)
		a++;
	b = a;
	while (b < s->nrels && s->rels[b].off < pos + len)
		b++;
	*first = s->rels + a;
	return b - a;
}

static bool same_content(struct sec *os, uint64_t opos, uint64_t olen,
			 struct sec *ns, uint64_t npos, uint64_t nlen,
			 int depth)
{
	struct rel * or, *nr;
	size_t on, nn;
	bool same = true;

	if (olen != nlen || depth > MAX_DEPTH)
		return false;
	if (!os->data != !ns->data)
		return false;
	if (os->data && memcmp(os->data + opos, ns->data + npos, olen))
		return false;
	if (os->busy || ns->busy)
		return true; /* a cycle: compared where it started */
	on = rels_in(os, opos, olen, & or);
	nn = rels_in(ns, npos, nlen, &nr);
	if (on != nn)
		return false;
	os->busy = ns->busy = true;
	for (size_t i = 0; i < on && same; i++)
		same = same_rel(& or [i], opos, &nr[i], npos, depth);
	os->busy = ns->busy = false;
	return same;
}

static bool same_sym(struct sym *o, struct sym *n)
{
	if (o->size != n->size || !o->sec || !n->sec)
		return o->size == n->size && !o->sec == !n->sec;
	return same_content(o->sec, o->value, o->size, n->sec, n->value,
			    n->size, 0);
}

/* ---- names ---- */

static const char *const clone_tags[] = { ".constprop.", ".isra.", ".part." };

/* The parent of a .cold piece ("f.cold", "f.cold.3"), or false. */
static bool cold_parent(const char *name, char *buf, size_t len)
{
	const char *c = strstr(name, ".cold");

	if (!c || (c[5] && c[5] != '.'))
		return false;
	snprintf(buf, len, "%.*s", (int)(c - name), name);
	return true;
}

/* The function a clone was made from ("f.isra.0" -> "f"), or false. */
static bool clone_parent(const char *name, char *buf, size_t len)
{
	const char *first = NULL;

	for (size_t i = 0; i < sizeof(clone_tags) / sizeof(clone_tags[0]);
	     i++) {
		const char *c = strstr(name, clone_tags[i]);

		if (c && (!first || c < first))
			first = c;
	}
	if (!first)
		return false;
	snprintf(buf, len, "%.*s", (int)(first - name), name);
	return true;
}

static bool writable(const struct sym *s)
{
	return s->sec && (s->sec->sh.sh_flags & SHF_WRITE) &&
	       strncmp(s->sec->name, ".data.rel.ro", 12);
}

static bool is_tls(const struct sym *s)
{
	return s->type == STT_TLS ||
	       (s->sec && (s->sec->sh.sh_flags & SHF_TLS));
}

/* ---- DWARF ---- */

struct range {
	Dwarf_Addr lo, hi;
};

/* A function as DWARF knows it (by linkage name, else name). */
struct dsub {
	char *key;
	char *sig; /* "int (int, char *)" */
	bool own;  /* defined in the translation unit's own source file */
	bool concrete;
	unsigned line, end;
	struct range *ranges; /* its code and its inlined copies */
	size_t nranges, cranges;
	char **holders; /* functions (symbols) holding an inlined copy */
	size_t nholders, cholders;
	bool edited;
	bool inline_only_listed;
};

static const char *sub_key(const struct obj *o, int i)
{
	return o->subs[i].key;
}

struct dmember {
	char *name, *type;
	uint64_t off;
};

struct dtype {
	char *key; /* "struct item", "class ns::C" */
	uint64_t size;
	struct dmember *m;
	size_t nm, cm;
};

struct row {
	Dwarf_Addr addr;
	unsigned line;
};

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static const char *die_key(Dwarf_Die *d)
{
	Dwarf_Attribute a;
	const char *s;

	if ((dwarf_attr_integrate(d, DW_AT_linkage_name, &a) ||
	     dwarf_attr_integrate(d, DW_AT_MIPS_linkage_name, &a)) &&
	    (s = dwarf_formstring(&a)))
		return s;
	return dwarf_diename(d) ? dwarf_diename(d) : NULL;
}

static void type_name(struct sb *b, Dwarf_Die *t, int depth);

static void type_of(struct sb *b, Dwarf_Die *d, int depth)
{
	Dwarf_Attribute a;
	Dwarf_Die t;

	if (dwarf_attr_integrate(d, DW_AT_type, &a) &&
	    dwarf_formref_die(&a, &t))
		type_name(b, &t, depth + 1);
	else
		sb_printf(b, "void");
}

static void type_name(struct sb *b, Dwarf_Die *t, int depth)
{
	const char *name = dwarf_diename(t);
	Dwarf_Word size;

	if (depth > MAX_TDEPTH) {
		sb_printf(b, "...");
		return;
	}
	switch (dwarf_tag(t)) {
	case DW_TAG_pointer_type:
		type_of(b, t, depth);
		sb_printf(b, " *");
		return;
	case DW_TAG_reference_type:
	case DW_TAG_rvalue_reference_type:
		type_of(b, t, depth);
		sb_printf(b,
			  dwarf_tag(t) == DW_TAG_reference_type ? " &" : " &&");
		return;
	case DW_TAG_const_type:
		sb_printf(b, "const ");
		type_of(b, t, depth);
		return;
	case DW_TAG_volatile_type:
		sb_printf(b, "volatile ");
		type_of(b, t, depth);
		return;
	case DW_TAG_restrict_type:
	case DW_TAG_atomic_type:
		type_of(b, t, depth);
		return;
	case DW_TAG_array_type: {
		Dwarf_Die c;

		type_of(b, t, depth);
		if (dwarf_child(t, &c) == 0) {
			do {
				Dwarf_Attribute a;
				Dwarf_Word n;

				if (dwarf_tag(&c) != DW_TAG_subrange_type)
					continue;
				if (dwarf_attr(&c, DW_AT_count, &a) &&
				    !dwarf_formudata(&a, &n))
					sb_printf(b, "[%" PRIu64 "]",
						  (uint64_t)n);
				else if (dwarf_attr(&c, DW_AT_upper_bound,
						    &a) &&
					 !dwarf_formudata(&a, &n))
					sb_printf(b, "[%" PRIu64 "]",
						  (uint64_t)n + 1);
				else
					sb_printf(b, "[]");
			} while (dwarf_siblingof(&c, &c) == 0);
		}
		return;
	}
	case DW_TAG_subroutine_type:
		sb_printf(b, "function");
		return;
	case DW_TAG_structure_type:
		sb_printf(b, "struct %s", name ? name : "<anonymous>");
		return;
	case DW_TAG_union_type:
		sb_printf(b, "union %s", name ? name : "<anonymous>");
		return;
	case DW_TAG_class_type:
		sb_printf(b, "class %s", name ? name : "<anonymous>");
		return;
	case DW_TAG_enumeration_type:
		sb_printf(b, "enum %s", name ? name : "<anonymous>");
		return;
	default:
		if (name)
			sb_printf(b, "%s", name);
		else if ((size = (Dwarf_Word)dwarf_bytesize(t)) !=
			 (Dwarf_Word)-1)
			sb_printf(b, "<%" PRIu64 " bytes>", (uint64_t)size);
		else
			sb_printf(b, "?");
	}
}

/* "ret (p1, p2)" of a function DIE (its abstract origin's). */
static char *signature(Dwarf_Die *d)
{
	Dwarf_Die cur = *d, next, c;
	Dwarf_Attribute a;
	struct sb b = { 0 };
	bool first = true, any = false;

	for (int i = 0; i < MAX_TDEPTH; i++) {
		if (!dwarf_attr(&cur, DW_AT_abstract_origin, &a) ||
		    !dwarf_formref_die(&a, &next))
			break;
		cur = next;
	}
	/* A C++ definition without parameters of its own: the declaration
	 * in the class has them. */
	if (dwarf_child(&cur, &c) == 0) {
		do
			any |= dwarf_tag(&c) == DW_TAG_formal_parameter;
		while (dwarf_siblingof(&c, &c) == 0);
	}
	if (!any && dwarf_attr(&cur, DW_AT_specification, &a) &&
	    dwarf_formref_die(&a, &next))
		cur = next;
	type_of(&b, &cur, 0);
	sb_printf(&b, " (");
	if (dwarf_child(&cur, &c) == 0) {
		do {
			int tag = dwarf_tag(&c);

			if (tag != DW_TAG_formal_parameter &&
			    tag != DW_TAG_unspecified_parameters)
				continue;
			sb_printf(&b, "%s", first ? "" : ", ");
			first = false;
			if (tag == DW_TAG_unspecified_parameters)
				sb_printf(&b, "...");
			else
				type_of(&b, &c, 0);
		} while (dwarf_siblingof(&c, &c) == 0);
	}
	sb_printf(&b, ")");
	return sb_take(&b);
}

struct dwalk {
	struct obj *o;
	const char *cu_name; /* the CU's source file, as named */
	const char *cu_base;
	bool oom;
};

static bool own_file(struct dwalk *w, const char *f)
{
	const char *base;

	if (!f)
		return false;
	if (!strcmp(f, w->cu_name))
		return true;
	base = strrchr(f, '/');
	base = base ? base + 1 : f;
	return !strcmp(base, w->cu_base);
}

static struct dsub *dsub_get(struct obj *o, const char *key, bool *oom)
{
	struct dsub *d;

	for (size_t i = 0; i < o->nsubs; i++)
		if (!strcmp(o->subs[i].key, key))
			return &o->subs[i];
	d = grow(&o->subs, &o->nsubs, &o->csubs, sizeof(*d));
	if (!d || !(d->key = strdup(key))) {
		if (d)
			o->nsubs--;
		*oom = true;
		return NULL;
	}
	return d;
}

static void add_ranges(struct dsub *s, Dwarf_Die *d, bool *oom)
{
	Dwarf_Addr base, lo, hi;
	ptrdiff_t off = 0;

	while ((off = dwarf_ranges(d, off, &base, &lo, &hi)) > 0) {
		struct range *r =
			grow(&s->ranges, &s->nranges, &s->cranges, sizeof(*r));

		if (!r) {
			*oom = true;
			return;
		}
		r->lo = lo;
		r->hi = hi;
	}
}

static void add_holder(struct dsub *s, const char *fn, bool *oom)
{
	char **h;

	for (size_t i = 0; i < s->nholders; i++)
		if (!strcmp(s->holders[i], fn))
			return;
	h = grow(&s->holders, &s->nholders, &s->cholders, sizeof(*h));
	if (!h || !(*h = strdup(fn))) {
		if (h)
			s->nholders--;
		*oom = true;
	}
}

/* The symbol whose code is at DWARF address @addr. */
static struct sym *sym_of_addr(struct obj *o, Dwfl_Module *mod, Dwarf_Addr bias,
			       Dwarf_Addr addr)
{
	Dwarf_Addr a = addr + bias, sbias;
	Elf_Scn *scn = dwfl_module_address_section(mod, &a, &sbias);
	size_t ndx;

	if (!scn)
		return NULL;
	ndx = elf_ndxscn(scn);
	if (ndx >= o->nsecs)
		return NULL;
	for (size_t i = 1; i < o->nsyms; i++) {
		struct sym *s = &o->syms[i];

		if (s->sec == &o->secs[ndx] && s->kind == K_FUNC &&
		    a >= s->value && a - s->value < (s->size ? s->size : 1))
			return s;
	}
	return NULL;
}

/* The function symbol of a concrete subprogram: where its entry is, or
 * for code in several ranges (hot and .cold), the range that is not a
 * .cold piece. */
static struct sym *entry_sym(struct obj *o, Dwarf_Die *d, Dwfl_Module *mod,
			     Dwarf_Addr bias)
{
	Dwarf_Addr base, lo, hi;
	ptrdiff_t off = 0;
	struct sym *any = NULL;
	char p[512];

	if (dwarf_entrypc(d, &lo) == 0 || dwarf_lowpc(d, &lo) == 0)
		return sym_of_addr(o, mod, bias, lo);
	while ((off = dwarf_ranges(d, off, &base, &lo, &hi)) > 0) {
		struct sym *s = sym_of_addr(o, mod, bias, lo);

		if (s && !cold_parent(s->name, p, sizeof(p)))
			return s;
		if (!any)
			any = s;
	}
	return any;
}

/* Every inlined copy in @d (a concrete function @fn). */
static void walk_inlined(struct dwalk *w, Dwarf_Die *d, const char *fn,
			 int depth)
{
	Dwarf_Die c;

	if (depth > 64 || dwarf_child(d, &c) != 0)
		return;
	do {
		if (dwarf_tag(&c) == DW_TAG_inlined_subroutine) {
			Dwarf_Attribute a;
			Dwarf_Die org;
			const char *key;
			struct dsub *s;

			if (dwarf_attr(&c, DW_AT_abstract_origin, &a) &&
			    dwarf_formref_die(&a, &org) &&
			    (key = die_key(&org)) &&
			    (s = dsub_get(w->o, key, &w->oom))) {
				/* A recursive function inlined into itself
				 * is no other caller. */
				if (fn && strcmp(fn, key))
					add_holder(s, fn, &w->oom);
				add_ranges(s, &c, &w->oom);
			}
		}
		walk_inlined(w, &c, fn, depth + 1);
	} while (dwarf_siblingof(&c, &c) == 0);
}

/* The function-scope statics declared in function @sub (its DIE @d):
 * their symbols' owner, which does not depend on where GCC inlined the
 * function nor on the numbers it gave them. */
static void walk_statics(struct dwalk *w, Dwarf_Die *d, int sub,
			 Dwfl_Module *mod, Dwarf_Addr bias, int depth)
{
	Dwarf_Die c;

	if (depth > 32 || dwarf_child(d, &c) != 0)
		return;
	do {
		Dwarf_Attribute a;
		Dwarf_Op *expr;
		size_t len;

		if (dwarf_tag(&c) == DW_TAG_lexical_block) {
			walk_statics(w, &c, sub, mod, bias, depth + 1);
			continue;
		}
		if (dwarf_tag(&c) != DW_TAG_variable ||
		    !dwarf_attr(&c, DW_AT_location, &a) ||
		    dwarf_getlocation(&a, &expr, &len) || len < 1 ||
		    expr[0].atom != DW_OP_addr)
			continue;
		Dwarf_Addr addr = expr[0].number + bias, sbias;
		Elf_Scn *scn = dwfl_module_address_section(mod, &addr, &sbias);
		size_t ndx = scn ? elf_ndxscn(scn) : 0;

		if (!ndx || ndx >= w->o->nsecs)
			continue;
		for (size_t i = 1; i < w->o->nsyms; i++) {
			struct sym *s = &w->o->syms[i];

			if (s->sec == &w->o->secs[ndx] && s->kind == K_DATA &&
			    !s->anon && s->value == addr && s->owner < 0)
				s->owner = sub;
		}
	} while (dwarf_siblingof(&c, &c) == 0);
}

static void add_type(struct dwalk *w, Dwarf_Die *t, const char *key)
{
	struct obj *o = w->o;
	struct dtype *ty;
	Dwarf_Die c;

	if (dwarf_hasattr(t, DW_AT_declaration))
		return;
	for (size_t i = 0; i < o->ntypes; i++)
		if (!strcmp(o->types[i].key, key))
			return;
	ty = grow(&o->types, &o->ntypes, &o->ctypes, sizeof(*ty));
	if (!ty || !(ty->key = strdup(key))) {
		if (ty)
			o->ntypes--;
		w->oom = true;
		return;
	}
	ty->size = dwarf_bytesize(t) < 0 ? 0 : (uint64_t)dwarf_bytesize(t);
	if (dwarf_child(t, &c) != 0)
		return;
	do {
		struct dmember *m;
		Dwarf_Attribute a;
		Dwarf_Word off = 0;
		struct sb b = { 0 };

		if (dwarf_tag(&c) != DW_TAG_member &&
		    dwarf_tag(&c) != DW_TAG_inheritance)
			continue;
		if (dwarf_hasattr(&c, DW_AT_external))
			continue; /* a static member: not in the layout */
		if (dwarf_attr(&c, DW_AT_data_member_location, &a))
			dwarf_formudata(&a, &off);
		off *= 8;
		if (dwarf_attr(&c, DW_AT_data_bit_offset, &a)) {
			Dwarf_Word bits = 0;

			dwarf_formudata(&a, &bits);
			off = bits;
		}
		m = grow(&ty->m, &ty->nm, &ty->cm, sizeof(*m));
		if (!m) {
			w->oom = true;
			return;
		}
		type_of(&b, &c, 0);
		m->type = sb_take(&b);
		m->name = strdup(dwarf_diename(&c) ? dwarf_diename(&c)
				 : dwarf_tag(&c) == DW_TAG_inheritance
					 ? "<base class>"
					 : "<anonymous>");
		m->off = off;
		if (!m->type || !m->name)
			w->oom = true;
	} while (dwarf_siblingof(&c, &c) == 0);
}

static void walk_die(struct dwalk *w, Dwarf_Die *parent, const char *scope,
		     Dwfl_Module *mod, Dwarf_Addr bias, int depth)
{
	Dwarf_Die c;

	if (depth > 32 || dwarf_child(parent, &c) != 0)
		return;
	do {
		int tag = dwarf_tag(&c);
		const char *name = dwarf_diename(&c);
		char key[512];

		switch (tag) {
		case DW_TAG_subprogram: {
			const char *k = die_key(&c);
			struct dsub *s;
			Dwarf_Addr lo;
			int line;

			if (!k || !(s = dsub_get(w->o, k, &w->oom)))
				break;
			if (!dwarf_hasattr(&c, DW_AT_declaration) &&
			    own_file(w, dwarf_decl_file(&c)) &&
			    !dwarf_decl_line(&c, &line) && line > 0) {
				s->own = true;
				s->line = (unsigned)line;
			}
			if (!s->sig && !dwarf_hasattr(&c, DW_AT_declaration))
				s->sig = signature(&c);
			if (dwarf_entrypc(&c, &lo) == 0 ||
			    dwarf_lowpc(&c, &lo) == 0 ||
			    dwarf_hasattr(&c, DW_AT_ranges)) {
				struct sym *fs = entry_sym(w->o, &c, mod, bias);

				s->concrete = true;
				if (fs && fs->dsub < 0)
					fs->dsub = (int)(s - w->o->subs);
				add_ranges(s, &c, &w->oom);
				walk_inlined(w, &c, fs ? fs->name : NULL, 0);
			}
			walk_statics(w, &c, (int)(s - w->o->subs), mod, bias,
				     0);
			break;
		}
		case DW_TAG_namespace:
			snprintf(key, sizeof(key), "%s%s::", scope,
				 name ? name : "(anonymous namespace)");
			walk_die(w, &c, key, mod, bias, depth + 1);
			break;
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
		case DW_TAG_class_type:
			if (!name)
				break;
			snprintf(key, sizeof(key), "%s %s%s",
				 tag == DW_TAG_structure_type ? "struct"
				 : tag == DW_TAG_union_type   ? "union"
							      : "class",
				 scope, name);
			add_type(w, &c, key);
			snprintf(key, sizeof(key), "%s%s::", scope, name);
			walk_die(w, &c, key, mod, bias, depth + 1);
			break;
		case DW_TAG_typedef: {
			Dwarf_Attribute a;
			Dwarf_Die t;

			if (name && dwarf_attr(&c, DW_AT_type, &a) &&
			    dwarf_formref_die(&a, &t) && !dwarf_diename(&t) &&
			    (dwarf_tag(&t) == DW_TAG_structure_type ||
			     dwarf_tag(&t) == DW_TAG_union_type)) {
				snprintf(key, sizeof(key), "%s %s%s",
					 dwarf_tag(&t) == DW_TAG_union_type
						 ? "union"
						 : "struct",
					 scope, name);
				add_type(w, &t, key);
			}
			break;
		}
		default:
			break;
		}
	} while (dwarf_siblingof(&c, &c) == 0);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int sub_line_cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

/* The last line of each function of the source file: the greatest line
 * of its code (or of its inlined copies) before the next function. */
static void sub_ends(struct obj *o, struct row *rows, size_t nrows)
{
	unsigned *lines = calloc(o->nsubs + 1, sizeof(*lines));
	size_t nl = 0;

	if (!lines)
		return;
	for (size_t i = 0; i < o->nsubs; i++)
		if (o->subs[i].own)
			lines[nl++] = o->subs[i].line;
	qsort(lines, nl, sizeof(*lines), sub_line_cmp);
	for (size_t i = 0; i < o->nsubs; i++) {
		struct dsub *s = &o->subs[i];
		unsigned next = ~0u;

		if (!s->own)
			continue;
		for (size_t j = 0; j < nl; j++)
			if (lines[j] > s->line) {
				next = lines[j];
				break;
			}
		s->end = s->line;
		for (size_t r = 0; r < s->nranges; r++) {
			size_t lo = 0, hi = nrows;

			while (lo < hi) {
				size_t mid = (lo + hi) / 2;

				if (rows[mid].addr < s->ranges[r].lo)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (; lo < nrows && rows[lo].addr < s->ranges[r].hi;
			     lo++)
				if (rows[lo].line >= s->line &&
				    rows[lo].line < next &&
				    rows[lo].line > s->end)
					s->end = rows[lo].line;
		}
	}
	free(lines);
}

/* An object's DWARF is in the object: look nowhere else (no debuginfod,
 * no /usr/lib/debug). */
static int no_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			Dwarf_Addr base, const char *file_name,
			const char *debuglink_file, GElf_Word debuglink_crc,
			char **debuginfo_file_name)
{
	(void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
	(void)debuglink_file, (void)debuglink_crc, (void)debuginfo_file_name;
	return -1;
}

/* Read @o's DWARF (relocated by libdwfl: an object's debug sections refer
 * to each other through relocations). No DWARF is not an error: the
 * checks that need it are skipped, with a note. */
static int read_dwarf(struct obj *o, bool *have)
{
	static const Dwfl_Callbacks cb = {
		.find_debuginfo = no_debuginfo,
		.section_address = dwfl_offline_section_address,
	};
	Dwfl_Module *mod;
	Dwarf *dw;
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = NULL;
	struct row *rows = NULL;
	size_t nrows = 0, crows = 0;
	bool oom = false;

	*have = false;
	o->dwfl = dwfl_begin(&cb);
	if (!o->dwfl)
		return 0;
	mod = dwfl_report_offline(o->dwfl, o->what, o->path, -1);
	dwfl_report_end(o->dwfl, NULL, NULL);
	if (!mod || !(dw = dwfl_module_getdwarf(mod, &bias)))
		return 0;
	*have = true;
	while ((cu = dwfl_module_nextcu(mod, cu, &bias))) {
		struct dwalk w = { .o = o };
		Dwarf_Lines *lines;
		size_t nl;

		w.cu_name = dwarf_diename(cu) ? dwarf_diename(cu) : "";
		w.cu_base = strrchr(w.cu_name, '/');
		w.cu_base = w.cu_base ? w.cu_base + 1 : w.cu_name;
		if (dwarf_getsrclines(cu, &lines, &nl) == 0) {
			for (size_t i = 0; i < nl; i++) {
				Dwarf_Line *l = dwarf_onesrcline(lines, i);
				struct row *r;
				Dwarf_Addr addr;
				int line;

				if (!l || dwarf_lineaddr(l, &addr) ||
				    dwarf_lineno(l, &line) ||
				    !own_file(&w, dwarf_linesrc(l, NULL, NULL)))
					continue;
				r = grow(&rows, &nrows, &crows, sizeof(*r));
				if (!r) {
					oom = true;
					break;
				}
				r->addr = addr;
				r->line = (unsigned)line;
			}
		}
		walk_die(&w, cu, "", mod, bias, 0);
		oom |= w.oom;
	}
	if (rows)
		qsort(rows, nrows, sizeof(*rows), row_cmp);
	for (size_t i = 0; i < o->nsubs; i++)
		if (o->subs[i].nholders)
			qsort(o->subs[i].holders, o->subs[i].nholders,
			      sizeof(char *), str_cmp);
	sub_ends(o, rows, nrows);
	free(rows);
	return oom ? -1 : 0;
}

static struct dsub *dsub_find(struct obj *o, const char *key)
{
	for (size_t i = 0; i < o->nsubs; i++)
		if (!strcmp(o->subs[i].key, key))
			return &o->subs[i];
	return NULL;
}

static struct dtype *dtype_find(struct obj *o, const char *key)
{
	for (size_t i = 0; i < o->ntypes; i++)
		if (!strcmp(o->types[i].key, key))
			return &o->types[i];
	return NULL;
}

static void obj_close(struct obj *o)
{
	for (size_t i = 0; i < o->nsubs; i++) {
		struct dsub *s = &o->subs[i];

		free(s->key);
		free(s->sig);
		free(s->ranges);
		for (size_t j = 0; j < s->nholders; j++)
			free(s->holders[j]);
		free(s->holders);
	}
	free(o->subs);
	for (size_t i = 0; i < o->ntypes; i++) {
		for (size_t j = 0; j < o->types[i].nm; j++) {
			free(o->types[i].m[j].name);
			free(o->types[i].m[j].type);
		}
		free(o->types[i].m);
		free(o->types[i].key);
	}
	free(o->types);
	if (o->dwfl)
		dwfl_end(o->dwfl);
	for (size_t i = 0; i < o->nsyms; i++)
		free(o->syms[i].why);
	for (size_t i = 0; i < o->nsecs; i++)
		free(o->secs[i].rels);
	free(o->secs);
	free(o->syms);
	if (o->elf)
		elf_end(o->elf);
	if (o->fd >= 0)
		close(o->fd);
	memset(o, 0, sizeof(*o));
	o->fd = -1;
}

/* ---- the differ ---- */

struct diff {
	const struct bp_tu *tu;
	struct obj b, a; /* before.o, after.o */
	bool dwarf;	 /* both have DWARF */
	struct bp_result *out;
	size_t cfuncs, csyms, crefusals, cnotes;
	bool oom;
};

static void __attribute__((format(printf, 4, 5)))
msg(struct diff *d, bool refusal, const char *symbol, const char *fmt, ...)
{
	struct bp_msg *m;
	va_list ap;
	char *text;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	m = refusal ? grow(&d->out->refusals, &d->out->nrefusals, &d->crefusals,
			   sizeof(*m))
		    : grow(&d->out->notes, &d->out->nnotes, &d->cnotes,
			   sizeof(*m));
	if (!m || !text) {
		free(text);
		d->oom = true;
		return;
	}
	m->text = text;
	m->symbol = symbol ? strdup(symbol) : NULL;
	if (symbol && !m->symbol)
		d->oom = true;
}

static void set_why(struct diff *d, struct sym *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_why(struct diff *d, struct sym *s, const char *fmt, ...)
{
	va_list ap;
	char *t;

	va_start(ap, fmt);
	if (vasprintf(&t, fmt, ap) < 0) {
		d->oom = true;
		t = NULL;
	}
	va_end(ap);
	free(s->why);
	s->why = t;
}

static struct sym *find_func(struct obj *o, const char *name)
{
	for (size_t i = 1; i < o->nsyms; i++)
		if (o->syms[i].kind == K_FUNC && o->syms[i].defined &&
		    !strcmp(o->syms[i].name, name))
			return &o->syms[i];
	return NULL;
}

static bool uses(const struct sym *f, const struct sym *t)
{
	for (size_t i = 0; i < f->nrels; i++)
		if (f->rels[i].sym == t)
			return true;
	return false;
}

/* Include @f for @fmt unless it is in already. Returns true if it was
 * not. */
static bool include(struct diff *d, struct sym *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool include(struct diff *d, struct sym *f, const char *fmt, ...)
{
	va_list ap;
	char *t;

	if (f->include)
		return false;
	f->include = true;
	va_start(ap, fmt);
	if (vasprintf(&t, fmt, ap) < 0) {
		d->oom = true;
		t = NULL;
	}
	va_end(ap);
	free(f->why);
	f->why = t;
	return true;
}

static bool hunk_touches(const struct bp_tu *tu, unsigned lo, unsigned hi)
{
	for (size_t i = 0; i < tu->nhunks; i++) {
		unsigned s = tu->hunks[i].start, e;

		/* Lines only removed: the lines on either side. */
		if (!tu->hunks[i].count) {
			e = s + 1;
			s = s ? s : 1;
		} else {
			e = s + tu->hunks[i].count - 1;
		}
		if (s <= hi && e >= lo)
			return true;
	}
	return false;
}

/* Is @vn the line @vo of a function of the source file that moved, as
 * much as that function moved? */
static bool line_moved(struct diff *d, uint32_t vo, uint32_t vn)
{
	for (size_t i = 0; i < d->b.nsubs && vo != vn; i++) {
		struct dsub *bs = &d->b.subs[i], *as;

		if (!bs->own || vo < bs->line || vo > bs->end)
			continue;
		as = dsub_find(&d->a, bs->key);
		if (as && as->own &&
		    (int64_t)as->line - bs->line == (int64_t)vn - vo)
			return true;
	}
	return false;
}

/* aarch64: do the instructions of @ob and @nb (@size bytes) differ only
 * in the immediate of MOVZ Wd|Xd, #imm16 (mov w2, LINE), by line numbers
 * that moved? */
static bool lines_only_a64(struct diff *d, const unsigned char *ob,
			   const unsigned char *nb, uint64_t size)
{
	const uint32_t imm16 = 0xffffu << 5;

	if (size % 4)
		return false;
	for (uint64_t i = 0; i < size; i += 4) {
		uint32_t io, in;

		memcpy(&io, ob + i, 4);
		memcpy(&in, nb + i, 4);
		if (io == in)
			continue;
		/* MOVZ, hw 0: sf 10 100101 00 imm16 Rd */
		if ((io & 0x7fe00000u) != 0x52800000u ||
		    (io & ~imm16) != (in & ~imm16) ||
		    !line_moved(d, (io & imm16) >> 5, (in & imm16) >> 5))
			return false;
	}
	return true;
}

/* Does function @n differ from @o only in line numbers that moved with
 * the lines above them (assert's and __LINE__'s, an immediate operand of
 * mov $imm32, %reg; aarch64: of mov wN, #imm16), while no hunk touches
 * it? Such a function is left
 * out of the patch, as kpatch leaves it out: carrying it would only
 * renumber messages, and replacing a function that never returns (main,
 * an event loop) would keep the transition from ever finishing. */
static bool lines_only(struct diff *d, struct sym *o, struct sym *n)
{
	const unsigned char *ob, *nb;
	struct sym *owner = n;
	struct dsub *ds;
	char p[512];

	if (!d->dwarf || o->size != n->size || o->nrels != n->nrels ||
	    !o->sec || !n->sec || !o->sec->data || !n->sec->data)
		return false;
	if (cold_parent(n->name, p, sizeof(p)))
		owner = find_func(&d->a, p);
	if (!owner || owner->dsub < 0)
		return false;
	ds = &d->a.subs[owner->dsub];
	if (!ds->own || hunk_touches(d->tu, ds->line, ds->end))
		return false;
	for (size_t i = 0; i < n->nrels; i++)
		if (!same_rel(&o->rels[i], o->value, &n->rels[i], n->value, 0))
			return false;
	ob = o->sec->data + o->value;
	nb = n->sec->data + n->value;
	if (d->a.machine == EM_AARCH64)
		return lines_only_a64(d, ob, nb, n->size);
	for (uint64_t i = 0; i < n->size;) {
		bool found = false;

		if (ob[i] == nb[i]) {
			i++;
			continue;
		}
		for (uint64_t k = i > 3 ? i - 3 : 1; k <= i && !found; k++) {
			uint32_t vo, vn;

			if (k + 4 > n->size)
				break;
			if (ob[k - 1] != nb[k - 1] || ob[k - 1] < 0xb8 ||
			    ob[k - 1] > 0xbf)
				continue;
			memcpy(&vo, ob + k, 4);
			memcpy(&vn, nb + k, 4);
			if (line_moved(d, vo, vn)) {
				found = true;
				i = k + 4;
			}
		}
		if (!found)
			return false;
	}
	return true;
}

/* Data: compare, classify, refuse. */
static void describe_value(struct sb *b, const struct sym *s)
{
	sb_printf(b, "%" PRIu64 " bytes", s->size);
	if (!s->sec || !s->sec->data) {
		sb_printf(b, " of zeros");
		return;
	}
	if (s->nrels) {
		sb_printf(b, " holding %zu address%s", s->nrels,
			  s->nrels == 1 ? "" : "es");
		return;
	}
	const unsigned char *p = s->sec->data + s->value;
	uint64_t v = 0;

	if (s->size == 1 || s->size == 2 || s->size == 4 || s->size == 8) {
		memcpy(&v, p, s->size);
		if (s->size < 8 && (v >> (s->size * 8 - 1)) & 1)
			sb_printf(b, " = %" PRId64 " (0x%" PRIx64 ")",
				  (int64_t)(v | ~0ull << (s->size * 8)), v);
		else
			sb_printf(b, " = %" PRIu64, v);
		return;
	}
	sb_printf(b, " =");
	for (uint64_t i = 0; i < s->size && i < MAX_SHOWN; i++)
		sb_printf(b, " %02x", p[i]);
	if (s->size > MAX_SHOWN)
		sb_printf(b, " ...");
}

/* A function using @s, for messages. */
static const char *first_user(struct obj *o, const struct sym *s)
{
	for (size_t i = 1; i < o->nsyms; i++) {
		struct sym *f = &o->syms[i];

		for (size_t j = 0; f->kind == K_FUNC && j < f->nrels; j++)
			if (f->rels[j].sym == s)
				return f->name;
	}
	return "no function";
}

static void diff_data(struct diff *d)
{
	for (size_t i = 1; i < d->a.nsyms; i++) {
		struct sym *n = &d->a.syms[i], *o = n->twin;

		if (n->kind != K_DATA || !n->defined || n->anon)
			continue;
		if (!o) {
			n->patch = true;
			continue;
		}
		n->changed = !same_sym(o, n);
		if (!n->changed)
			continue;
		if (is_tls(n) || writable(n) || is_tls(o) || writable(o)) {
			struct sb ov = { 0 }, nv = { 0 };
			char *os, *ns;

			n->refused = true;
			if (o->size != n->size) {
				msg(d, true, n->name,
				    "data layout changed: '%s' is %" PRIu64
				    " bytes in the program and %" PRIu64
				    " bytes after the change (size %" PRIu64
				    " -> %" PRIu64 "); the running program's "
				    "object keeps its size and old code its "
				    "layout: keep the new part in a shadow "
				    "variable (rw_shadow_*)",
				    n->name, o->size, n->size, o->size,
				    n->size);
				continue;
			}
			describe_value(&ov, o);
			describe_value(&nv, n);
			os = sb_take(&ov);
			ns = sb_take(&nv);
			msg(d, true, n->name,
			    "changed initialised data: '%s' was %s, now %s: "
			    "the running program keeps its own value; change "
			    "it from a pre_patch callback or keep the new "
			    "value in a shadow variable (rw_shadow_*)",
			    n->name, os ? os : "?", ns ? ns : "?");
			free(os);
			free(ns);
			continue;
		}
		if (!strncmp(n->name, "_ZTV", 4)) {
			n->refused = true;
			msg(d, true, n->name,
			    "the virtual table '%s' changed: objects created "
			    "by old code keep pointing to the old one",
			    n->name);
			continue;
		}
		n->patch = true; /* read-only: the patch carries a copy */
	}
	/* A writable object new in after.o whose name (without numbers) is
	 * that of a before.o object that no longer exists: the same
	 * variable, moved or retyped, which old code still uses. */
	for (size_t i = 1; i < d->a.nsyms; i++) {
		struct sym *n = &d->a.syms[i];
		char an[256], bn[256];

		if (n->kind != K_DATA || !n->defined || n->anon || n->twin ||
		    !(writable(n) || is_tls(n)))
			continue;
		unnumbered(n->name, an, sizeof(an));
		for (size_t j = 1; j < d->b.nsyms; j++) {
			struct sym *o = &d->b.syms[j];

			unnumbered(o->name, bn, sizeof(bn));
			if (o->kind != K_DATA || !o->defined || o->anon ||
			    o->twin || strcmp(an, bn))
				continue;
			n->refused = true;
			msg(d, true, n->name,
			    "new static data '%s' (%" PRIu64 " bytes, used by "
			    "%s) has the name of '%s' (%" PRIu64 " bytes, "
			    "used by %s), which no longer exists: if it is "
			    "the same variable, moved or retyped, it must be "
			    "shared with old code, which still uses '%s'; "
			    "keep the old variable and put what is new in a "
			    "shadow variable (rw_shadow_*)",
			    n->name, n->size, first_user(&d->a, n), o->name,
			    o->size, first_user(&d->b, o), o->name);
			break;
		}
	}
}

/* Propagation (step 4), until nothing more changes. */
static void propagate(struct diff *d)
{
	struct obj *a = &d->a;
	bool more = true;
	char p[512];

	while (more && !d->oom) {
		more = false;
		for (size_t i = 1; i < a->nsyms; i++) {
			struct sym *f = &a->syms[i];

			if (f->kind == K_DATA && f->patch && f->twin) {
				/* Changed constant: its readers, and
				 * read-only data pointing to it. */
				for (size_t j = 1; j < a->nsyms; j++) {
					struct sym *r = &a->syms[j];

					if (!r->defined || r->anon ||
					    !uses(r, f))
						continue;
					if (r->kind == K_FUNC)
						more |= include(
							d, r,
							"reads changed constant '%s'",
							f->name);
					else if (r->kind == K_DATA &&
						 !r->patch && !writable(r) &&
						 !is_tls(r)) {
						r->patch = more = true;
					}
				}
				continue;
			}
			if (f->kind != K_FUNC || !f->defined || !f->include)
				continue;
			/* A piece and its parent go together. */
			if (cold_parent(f->name, p, sizeof(p))) {
				struct sym *par = find_func(a, p);

				if (par)
					more |= include(
						d, par,
						"its piece '%s' changed",
						f->name);
			}
			for (size_t j = 1; j < a->nsyms; j++) {
				struct sym *c = &a->syms[j];

				if (c->kind == K_FUNC && c->defined &&
				    cold_parent(c->name, p, sizeof(p)) &&
				    !strcmp(p, f->name))
					more |= include(d, c, "piece of '%s'",
							f->name);
			}
			/* Clones and static functions whose signature
			 * changed: every user. */
			bool clone = f->twin &&
				     clone_parent(f->name, p, sizeof(p));

			if (!clone && !(f->sig_diff && f->bind == STB_LOCAL))
				continue;
			for (size_t j = 1; j < a->nsyms; j++) {
				struct sym *r = &a->syms[j];

				if (r == f || !r->defined || r->anon ||
				    !uses(r, f))
					continue;
				if (r->kind == K_FUNC)
					more |= clone ? include(d, r,
								"calls changed clone '%s'",
								f->name)
						      : include(d, r,
								"uses '%s', whose "
								"signature changed",
								f->name);
				else if (r->kind == K_DATA && !r->refused &&
					 !clone) {
					r->refused = true;
					msg(d, true, f->name,
					    "the signature of static function "
					    "'%s' changed and '%s' holds its "
					    "address: code that calls through "
					    "the program's copy of '%s' passes "
					    "the old arguments",
					    f->name, r->name, r->name);
				}
			}
		}
	}
}

static void add_why_inlined(struct diff *d, struct sym *f)
{
	struct dsub *edited = NULL, *changed = NULL;

	for (size_t i = 0; i < d->a.nsubs; i++) {
		struct dsub *s = &d->a.subs[i];

		if ((int)i == f->dsub)
			continue;
		for (size_t j = 0; j < s->nholders; j++) {
			struct sym *h;

			if (strcmp(s->holders[j], f->name))
				continue;
			if (s->edited && !edited)
				edited = s;
			for (size_t k = 1; k < d->a.nsyms && !changed; k++) {
				h = &d->a.syms[k];
				if (h->kind == K_FUNC && h->changed &&
				    h->dsub == (int)i)
					changed = s;
			}
		}
	}
	if (edited)
		set_why(d, f, "inlines edited '%s'", edited->key);
	else if (changed)
		set_why(d, f, "inlines changed '%s'", changed->key);
	else
		set_why(d, f, "code changed");
}

/* Step 6 and the inlined copies (point 3 of the issue). */
static void inlining(struct diff *d)
{
	struct obj *a = &d->a;

	if (!d->dwarf)
		return;
	/* Edited: a function of the source file whose lines a hunk
	 * touches, and whose code (or one of its inlined copies) changed. */
	for (size_t i = 0; i < a->nsubs; i++) {
		struct dsub *s = &a->subs[i];
		bool changed = false;

		if (!s->own || !hunk_touches(d->tu, s->line, s->end))
			continue;
		for (size_t k = 1; k < a->nsyms && !changed; k++) {
			struct sym *f = &a->syms[k];

			if (f->kind != K_FUNC || !f->changed)
				continue;
			if (f->dsub == (int)i)
				changed = true;
			for (size_t j = 0; j < s->nholders && !changed; j++)
				changed = !strcmp(s->holders[j], f->name);
		}
		s->edited = changed;
	}
	for (size_t k = 1; k < a->nsyms; k++) {
		struct sym *f = &a->syms[k];

		char p[512];

		if (f->kind != K_FUNC || !f->changed || !f->twin ||
		    cold_parent(f->name, p, sizeof(p)))
			continue;
		if (f->dsub >= 0 && a->subs[f->dsub].edited)
			set_why(d, f, "edited");
		else
			add_why_inlined(d, f);
	}
}

/* The callers holding inlined copies of @s (after.o's, and before.o's
 * that still exist), which the patch must carry. */
static void include_holders(struct diff *d, struct dsub *s, const char *name)
{
	struct dsub *bs = dsub_find(&d->b, s->key);

	for (size_t j = 0; j < s->nholders; j++) {
		struct sym *h = find_func(&d->a, s->holders[j]);

		if (h)
			include(d, h, "holds an inlined copy of '%s'", name);
	}
	for (size_t j = 0; bs && j < bs->nholders; j++) {
		struct sym *ho = find_func(&d->b, bs->holders[j]);

		if (ho && ho->twin)
			include(d, ho->twin, "held an inlined copy of '%s'",
				name);
	}
}

/* The member of @o that is member @j of @n: by name, or the anonymous
 * members (unions, bases) by their order among the anonymous ones. */
static struct dmember *member_twin(struct dtype *o, struct dtype *n, size_t j)
{
	bool anon = n->m[j].name[0] == '<';
	size_t nth = 0;

	for (size_t i = 0; anon && i < j; i++)
		nth += n->m[i].name[0] == '<';
	for (size_t k = 0; k < o->nm; k++) {
		if (strcmp(o->m[k].name, n->m[j].name))
			continue;
		if (!anon || !nth--)
			return &o->m[k];
	}
	return NULL;
}

static void layouts(struct diff *d)
{
	for (size_t i = 0; i < d->a.ntypes; i++) {
		struct dtype *n = &d->a.types[i],
			     *o = dtype_find(&d->b, n->key);
		struct sb b = { 0 };
		size_t shown = 0;
		char *t;

		if (!o)
			continue;
		if (o->size != n->size)
			sb_printf(&b, "size %" PRIu64 " -> %" PRIu64, o->size,
				  n->size);
		for (size_t j = 0; j < n->nm && shown < MAX_LISTED; j++) {
			struct dmember *nm = &n->m[j], *om = NULL;
			const char *sep = b.len ? ", " : "";

			om = member_twin(o, n, j);
			if (!om) {
				sb_printf(&b, "%smember '%s' added at %" PRIu64,
					  sep, nm->name, nm->off / 8);
				shown++;
			} else if (om->off != nm->off) {
				if (om->off % 8 || nm->off % 8)
					sb_printf(
						&b,
						"%smember '%s' moved from bit %" PRIu64
						" to bit %" PRIu64,
						sep, nm->name, om->off,
						nm->off);
				else
					sb_printf(
						&b,
						"%smember '%s' moved from %" PRIu64
						" to %" PRIu64,
						sep, nm->name, om->off / 8,
						nm->off / 8);
				shown++;
			} else if (strcmp(om->type, nm->type)) {
				sb_printf(
					&b,
					"%smember '%s' changed type: %s -> %s",
					sep, nm->name, om->type, nm->type);
				shown++;
			}
		}
		for (size_t k = 0; k < o->nm && shown < MAX_LISTED; k++) {
			bool found = false;

			found = member_twin(n, o, k) != NULL;
			if (!found) {
				sb_printf(&b, "%smember '%s' removed",
					  b.len ? ", " : "", o->m[k].name);
				shown++;
			}
		}
		t = sb_take(&b);
		if (!t) {
			d->oom = true;
			return;
		}
		if (*t)
			msg(d, true, n->key,
			    "%s: %s; the running program's objects and old "
			    "code still use the old layout: keep the new "
			    "fields in a shadow variable (rw_shadow_*) "
			    "instead",
			    n->key, t);
		free(t);
	}
}

static void signatures(struct diff *d)
{
	for (size_t i = 1; i < d->a.nsyms; i++) {
		struct sym *f = &d->a.syms[i];
		struct dsub *ns, *os;
		char p[512];

		if (f->kind != K_FUNC || !f->changed || !f->twin ||
		    f->dsub < 0 || f->twin->dsub < 0 ||
		    clone_parent(f->name, p, sizeof(p)))
			continue;
		ns = &d->a.subs[f->dsub];
		os = &d->b.subs[f->twin->dsub];
		if (!ns->sig || !os->sig || !strcmp(ns->sig, os->sig))
			continue;
		f->sig_diff = true;
		if (f->bind == STB_LOCAL)
			continue; /* its callers come along (propagate) */
		f->refused = true;
		msg(d, true, f->name,
		    "the signature of '%s' changed (%s -> %s); callers in "
		    "other files still pass the old arguments",
		    f->name, os->sig, ns->sig);
	}
}

/* ---- result ---- */

static struct bp_func *add_func(struct diff *d, const char *name)
{
	struct bp_func *f =
		grow(&d->out->funcs, &d->out->nfuncs, &d->cfuncs, sizeof(*f));

	if (!f || !(f->name = strdup(name))) {
		if (f)
			d->out->nfuncs--;
		d->oom = true;
		return NULL;
	}
	return f;
}

static void set_inlined(struct diff *d, struct bp_func *bf, struct dsub *s)
{
	if (!s || !s->nholders)
		return;
	bf->inlined = calloc(s->nholders, sizeof(char *));
	if (!bf->inlined) {
		d->oom = true;
		return;
	}
	for (size_t j = 0; j < s->nholders; j++) {
		bf->inlined[j] = strdup(s->holders[j]);
		if (!bf->inlined[j])
			d->oom = true;
		else
			bf->ninlined++;
	}
}

static void add_sym(struct diff *d, struct sym *n)
{
	struct bp_sym *s;
	struct sym *o = n->twin;

	if (n->listed || n->anon || d->oom)
		return;
	n->listed = true;
	s = grow(&d->out->syms, &d->out->nsyms, &d->csyms, sizeof(*s));
	if (!s || !(s->name = strdup(n->name))) {
		if (s)
			d->out->nsyms--;
		d->oom = true;
		return;
	}
	if ((n->kind == K_FUNC && n->include) ||
	    (n->kind == K_DATA && n->patch))
		s->kind = BP_S_PATCH;
	else if (n->defined || (o && o->defined))
		s->kind = BP_S_PROGRAM;
	else
		s->kind = BP_S_DYNAMIC;
	if (!o && !n->defined) {
		/* Undefined now, defined in before.o (moved to another
		 * file, or deleted here and declared): the program's copy. */
		for (size_t i = 1; i < d->b.nsyms && !o; i++)
			if (d->b.syms[i].defined && !d->b.syms[i].anon &&
			    d->b.syms[i].kind != K_OTHER &&
			    !strcmp(d->b.syms[i].name, n->name))
				o = &d->b.syms[i];
		if (o)
			s->kind = BP_S_PROGRAM;
	}
	if (s->kind == BP_S_PROGRAM) {
		s->prog_name = strdup(o && o->defined ? o->name : n->name);
		if (!s->prog_name)
			d->oom = true;
	}
	s->local = o ? o->bind == STB_LOCAL : n->bind == STB_LOCAL;
}

/* Everything that included code and the patch's data refer to. */
static void list_syms(struct diff *d)
{
	struct obj *a = &d->a;

	for (size_t i = 1; i < a->nsyms; i++) {
		struct sym *s = &a->syms[i];

		if (s->anon || !s->defined || s->kind == K_OTHER)
			continue;
		if (s->kind == K_DATA || (s->kind == K_FUNC && s->include))
			add_sym(d, s);
	}
	for (size_t i = 1; i < a->nsyms; i++) {
		struct sym *s = &a->syms[i];

		if (!((s->kind == K_FUNC && s->include) ||
		      (s->kind == K_DATA && s->patch)))
			continue;
		for (size_t j = 0; j < s->nrels; j++) {
			struct sym *t = s->rels[j].sym;

			if (t->anon) {
				/* Strings and jump tables come with the
				 * code; what they point to is listed. */
				struct rel *r;
				size_t n;

				if (!t->sec)
					continue;
				n = rels_in(t->sec, 0, t->sec->sh.sh_size, &r);
				for (size_t k = 0; k < n; k++)
					if (!r[k].sym->anon)
						add_sym(d, r[k].sym);
				continue;
			}
			add_sym(d, t);
		}
	}
}

/* Sections that list code addresses without being code or data of their
 * own (rewire's __rw_jump_table, constructors' .init_array, ...), as
 * kpatch's special sections: what they say about included code. */
static void special_sections(struct diff *d)
{
	struct obj *a = &d->a;

	/* Unnamed data that code reads (jump tables) is the code's own. */
	for (size_t i = 1; i < a->nsyms; i++) {
		struct sym *f = &a->syms[i];

		for (size_t j = 0; f->kind == K_FUNC && j < f->nrels; j++)
			if (f->rels[j].sym->anon && f->rels[j].sym->sec)
				f->rels[j].sym->sec->read_by_code = true;
	}
	for (size_t i = 1; i < a->nsecs; i++) {
		struct sec *sec = &a->secs[i];
		bool ctors = !strcmp(sec->name, ".init_array") ||
			     !strncmp(sec->name, ".init_array.", 12) ||
			     !strcmp(sec->name, ".ctors") ||
			     !strcmp(sec->name, ".preinit_array");

		if (sec->named || sec->read_by_code ||
		    !(sec->sh.sh_flags & SHF_ALLOC) ||
		    (sec->sh.sh_flags & SHF_EXECINSTR) ||
		    ignored_section(sec->name) || !sec->nrels)
			continue;
		for (size_t j = 0; j < sec->nrels; j++) {
			struct sym *t = sec->rels[j].sym;
			bool dup = false;

			if (t->kind != K_FUNC || !t->include)
				continue;
			for (size_t k = 0; k < j && !dup; k++)
				dup = sec->rels[k].sym == t;
			if (dup)
				continue;
			if (ctors && !t->twin)
				msg(d, false, t->name,
				    "'%s' is a new constructor (%s): a live "
				    "patch does not run it; do its work from a "
				    "pre_patch or post_patch callback",
				    t->name, sec->name);
			else if (!ctors)
				msg(d, false, t->name,
				    "'%s' has entries in %s: the patch's copy "
				    "of '%s' brings its own, which the "
				    "program's table does not list",
				    t->name, sec->name, t->name);
		}
	}
}

static void tls_and_notes(struct diff *d)
{
	struct obj *a = &d->a;

	for (size_t i = 1; i < a->nsyms; i++) {
		struct sym *s = &a->syms[i];

		if (s->kind != K_FUNC || !s->include)
			continue;
		for (size_t j = 0; j < s->nrels; j++) {
			struct sym *t = s->rels[j].sym;

			if (t->anon || !is_tls(t) || t->refused)
				continue;
			t->refused = true;
			msg(d, true, t->name,
			    "thread-local variable '%s' is used by '%s': "
			    "thread-local data is not supported by live "
			    "patches yet",
			    t->name, s->name);
		}
	}
	for (size_t i = 1; i < a->nsyms; i++) {
		struct sym *s = &a->syms[i];

		if (s->kind != K_DATA || !s->defined || s->anon || s->twin ||
		    s->refused)
			continue;
		msg(d, false, s->name,
		    "new %s '%s' lives in the patch; it starts from its "
		    "initial value and old code does not see it",
		    writable(s) ? "static variable" : "constant", s->name);
	}
	for (size_t i = 1; i < a->nsyms; i++) {
		struct sym *s = &a->syms[i];

		if (s->kind == K_DATA && s->twin && s->patch && !s->refused)
			msg(d, false, s->name,
			    "constant '%s' changed: the patch carries its own "
			    "copy, read by the patch's functions; old code "
			    "keeps reading the program's",
			    s->name);
		if (s->kind != K_DATA || !s->twin || s->patch || !writable(s))
			continue;
		for (size_t j = 0; j < s->nrels; j++)
			if (s->rels[j].sym->kind == K_DATA &&
			    s->rels[j].sym->patch && s->rels[j].sym->twin)
				msg(d, false, s->name,
				    "'%s' keeps pointing to the program's copy "
				    "of '%s', not the patch's",
				    s->name, s->rels[j].sym->name);
	}
}

/* Does included code refer to @name, undefined in after.o? */
static bool called_from_patch(struct diff *d, const char *name)
{
	for (size_t i = 1; i < d->a.nsyms; i++) {
		struct sym *f = &d->a.syms[i];

		for (size_t j = 0; f->include && j < f->nrels; j++)
			if (!f->rels[j].sym->defined &&
			    !strcmp(f->rels[j].sym->name, name))
				return true;
	}
	return false;
}

static void build_funcs(struct diff *d)
{
	struct obj *a = &d->a, *b = &d->b;
	char p[512];

	for (size_t i = 1; i < a->nsyms; i++) {
		struct sym *s = &a->syms[i];
		struct bp_func *f;
		bool piece, clone;

		if (s->kind != K_FUNC || !s->defined || s->anon)
			continue;
		if (!(f = add_func(d, s->name)))
			return;
		piece = cold_parent(s->name, p, sizeof(p));
		clone = !piece && clone_parent(s->name, p, sizeof(p));
		if (!s->twin)
			f->state = BP_F_NEW;
		else if (s->changed || s->include)
			f->state = BP_F_CHANGED;
		else
			f->state = BP_F_SAME;
		f->global = s->bind == STB_GLOBAL || s->bind == STB_WEAK;
		f->include = s->include;
		f->replace = s->include && s->twin && !piece;
		f->clone = clone;
		if (piece || clone) {
			if (!(f->parent = strdup(p)))
				d->oom = true;
		}
		if (s->why && !(f->why = strdup(s->why)))
			d->oom = true;
		if (s->dsub >= 0 && (s->changed || s->include))
			set_inlined(d, f, &a->subs[s->dsub]);
	}
	for (size_t i = 1; i < b->nsyms; i++) {
		struct sym *s = &b->syms[i];
		struct bp_func *f;

		if (s->kind != K_FUNC || !s->defined || s->anon || s->twin)
			continue;
		if (!(f = add_func(d, s->name)))
			return;
		f->state = BP_F_DELETED;
		f->global = s->bind == STB_GLOBAL || s->bind == STB_WEAK;
		if (!(f->why = strdup("deleted")))
			d->oom = true;
		if (cold_parent(s->name, p, sizeof(p)))
			continue;
		if (called_from_patch(d, s->name)) {
			msg(d, false, s->name,
			    "'%s' is no longer defined in this file: it is "
			    "left in the program as it is, and the patch "
			    "calls the program's copy",
			    s->name);
			continue;
		}
		msg(d, false, s->name,
		    "'%s' was deleted: it is left in the program as it is; "
		    "nothing in the patch calls it",
		    s->name);
	}
	/* Edited functions that exist only as inlined copies. */
	for (size_t i = 0; d->dwarf && i < a->nsubs; i++) {
		struct dsub *s = &a->subs[i];
		struct sb sb = { 0 };
		struct bp_func *f;
		bool has_sym = false;

		if (!s->edited || !s->nholders)
			continue;
		for (size_t k = 1; k < a->nsyms && !has_sym; k++)
			has_sym = a->syms[k].dsub == (int)i;
		if (has_sym)
			continue;
		if (!(f = add_func(d, s->key)))
			return;
		f->state = BP_F_CHANGED;
		sb_printf(&sb, "inlined into ");
		for (size_t j = 0; j < s->nholders; j++)
			sb_printf(&sb, "%s%s",
				  !j			 ? ""
				  : j + 1 == s->nholders ? " and "
							 : ", ",
				  s->holders[j]);
		sb_printf(&sb, " (%s in the patch)",
			  s->nholders == 1   ? "it is"
			  : s->nholders == 2 ? "both"
					     : "all");
		f->why = sb_take(&sb);
		if (!f->why)
			d->oom = true;
		set_inlined(d, f, s);
	}
}

int bp_diff(const struct bp_tu *tu, struct bp_result *out, char *err,
	    size_t errlen)
{
	struct diff *d;
	bool hb = false, ha = false;
	int ret = -1;

	if (!tu || !out || !tu->before_o || !tu->after_o)
		return fail(err, errlen, "bp_diff: no objects given");
	memset(out, 0, sizeof(*out));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return fail(err, errlen, "libelf is too old: %s",
			    elf_errmsg(-1));
	d = calloc(1, sizeof(*d));
	if (!d)
		return fail(err, errlen, "out of memory");
	d->tu = tu;
	d->out = out;
	d->a.fd = d->b.fd = -1;
	if (obj_open(&d->b, tu->before_o, "before.o", err, errlen) ||
	    obj_open(&d->a, tu->after_o, "after.o", err, errlen))
		goto out;
	if (d->a.machine != d->b.machine) {
		fail(err, errlen, "%s and %s are for different machines",
		     tu->before_o, tu->after_o);
		goto out;
	}
	if (read_dwarf(&d->b, &hb) || read_dwarf(&d->a, &ha)) {
		fail(err, errlen, "out of memory reading DWARF");
		goto out;
	}
	correlate(&d->b, &d->a);
	d->dwarf = hb && ha;
	if (!d->dwarf)
		msg(d, false, NULL,
		    "%s has no DWARF: inlined copies, struct layouts and "
		    "signatures were not checked; compile it with -g",
		    !ha ? tu->after_o : tu->before_o);

	/* Functions. */
	for (size_t i = 1; i < d->a.nsyms; i++) {
		struct sym *n = &d->a.syms[i];

		if (n->kind != K_FUNC || !n->defined || n->anon)
			continue;
		if (!n->twin) {
			n->include = true;
			set_why(d, n, "new");
			continue;
		}
		n->changed = !same_sym(n->twin, n);
		if (n->changed && lines_only(d, n->twin, n)) {
			n->changed = false;
			msg(d, false, n->name,
			    "'%s' differs only in line numbers (assert, "
			    "__LINE__) because lines above it moved: it is "
			    "left out of the patch, and its messages name the "
			    "old lines",
			    n->name);
		}
		if (n->changed) {
			n->include = true;
			set_why(d, n, "code changed");
		}
	}
	/* A piece's change is its parent's: one function in two parts. */
	for (size_t i = 1; i < d->a.nsyms; i++) {
		struct sym *n = &d->a.syms[i], *par;
		char p[512];

		if (n->kind != K_FUNC || !n->include ||
		    !cold_parent(n->name, p, sizeof(p)) ||
		    !(par = find_func(&d->a, p)))
			continue;
		set_why(d, n, "piece of '%s'", p);
		if (!par->include) {
			par->changed = par->include = true;
			set_why(d, par, "code changed");
		}
	}
	diff_data(d);
	if (d->dwarf) {
		signatures(d);
		inlining(d);
		layouts(d);
	}
	/* Inlined copies of what changed come along, then the rest of
	 * what changes drag in; holders may bring more clones. */
	for (int round = 0; round < 2 && d->dwarf; round++) {
		propagate(d);
		for (size_t i = 0; i < d->a.nsubs; i++) {
			struct dsub *s = &d->a.subs[i];
			bool changed = s->edited;

			for (size_t k = 1; k < d->a.nsyms && !changed; k++)
				changed = d->a.syms[k].dsub == (int)i &&
					  d->a.syms[k].changed;
			if (changed)
				include_holders(d, s, s->key);
		}
	}
	propagate(d);
	tls_and_notes(d);
	special_sections(d);
	build_funcs(d);
	list_syms(d);
	if (d->oom) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	if (ret)
		bp_result_free(out);
	obj_close(&d->a);
	obj_close(&d->b);
	free(d);
	return ret;
}

static void free_msgs(struct bp_msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].symbol);
		free(m[i].text);
	}
	free(m);
}

void bp_result_free(struct bp_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nfuncs; i++) {
		struct bp_func *f = &r->funcs[i];

		free(f->name);
		free(f->parent);
		free(f->why);
		for (size_t j = 0; j < f->ninlined; j++)
			free(f->inlined[j]);
		free(f->inlined);
	}
	free(r->funcs);
	for (size_t i = 0; i < r->nsyms; i++) {
		free(r->syms[i].name);
		free(r->syms[i].prog_name);
	}
	free(r->syms);
	free_msgs(r->refusals, r->nrefusals);
	free_msgs(r->notes, r->nnotes);
	memset(r, 0, sizeof(*r));
}
