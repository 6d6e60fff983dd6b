/* SPDX-License-Identifier: MIT */
/*
 * Function tracing (rewire/ftrace.h): the user-space ftrace.
 *
 * Functions. The symbol tables of the loaded objects (libelf: .symtab, or
 * .dynsym when stripped) give every function; one whose entry holds the
 * patchable NOPs (src/arch/entry_arch.h: five after an endbr64 on x86-64,
 * two after a BTI on aarch64) or already belongs to rewire (a live patch's
 * jump) is traceable. Tables are kept per object and never freed: the
 * entries' records (src/entry.c) point at their functions for as long as
 * the process lives. A traced object is pinned (dlopen RTLD_NOLOAD) until
 * detach, so a dlclose by the program cannot unmap code that jumps to a
 * trampoline.
 *
 * Hits. Each traced function has an RCU-published, immutable array of the
 * probe sets that trace it. The entry trampoline calls ft_enter(): unless
 * the thread is already in a probe (then the hit is only counted), it
 * runs the entry probes of the array it sees and, when one of them has a
 * return function, replaces the return address with the return
 * trampoline, after pushing the real one on the thread's shadow stack.
 * Attaching publishes the arrays, then writes the entries; detaching
 * writes the entries, publishes the arrays without the set, and waits for
 * a grace period before freeing it.
 *
 * Shadow stacks. An element records the address of the return address it
 * replaced (the slot), the real return address, the function and the entry
 * time. A return through the trampoline finds its element by slot, from
 * the top: longjmp, exceptions and coroutine switches leave elements
 * whose frames are gone, and they are never the newest element with a live
 * frame's slot. Stale elements are dropped when a push finds an element
 * at or below its own slot whose slot no longer holds the trampoline's
 * address, and a full stack is swept the same way. Unwinders that follow
 * return addresses get the real ones back first (the interposed
 * functions at the end of this file).
 *
 * aarch64 has no slot at the entry (the return address is in X30): an
 * element's "slot" is its frame's CFA - 8, a key that is never read, and
 * what the slot tells on x86-64 comes from a walk of the stack by its
 * CFI ("aarch64" below, src/arch/aarch64/trace.c).
 */
#include "entry.h"

#include "arch/arch.h"
#include "ftrace_dwarf.h"
#include "threads.h"

#include <rewire/ftrace.h>
#include <rewire/rcu.h>

#include <ctype.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__aarch64__)
#include <stddef.h>
#include <ucontext.h>
#endif

#define MAX_PATTERNS 65536
#define ERRLEN 1024

/*
 * GCC's ThreadSanitizer refuses fences (-Wtsan). The TSan build has no
 * function tracing (the generic backend), so it only has to compile:
 * there a locked add orders the same.
 */
#if defined(__SANITIZE_THREAD__)
#define ft_fence(order) atomic_fetch_add_explicit(&ft_fence_word, 0, order)
static _Atomic int ft_fence_word;
#else
#define ft_fence(order) atomic_thread_fence(order)
#endif

/* ---- Messages ------------------------------------------------------------ */

static __thread char ft_error[ERRLEN];

static void set_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ft_error, sizeof(ft_error), fmt, ap);
	va_end(ap);
	rw__log("%s", ft_error);
}

const char *rw_ftrace_last_error(void)
{
	return ft_error;
}

/* ---- Functions and objects ------------------------------------------------ */

/* Every array gets a new generation: a set is in every array of its
 * functions whose generation is at least its attach_gen. */
struct ft_users {
	uint64_t gen;
	size_t n;
	struct rw_ftrace *sets[];
};
static _Atomic uint64_t users_gen;

struct ft_func {
	struct rw_ftrace_func pub;
	struct ft_obj *obj;
	const char *plain; /* demangled without its parameters */
	struct rw__entry *entry;
	uintptr_t sled;
	char *aliases; /* other names at the same address, "a\0b\0\0" */
	/* Inline-only functions: how many functions hold the copies. */
	unsigned inl_callers;
	struct ft_users *_Atomic users;
};

struct ft_obj {
	char *path;
	uintptr_t base;
	bool loaded; /* seen by the last refresh */
	bool excluded;
	struct ft_func *funcs; /* sorted by address */
	size_t n;
	/* Functions that exist only inlined (DWARF), by name: status
	 * -RW_ERR_INLINED. Read with the inlined counts on first use. */
	struct ft_func *inl;
	size_t ninl;
	bool dwarf_read;
	struct ft_obj *next;
};

struct rw_ftrace {
	struct rw_ftrace_probe probe;
	struct ft_func **funcs;
	size_t n;
	uint64_t attach_gen;
	_Atomic uint64_t recursion, shadow_full;
	void **pins;
	size_t npins;
};

static struct rw__lock ft_lock = RW__LOCK_INIT;
static struct ft_obj *objects;
static bool elf_ready;

/* Libraries that run while a probe is called or a trap is handled, by
 * soname prefix: never traced even if built with patchable entries. */
static const char *const excluded_libs[] = {
	"libc.so",    "libc-",	      "ld-linux",   "libpthread", "librt.so",
	"libdl.so",   "liburcu",      "libunwind",  "libelf",	  "libdw",
	"libz.so",    "liblzma",      "libbz2",	    "libzstd",	  "libgcc_s",
	"linux-vdso", "libstdc++.so", "libsystemd",
};

static bool excluded_path(const char *path)
{
	const char *base = strrchr(path, '/');
	Dl_info self;

	base = base ? base + 1 : path;
	for (size_t i = 0; i < sizeof(excluded_libs) / sizeof(*excluded_libs);
	     i++)
		if (strncmp(base, excluded_libs[i], strlen(excluded_libs[i])) ==
		    0)
			return true;
	/* rewire's own object (a shared library, or linked statically into
	 * the program: then only its functions are excluded, by address). */
	if (dladdr((void *)rw_ftrace_attach, &self) && self.dli_fname &&
	    strcmp(self.dli_fname, path) == 0 &&
	    strstr(path, "librewire") != NULL)
		return true;
	return false;
}

static char *(*cxa_demangle)(const char *, char *, size_t *, int *);

static char *demangle(const char *name)
{
	int st = 0;

	if (strncmp(name, "_Z", 2) != 0)
		return NULL;
	if (!cxa_demangle)
		cxa_demangle =
			(char *(*)(const char *, char *, size_t *,
				   int *))dlsym(RTLD_DEFAULT, "__cxa_demangle");
	if (!cxa_demangle)
		return NULL;
	char *d = cxa_demangle(name, NULL, NULL, &st);

	if (st != 0) {
		free(d);
		return NULL;
	}
	return d;
}

/* "ns::f(int) const" -> "ns::f": cut at the '(' that opens the last
 * top-level parameter list. */
static char *strip_params(const char *d)
{
	size_t len = strlen(d);
	int depth = 0;
	size_t cut = len;

	for (size_t i = len; i-- > 0;) {
		if (d[i] == ')')
			depth++;
		else if (d[i] == '(') {
			if (--depth == 0) {
				cut = i;
				break;
			}
		}
	}
	if (cut == len)
		return NULL;
	return strndup(d, cut);
}

/* rewire's own functions, for a program that links librewire statically. */
static bool in_rewire(uintptr_t addr)
{
	Dl_info a, b;

	return dladdr((void *)addr, &a) &&
	       dladdr((void *)rw_ftrace_attach, &b) &&
	       a.dli_fbase == b.dli_fbase && strstr(a.dli_fname, "librewire");
}

struct seg {
	uintptr_t start, end;
};

/* A breakpoint on an instruction of the entry at @b. */
static bool entry_has_trap(const uint8_t *b)
{
	for (size_t k = 0; k < RW__ENTRY_LEN; k += RW__ENTRY_TRAP_STEP)
		if (rw__entry_trap_at(b + k))
			return true;
	return false;
}

/* Classify @f: sled and status. Entry lock held. */
static void classify(struct ft_func *f, const struct seg *x, size_t nx,
		     bool excluded)
{
	uintptr_t a = f->pub.addr;
	bool in = false;

	for (size_t i = 0; i < nx; i++)
		if (a >= x[i].start &&
		    a + RW__ENTRY_PAD_MAX + RW__ENTRY_LEN <= x[i].end)
			in = true;
	f->pub.status = -RW_ERR_NOT_PATCHABLE;
	if (!in)
		return;
	f->sled = rw__entry_sled_of(a);
	if (excluded) {
		f->pub.status = -EPERM;
		return;
	}
	const uint8_t *b = (const uint8_t *)f->sled;
	/* A live patch's entry (its record is shared) is traceable too. */
	const struct rw__entry *e = f->entry ? f->entry
					     : rw__entry_find(f->sled);

	if (rw__entry_is_nops(b) || (e && (e->traced || e->patch)))
		f->pub.status = 0;
	else if (entry_has_trap(b))
		f->pub.status = -RW_ERR_BREAKPOINT;
	else if (rw__entry_jump_at(b)) {
		/* A jump that is not ours (another tool's). */
		f->pub.status = -RW_ERR_NOT_PATCHABLE;
	}
}

static int func_cmp(const void *a, const void *b)
{
	const struct ft_func *x = a, *y = b;

	if (x->pub.addr != y->pub.addr)
		return x->pub.addr < y->pub.addr ? -1 : 1;
	/* Aliases: the name without leading underscores first. */
	if (!x->pub.name || !y->pub.name)
		return 0;
	return (x->pub.name[0] == '_') - (y->pub.name[0] == '_');
}

static int func_ptr_cmp(const void *a, const void *b)
{
	return func_cmp(*(struct ft_func *const *)a,
			*(struct ft_func *const *)b);
}

static void add_alias(struct ft_func *f, const char *name)
{
	size_t len = 0, n = strlen(name) + 1;
	char *v;

	if (f->aliases)
		while (f->aliases[len])
			len += strlen(f->aliases + len) + 1;
	v = realloc(f->aliases, len + n + 1);
	if (!v)
		return; /* the alias is not matched */
	memcpy(v + len, name, n);
	v[len + n] = '\0';
	f->aliases = v;
}

/* Read @o's functions from its file. */
static int read_object(struct ft_obj *o, const struct seg *x, size_t nx)
{
	int fd = open(o->path, O_RDONLY | O_CLOEXEC);
	Elf *elf;
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	GElf_Shdr sh;
	size_t cap = 0;
	int err = 0;

	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		close(fd);
		return -RW_ERR_PATCH_FILE;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			symtab = scn;
		else if (sh.sh_type == SHT_DYNSYM)
			dynsym = scn;
	}
	scn = symtab ? symtab : dynsym;
	if (scn && gelf_getshdr(scn, &sh) && sh.sh_entsize) {
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t n = d ? sh.sh_size / sh.sh_entsize : 0;

		for (size_t i = 0; i < n && !err; i++) {
			GElf_Sym s;
			const char *name;

			if (!gelf_getsym(d, (int)i, &s) ||
			    GELF_ST_TYPE(s.st_info) != STT_FUNC ||
			    s.st_shndx == SHN_UNDEF || s.st_size == 0)
				continue;
			name = elf_strptr(elf, sh.sh_link, s.st_name);
			if (!name || !*name)
				continue;
			if (o->n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct ft_func *v =
					realloc(o->funcs, nc * sizeof(*v));

				if (!v) {
					err = -ENOMEM;
					break;
				}
				o->funcs = v;
				cap = nc;
			}
			struct ft_func *f = &o->funcs[o->n];

			memset(f, 0, sizeof(*f));
			f->pub.addr = o->base + s.st_value;
			f->pub.size = s.st_size;
			f->pub.name = strdup(name);
			if (!f->pub.name) {
				err = -ENOMEM;
				break;
			}
			o->n++;
		}
	}
	elf_end(elf);
	close(fd);
	if (err)
		return err;
	qsort(o->funcs, o->n, sizeof(*o->funcs), func_cmp);
	/* One record per address: aliases keep the first name (a global
	 * before a local alias when both exist is not guaranteed). */
	size_t k = 0;

	for (size_t i = 0; i < o->n; i++) {
		if (k && o->funcs[k - 1].pub.addr == o->funcs[i].pub.addr) {
			add_alias(&o->funcs[k - 1], o->funcs[i].pub.name);
			free((char *)o->funcs[i].pub.name);
			continue;
		}
		o->funcs[k++] = o->funcs[i];
	}
	o->n = k;
	for (size_t i = 0; i < o->n; i++) {
		struct ft_func *f = &o->funcs[i];
		char *d = demangle(f->pub.name);

		f->obj = o;
		f->pub.object = o->path;
		f->pub.demangled = d ? d : f->pub.name;
		f->plain = d ? strip_params(d) : NULL;
		if (!f->plain)
			f->plain = f->pub.demangled;
		classify(f, x, nx, o->excluded || in_rewire(f->pub.addr));
	}
	return 0;
}

struct scan {
	int err;
};

static int scan_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *sc = arg;
	struct seg x[16];
	size_t nx = 0;
	char path[4096];
	struct ft_obj *o;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum && nx < 16; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			x[nx].start = info->dlpi_addr + ph->p_vaddr;
			x[nx].end = x[nx].start + ph->p_memsz;
			nx++;
		}
	}
	if (!nx)
		return 0;
	if (info->dlpi_name && info->dlpi_name[0]) {
		snprintf(path, sizeof(path), "%s", info->dlpi_name);
	} else {
		ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

		if (n <= 0)
			return 0;
		path[n] = '\0';
		/* A deleted executable has no symbols to read. */
	}
	if (strncmp(path, "linux-vdso", 10) == 0 || path[0] != '/')
		return 0;
	for (o = objects; o; o = o->next) {
		if (o->base == info->dlpi_addr && strcmp(o->path, path) == 0) {
			o->loaded = true;
			/* Entries may have changed (another tool, a patch). */
			for (size_t i = 0; i < o->n; i++)
				classify(&o->funcs[i], x, nx,
					 o->excluded ||
						 o->funcs[i].pub.status ==
							 -EPERM);
			return 0;
		}
	}
	o = calloc(1, sizeof(*o));
	if (!o || !(o->path = strdup(path))) {
		free(o);
		sc->err = -ENOMEM;
		return 1;
	}
	o->base = info->dlpi_addr;
	o->loaded = true;
	o->excluded = excluded_path(path);
	if (read_object(o, x, nx) == -ENOMEM) {
		sc->err = -ENOMEM;
		return 1;
	}
	o->next = objects;
	objects = o;
	return 0;
}

/* Bring the tables up to date. ft_lock and the entry lock held. */
static int refresh(void)
{
	struct scan sc = { 0 };

	if (!elf_ready) {
		elf_version(EV_CURRENT);
		elf_ready = true;
	}
	for (struct ft_obj *o = objects; o; o = o->next)
		o->loaded = false;
	dl_iterate_phdr(scan_cb, &sc);
	return sc.err;
}

/* ---- Patterns ------------------------------------------------------------ */

struct pat {
	const char *glob; /* without '!' and '@OBJECT' */
	char *buf;
	const char *object; /* NULL: any */
	bool neg;
	bool wild;
};

static void pats_free(struct pat *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].buf);
	free(p);
}

static int pats_parse(const char *const *patterns, size_t n, struct pat **out)
{
	struct pat *p;

	if (n > MAX_PATTERNS) {
		set_error("too many patterns (%zu, at most %d)", n,
			  MAX_PATTERNS);
		return -EINVAL;
	}
	if (n && !patterns) {
		set_error("no pattern array");
		return -EINVAL;
	}
	p = calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = patterns[i];
		char *at;

		if (!s || !*s || (s[0] == '!' && !s[1])) {
			set_error("pattern %zu is %s", i + 1,
				  s ? "empty" : "NULL");
			pats_free(p, i);
			return -EINVAL;
		}
		p[i].neg = s[0] == '!';
		p[i].buf = strdup(s + p[i].neg);
		if (!p[i].buf) {
			pats_free(p, i);
			return -ENOMEM;
		}
		/* '@' begins the object, unless it is part of a C++ name
		 * such as "operator@" (none exists): the last one. */
		at = strrchr(p[i].buf, '@');
		if (at && (at == p[i].buf || !at[1])) {
			set_error("pattern %zu (%s) has nothing %s '@': "
				  "write NAME@OBJECT",
				  i + 1, s,
				  at == p[i].buf ? "before" : "after");
			pats_free(p, i + 1);
			return -EINVAL;
		}
		if (at) {
			*at = '\0';
			p[i].object = at + 1;
		}
		p[i].glob = p[i].buf;
		p[i].wild = strpbrk(p[i].glob, "*?[") != NULL;
	}
	*out = p;
	return 0;
}

static bool obj_match(const struct pat *p, const struct ft_obj *o)
{
	const char *base;

	if (!p->object || !*p->object)
		return true;
	base = strrchr(o->path, '/');
	base = base ? base + 1 : o->path;
	return fnmatch(p->object, o->path, 0) == 0 ||
	       fnmatch(p->object, base, 0) == 0;
}

static bool pat_match(const struct pat *p, const struct ft_func *f)
{
	if (!obj_match(p, f->obj))
		return false;
	if (fnmatch(p->glob, f->pub.name, 0) == 0)
		return true;
	for (const char *a = f->aliases; a && *a; a += strlen(a) + 1)
		if (fnmatch(p->glob, a, 0) == 0)
			return true;
	if (f->pub.demangled != f->pub.name &&
	    (fnmatch(p->glob, f->pub.demangled, 0) == 0 ||
	     fnmatch(p->glob, f->plain, 0) == 0))
		return true;
	return false;
}

/* Selected by the patterns: matched by a positive one (or there are only
 * negative ones) and by no negative one. */
static bool selected(const struct pat *p, size_t n, const struct ft_func *f)
{
	bool any_pos = false, pos = false;

	for (size_t i = 0; i < n; i++) {
		if (p[i].neg) {
			if (pat_match(&p[i], f))
				return false;
		} else {
			any_pos = true;
			if (!pos && pat_match(&p[i], f))
				pos = true;
		}
	}
	return pos || !any_pos;
}

/* ---- Inlined functions (DWARF) -------------------------------------------- */

static int name_ptr_cmp(const void *a, const void *b)
{
	return strcmp((*(struct ft_func *const *)a)->pub.name,
		      (*(struct ft_func *const *)b)->pub.name);
}

/* An inline-only function of @o: a record of its own, unless a symbol of
 * the same name exists (a static function of that name in another unit,
 * or with code there): then its copies count for that symbol. */
static int add_inline_only(struct ft_obj *o, struct ft_func **byname,
			   const struct rw__ftd_func *d, size_t *cap)
{
	struct ft_func key = { .pub.name = d->name }, *kp = &key;
	struct ft_func **hit =
		o->n ? bsearch(&kp, byname, o->n, sizeof(*byname), name_ptr_cmp)
		     : NULL;
	struct ft_func *f;
	char *dem;

	if (hit) {
		(*hit)->pub.inlined += d->copies;
		return 0;
	}
	if (o->ninl == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct ft_func *v = realloc(o->inl, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		o->inl = v;
		*cap = nc;
	}
	f = &o->inl[o->ninl];
	memset(f, 0, sizeof(*f));
	f->pub.name = strdup(d->name);
	if (!f->pub.name)
		return -ENOMEM;
	dem = demangle(f->pub.name);
	f->obj = o;
	f->pub.object = o->path;
	f->pub.demangled = dem ? dem : f->pub.name;
	f->plain = dem ? strip_params(dem) : NULL;
	if (!f->plain)
		f->plain = f->pub.demangled;
	f->pub.status = -RW_ERR_INLINED;
	f->pub.inlined = d->copies;
	f->inl_callers = d->callers;
	o->ninl++;
	return 0;
}

/* Read @o's inlined functions from its DWARF, once: the inlined counts of
 * its functions and its inline-only functions. Without debug information
 * nothing is known (inlined stays 0). Objects rewire never traces are not
 * read. ft_lock held. */
static int load_inlined(struct ft_obj *o)
{
	struct rw__ftd_func *d = NULL;
	struct ft_func **byname = NULL;
	size_t nd = 0, cap = 0;
	int err;

	if (o->dwarf_read || o->excluded)
		return 0;
	err = rw__ftrace_dwarf_inlined(o->path, o->path, o->base, &d, &nd);
	if (!err && nd) {
		byname = malloc((o->n ? o->n : 1) * sizeof(*byname));
		if (!byname)
			err = -ENOMEM;
	}
	if (!err && nd) {
		for (size_t i = 0; i < o->n; i++)
			byname[i] = &o->funcs[i];
		qsort(byname, o->n, sizeof(*byname), name_ptr_cmp);
	}
	for (size_t i = 0; i < nd && !err; i++) {
		size_t lo = 0, hi = o->n;

		if (!d[i].addr) {
			err = add_inline_only(o, byname, &d[i], &cap);
			continue;
		}
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (o->funcs[mid].pub.addr < d[i].addr)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < o->n && o->funcs[lo].pub.addr == d[i].addr)
			o->funcs[lo].pub.inlined += d[i].copies;
		else if (lo > 0 && o->funcs[lo - 1].sled &&
			 o->funcs[lo - 1].sled + RW__ENTRY_LEN == d[i].addr)
			/* GCC's aarch64 DWARF begins a function after its
			 * patchable NOPs (and its BTI). */
			o->funcs[lo - 1].pub.inlined += d[i].copies;
	}
	free(byname);
	rw__ftrace_dwarf_free(d, nd);
	if (err) {
		/* Read again next time, from scratch. */
		for (size_t i = 0; i < o->n; i++)
			o->funcs[i].pub.inlined = 0;
		for (size_t i = 0; i < o->ninl; i++) {
			if (o->inl[i].plain != o->inl[i].pub.demangled)
				free((char *)o->inl[i].plain);
			if (o->inl[i].pub.demangled != o->inl[i].pub.name)
				free((char *)o->inl[i].pub.demangled);
			free((char *)o->inl[i].pub.name);
		}
		free(o->inl);
		o->inl = NULL;
		o->ninl = 0;
		return err;
	}
	o->dwarf_read = true;
	return 0;
}

/* Can a positive pattern of @p select a function of @o? */
static bool obj_wanted(const struct pat *p, size_t n, const struct ft_obj *o)
{
	bool any_pos = false;

	for (size_t i = 0; i < n; i++) {
		if (p[i].neg)
			continue;
		any_pos = true;
		if (obj_match(&p[i], o))
			return true;
	}
	return !any_pos;
}

/* The inline-only function the exact pattern @p names, if any. */
static const struct ft_func *inline_only(const struct pat *p)
{
	for (struct ft_obj *o = objects; o; o = o->next) {
		if (!o->loaded || !obj_match(p, o) || load_inlined(o))
			continue;
		for (size_t i = 0; i < o->ninl; i++)
			if (pat_match(p, &o->inl[i]))
				return &o->inl[i];
	}
	return NULL;
}

/* Does the exact pattern @p name a function with a symbol? */
static bool names_symbol(const struct pat *p)
{
	for (struct ft_obj *o = objects; o; o = o->next)
		for (size_t i = 0; o->loaded && i < o->n; i++)
			if (pat_match(p, &o->funcs[i]))
				return true;
	return false;
}

static int inlined_error(const struct ft_func *f)
{
	set_error("%s was inlined into its %u caller%s and has no code of its "
		  "own: it cannot be traced",
		  f->pub.demangled, f->inl_callers,
		  f->inl_callers == 1 ? "" : "s");
	return -RW_ERR_INLINED;
}

static const char *status_str(int st)
{
	switch (st) {
	case 0:
		return "traceable";
	case -EPERM:
		return "rewire's own code or a library rewire calls";
	case -RW_ERR_BREAKPOINT:
		return "another tool's breakpoint is on its entry";
	case -RW_ERR_INLINED:
		return "inlined into every caller, no code of its own";
	default:
		return "no patchable entry (built without "
		       "-fpatchable-function-entry)";
	}
}

/* Lower-case @s without wildcards, for suggestions. */
static void core_of(const char *s, char *out, size_t size)
{
	size_t k = 0;

	for (; *s && k + 1 < size; s++)
		if (!strchr("*?[]!", *s))
			out[k++] = (char)tolower((unsigned char)*s);
	out[k] = '\0';
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	if (!n)
		return false;
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

/* Is @name within two edits (case-insensitive) of @want? */
static bool close_to(const char *name, const char *want)
{
	size_t n = strlen(name), m = strlen(want);
	unsigned d[65], prev, tmp;

	if (n > 64 || m > 64 || (n > m ? n - m : m - n) > 2)
		return false;
	for (size_t j = 0; j <= m; j++)
		d[j] = (unsigned)j;
	for (size_t i = 1; i <= n; i++) {
		prev = d[0];
		d[0] = (unsigned)i;
		for (size_t j = 1; j <= m; j++) {
			unsigned c = tolower((unsigned char)name[i - 1]) !=
				     tolower((unsigned char)want[j - 1]);

			tmp = d[j];
			d[j] = d[j] + 1 < d[j - 1] + 1 ? d[j] + 1
						       : d[j - 1] + 1;
			if (prev + c < d[j])
				d[j] = prev + c;
			prev = tmp;
		}
	}
	return d[m] <= 2;
}

/* Does @name exist in a loaded object's symbol table as something other
 * than a function (a variable)? The path of that object, or NULL. Reads
 * the files again: only for an error message. ft_lock held. */
static const char *data_symbol_object(const char *name)
{
	for (struct ft_obj *o = objects; o; o = o->next) {
		int fd;
		Elf *elf;
		Elf_Scn *scn = NULL;
		GElf_Shdr sh;
		bool found = false;

		if (!o->loaded || o->excluded)
			continue;
		fd = open(o->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		while (elf && !found && (scn = elf_nextscn(elf, scn))) {
			Elf_Data *d;

			if (!gelf_getshdr(scn, &sh) || !sh.sh_entsize ||
			    (sh.sh_type != SHT_SYMTAB &&
			     sh.sh_type != SHT_DYNSYM))
				continue;
			d = elf_getdata(scn, NULL);
			for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize;
			     i++) {
				GElf_Sym sym;
				const char *sn;

				if (!gelf_getsym(d, (int)i, &sym) ||
				    sym.st_shndx == SHN_UNDEF ||
				    GELF_ST_TYPE(sym.st_info) == STT_FUNC ||
				    GELF_ST_TYPE(sym.st_info) == STT_GNU_IFUNC)
					continue;
				sn = elf_strptr(elf, sh.sh_link, sym.st_name);
				if (sn && strcmp(sn, name) == 0) {
					found = true;
					break;
				}
			}
		}
		if (elf)
			elf_end(elf);
		close(fd);
		if (found)
			return o->path;
	}
	return NULL;
}

/* Why nothing traceable matched: "no function matches" with names that
 * come close, or the matches that cannot be traced. */
static int explain_none(const struct pat *p, size_t n)
{
	char buf[ERRLEN], core[128];
	size_t len = 0, shown = 0, untraceable = 0, untraceable_syms;
	int first_status = 0;
	const struct ft_func *first_inl = NULL;

	buf[0] = '\0';
	for (struct ft_obj *o = objects; o; o = o->next) {
		if (!o->loaded)
			continue;
		for (size_t i = 0; i < o->n; i++) {
			struct ft_func *f = &o->funcs[i];

			if (!selected(p, n, f))
				continue;
			if (!untraceable++)
				first_status = f->pub.status;
			if (shown < 4 && len < sizeof(buf) - 200) {
				len += (size_t)snprintf(
					buf + len, sizeof(buf) - len,
					"%s%s (%s)", shown ? ", " : "",
					f->pub.demangled,
					status_str(f->pub.status));
				shown++;
			}
		}
	}
	untraceable_syms = untraceable;
	/* Functions that exist only inlined (their DWARF is read now). */
	for (struct ft_obj *o = objects; o && !untraceable_syms; o = o->next) {
		if (!o->loaded || !obj_wanted(p, n, o) || load_inlined(o))
			continue;
		for (size_t i = 0; i < o->ninl; i++) {
			struct ft_func *f = &o->inl[i];

			if (!selected(p, n, f))
				continue;
			if (!untraceable++)
				first_inl = f;
			if (shown < 4 && len < sizeof(buf) - 200) {
				len += (size_t)snprintf(
					buf + len, sizeof(buf) - len,
					"%s%s (%s)", shown ? ", " : "",
					f->pub.demangled,
					status_str(f->pub.status));
				shown++;
			}
		}
	}
	if (first_inl && n == 1 && !p[0].neg && !p[0].wild)
		return inlined_error(first_inl);
	if (untraceable) {
		bool exact = n == 1 && !p[0].neg && !p[0].wild;

		set_error("%zu function(s) match but none can be traced: "
			  "%s%s",
			  untraceable, buf, untraceable > shown ? ", ..." : "");
		if (exact && first_status == -RW_ERR_BREAKPOINT)
			return -RW_ERR_BREAKPOINT;
		return exact ? -RW_ERR_NOT_PATCHABLE : -ENOENT;
	}
	/* An object that is not loaded. */
	for (size_t k = 0; k < n; k++) {
		bool any = false;

		if (!p[k].object)
			continue;
		for (struct ft_obj *o = objects; o && !any; o = o->next)
			any = o->loaded && obj_match(&p[k], o);
		if (!any) {
			set_error("no loaded object matches %s (in %s%s@%s): "
				  "the program has not loaded it, or it has "
				  "another name",
				  p[k].object, p[k].neg ? "!" : "", p[k].glob,
				  p[k].object);
			return -ENOENT;
		}
	}
	/* A name that exists but is not a function's. */
	if (n == 1 && !p[0].neg && !p[0].wild) {
		const char *where = data_symbol_object(p[0].glob);

		if (where) {
			set_error("%s is not a function (a data symbol of "
				  "%s)",
				  p[0].glob, where);
			return -ENOENT;
		}
	}
	/* Suggestions: traceable functions whose name contains the core of
	 * a positive pattern. */
	for (size_t k = 0; k < n && shown < 5; k++) {
		if (p[k].neg)
			continue;
		core_of(p[k].glob, core, sizeof(core));
		if (strlen(core) < 3)
			continue;
		for (struct ft_obj *o = objects; o && shown < 5; o = o->next) {
			if (!o->loaded)
				continue;
			for (size_t i = 0; i < o->n && shown < 5; i++) {
				struct ft_func *f = &o->funcs[i];

				if (f->pub.status ||
				    (!contains_ci(f->pub.demangled, core) &&
				     !close_to(f->plain, core)))
					continue;
				len += (size_t)snprintf(
					buf + len, sizeof(buf) - len, "%s%s",
					shown ? ", " : "", f->plain);
				shown++;
			}
		}
	}
	set_error("no function matches %s%s%s%s", p[0].neg ? "!" : "",
		  p[0].glob, n > 1 ? " (and the other patterns)" : "",
		  shown ? "" : "");
	if (shown) {
		size_t l = strlen(ft_error);

		snprintf(ft_error + l, sizeof(ft_error) - l,
			 "; did you mean: %.600s?", buf);
	}
	return -ENOENT;
}

int rw_ftrace_list(const char *const *patterns, size_t npatterns,
		   int (*cb)(void *arg, const struct rw_ftrace_func *f),
		   void *arg)
{
	struct pat *p = NULL;
	int err;

	ft_error[0] = '\0';
	if (!cb) {
		set_error("no callback");
		return -EINVAL;
	}
	err = pats_parse(patterns, npatterns, &p);
	if (err)
		return err;
	err = rw__lock_acquire(&ft_lock);
	if (err)
		goto out;
	err = rw__lock_acquire(&rw__entry_lock);
	if (!err) {
		err = refresh();
		rw__lock_release(&rw__entry_lock);
	}
	/* Objects in load order: the list is newest first. */
	size_t nobj = 0;

	for (struct ft_obj *o = objects; o; o = o->next)
		nobj++;
	struct ft_obj **v = calloc(nobj ? nobj : 1, sizeof(*v));

	if (!err && !v)
		err = -ENOMEM;
	if (!err) {
		size_t k = nobj;

		for (struct ft_obj *o = objects; o; o = o->next)
			v[--k] = o;
		for (size_t j = 0; j < nobj && !err; j++) {
			if (!v[j]->loaded)
				continue;
			if (obj_wanted(p, npatterns, v[j]))
				err = load_inlined(v[j]);
			for (size_t i = 0; i < v[j]->n && !err; i++)
				if (selected(p, npatterns, &v[j]->funcs[i]))
					err = cb(arg, &v[j]->funcs[i].pub);
			for (size_t i = 0; i < v[j]->ninl && !err; i++)
				if (selected(p, npatterns, &v[j]->inl[i]))
					err = cb(arg, &v[j]->inl[i].pub);
		}
	}
	free(v);
	rw__lock_release(&ft_lock);
out:
	pats_free(p, npatterns);
	return err;
}

/* ---- Shadow stacks ----------------------------------------------------------- */

struct shadow_ent {
	/* The frame's key (RW__ENTRY_KEY): on x86-64 the stack slot of
	 * its return address; on aarch64 its CFA - 8, never dereferenced. */
	uintptr_t slot, orig;
	struct ft_func *f;
	uint64_t ts;
	uint64_t gen;	/* of the users array the entry saw */
	unsigned depth; /* at the entry */
#if defined(__aarch64__)
	/* Where the frame's return address is saved, as the last walk
	 * (a64_walk) found it, 0 if no walk did; how it is signed. */
	uintptr_t loc;
	int sign;    /* A64_SIGN_* */
	bool seen;   /* by the sweep's walk */
	bool hooked; /* its return address was replaced */
#endif
};

struct shadow {
	unsigned n;
	/* Odd while its owner changes it: another thread that reads it (a
	 * coroutine that migrated, a stack check) retries. */
	_Atomic unsigned seq;
	bool full_swept;	    /* swept when full and nothing was freed */
	_Atomic int no_hijack;	    /* being cancelled: no new hijacks */
	_Atomic int cancel_pending; /* pthread_cancel()ed */
	pthread_t self;
	_Atomic pid_t tid;   /* 0: free for another thread */
	struct shadow *next; /* all shadow stacks, for pthread_cancel */
#if defined(__aarch64__)
	/* Keys of elements whose frames returned on another thread
	 * (shadow_steal): the owner drops them (a64_reap). */
	_Atomic uintptr_t stolen[8];
	_Atomic int nstolen;
#endif
	struct shadow_ent e[RW_FTRACE_GRAPH_DEPTH];
};

struct ft_tls {
	int busy;
	bool dead; /* its shadow stack was freed at thread exit */
	struct shadow *sh;
};

static __thread struct ft_tls ft_tls __attribute__((tls_model("initial-exec")));
static pthread_key_t shadow_key;
static _Atomic int shadow_key_ok;
static struct shadow *_Atomic shadows; /* pushed, never unlinked: reused */

/* Read a word anywhere without faulting: 0 and *out, or -1. */
static int safe_read(uintptr_t addr, uintptr_t *out)
{
	return rw__peek(addr, out, sizeof(*out)) ? 0 : -1;
}

static void shadow_release(void *arg)
{
	struct shadow *sh = arg;
	unsigned k = 0;
#if defined(__aarch64__)
	/* No slot to read: the frames on the thread's own stack are the
	 * ones that are gone (all of them if it cannot be known). */
	uintptr_t lo = 0, hi = 0;
	pthread_attr_t a;
	void *addr;
	size_t size;

	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		if (pthread_attr_getstack(&a, &addr, &size) == 0) {
			lo = (uintptr_t)addr;
			hi = lo + size;
		}
		pthread_attr_destroy(&a);
	}
#else
	uintptr_t tramp = rw__entry_return_tramp(), v;
#endif

	/* The thread's own frames are gone at its exit. A coroutine's that
	 * it ran may go on in another thread: their elements stay, in a
	 * stack that no thread owns (tid -1), until their returns take
	 * them (shadow_steal); then the stack is free again. */
	ft_tls.sh = NULL;
	ft_tls.dead = true;
	atomic_store_explicit(&sh->seq, sh->seq + 1, memory_order_relaxed);
	ft_fence(memory_order_release);
	for (unsigned i = 0; i < sh->n; i++)
#if defined(__aarch64__)
		if (hi && (sh->e[i].slot + 8 <= lo || sh->e[i].slot + 8 > hi))
#else
		if (safe_read(sh->e[i].slot, &v) == 0 && v == tramp)
#endif
			sh->e[k++] = sh->e[i];
	sh->n = k;
	atomic_store_explicit(&sh->seq, sh->seq + 1, memory_order_release);
	atomic_store(&sh->tid, k ? -1 : 0);
}

/* Cancels requested before their thread had a shadow stack. */
#define PENDING_CANCELS 64
static _Atomic(pthread_t) pending_cancel[PENDING_CANCELS];
static void cancel_now(struct shadow *sh, bool enabled);
static bool cancel_enabled(void);

/* The calling thread's shadow stack, made on first use; NULL if none can
 * be had. Stacks of exited threads are reused (never unmapped: a
 * pthread_cancel may still look at one). */
static struct shadow *shadow_get(void)
{
	struct ft_tls *me = &ft_tls;
	struct shadow *sh;

	if (me->sh || me->dead)
		return me->sh;
	if (!atomic_load(&shadow_key_ok))
		return NULL;
	pid_t tid = rw__gettid();

	for (sh = atomic_load(&shadows); sh; sh = sh->next) {
		pid_t z = 0;

		if (atomic_compare_exchange_strong(&sh->tid, &z, tid))
			break;
	}
	if (!sh) {
		sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (sh == MAP_FAILED)
			return NULL;
		sh->tid = tid;
		sh->next = atomic_load(&shadows);
		while (!atomic_compare_exchange_weak(&shadows, &sh->next, sh))
			;
	}
	sh->n = 0;
	atomic_store(&sh->no_hijack, 0);
	atomic_store(&sh->cancel_pending, 0);
#if defined(__aarch64__)
	for (unsigned j = 0; j < 8; j++)
		atomic_store(&sh->stolen[j], 0);
	atomic_store(&sh->nstolen, 0);
#endif
	sh->self = pthread_self();
	me->sh = sh;
	if (pthread_setspecific(shadow_key, sh) != 0) {
		me->sh = NULL;
		atomic_store(&sh->tid, 0);
		return NULL;
	}
	for (int i = 0; i < PENDING_CANCELS; i++) {
		pthread_t p = atomic_load(&pending_cancel[i]);

		if (p && pthread_equal(p, sh->self) &&
		    atomic_compare_exchange_strong(&pending_cancel[i], &p,
						   (pthread_t)0)) {
			atomic_store(&sh->cancel_pending, 1);
			cancel_now(sh, cancel_enabled());
		}
	}
	return sh;
}

static void seq_begin(struct shadow *sh)
{
	atomic_store_explicit(&sh->seq, sh->seq + 1, memory_order_relaxed);
	ft_fence(memory_order_release);
}

static void seq_end(struct shadow *sh)
{
	atomic_store_explicit(&sh->seq, sh->seq + 1, memory_order_release);
}

/* Remove element @i (the owner, inside seq_begin/seq_end). */
static void shadow_remove(struct shadow *sh, unsigned i)
{
	memmove(&sh->e[i], &sh->e[i + 1], (sh->n - i - 1) * sizeof(sh->e[0]));
	sh->n--;
	sh->full_swept = false;
}

#if !defined(__aarch64__)
/*
 * Drop stale elements: from the top, while an element's slot is at or
 * below @slot and no longer holds the return trampoline. An element at
 * @slot itself whose slot does hold it is the caller of a sibling call
 * (G hijacked the slot, then jumped to F, which is entered with G's
 * return address slot): it stays, and F's element returns to the
 * trampoline, which then finds G's.
 */
static void shadow_trim(struct shadow *sh, uintptr_t slot, uintptr_t tramp)
{
	while (sh->n) {
		struct shadow_ent *t = &sh->e[sh->n - 1];
		uintptr_t v;

		if (t->slot > slot)
			break;
		if (t->slot == slot ? *(const uintptr_t *)slot == tramp
				    : safe_read(t->slot, &v) == 0 && v == tramp)
			break; /* live: a sibling call, or another stack */
		shadow_remove(sh, sh->n - 1);
	}
}

/* Full: keep only the elements whose slot still holds the trampoline.
 * Not again until an element is gone: a deep recursion would pay the
 * sweep on every call. */
static void shadow_sweep(struct shadow *sh, uintptr_t tramp)
{
	unsigned k = 0;

	if (sh->full_swept)
		return;
	for (unsigned i = 0; i < sh->n; i++) {
		uintptr_t v;

		if (safe_read(sh->e[i].slot, &v) == 0 && v == tramp)
			sh->e[k++] = sh->e[i];
	}
	sh->full_swept = k == sh->n;
	sh->n = k;
}

#endif

/*
 * Look for the element of @slot in another thread's shadow stack (a
 * coroutine that began on that thread and returns on this one), without
 * disturbing its owner: copy it under the sequence count, and make the
 * slot say that its frame returned, so that the owner drops the element
 * at its next trim or sweep. 0 and *e, or -1.
 */
static int shadow_steal(const struct shadow *mine, uintptr_t slot,
			uintptr_t tramp, struct shadow_ent *e)
{
	for (struct shadow *sh = atomic_load(&shadows); sh; sh = sh->next) {
		if (sh == mine || !atomic_load(&sh->tid))
			continue;
		if (atomic_load(&sh->tid) == -1) {
			/* Nobody owns it: take the element out, under the
			 * sequence count used as a lock among stealers. */
			unsigned s0 = 0;
			bool found = false, locked = false;

			for (int tries = 0; tries < 100000 && !locked;
			     tries++) {
				s0 = atomic_load(&sh->seq);
				locked = !(s0 & 1) &&
					 atomic_compare_exchange_strong(
						 &sh->seq, &s0, s0 + 1);
				if (!locked)
					sched_yield();
			}
			if (!locked)
				continue;
			for (unsigned i = sh->n; i-- > 0;) {
				if (sh->e[i].slot == slot &&
				    sh->e[i].orig != tramp) {
					*e = sh->e[i];
					shadow_remove(sh, i);
					found = true;
					break;
				}
			}
			bool empty = sh->n == 0;

			atomic_store_explicit(&sh->seq, s0 + 2,
					      memory_order_release);
			if (empty)
				atomic_store(&sh->tid, 0);
			if (found)
				return 0;
			continue;
		}
		for (int tries = 0; tries < 1000; tries++) {
			unsigned s0 = atomic_load_explicit(
				&sh->seq, memory_order_acquire);
			bool found = false;

			if (s0 & 1)
				continue;
			unsigned n = sh->n;

			for (unsigned i = n <= RW_FTRACE_GRAPH_DEPTH ? n : 0;
			     i-- > 0;) {
				if (sh->e[i].slot == slot &&
				    sh->e[i].orig != tramp) {
					*e = sh->e[i];
					found = true;
					break;
				}
			}
			ft_fence(memory_order_acquire);
			if (atomic_load_explicit(&sh->seq,
						 memory_order_relaxed) != s0)
				continue;
			if (!found)
				break;
#if defined(__aarch64__)
			/* Tell the owner (a64_reap): nothing in the stack
			 * says that the frame returned. If the tombstones
			 * are all taken the element stays, stale. */
			for (unsigned j = 0; j < 8; j++) {
				uintptr_t z = 0;

				if (atomic_compare_exchange_strong(
					    &sh->stolen[j], &z, slot)) {
					atomic_fetch_add(&sh->nstolen, 1);
					break;
				}
			}
#else
			*(uintptr_t *)slot = e->orig;
#endif
			return 0;
		}
	}
	return -1;
}

#if !defined(__aarch64__)
/* Put every real return address back and empty the stack: an unwinder is
 * about to follow them and the frames will not return. Async-signal-safe. */
static void shadow_restore(struct shadow *sh)
{
	uintptr_t tramp = rw__entry_return_tramp();

	if (!sh)
		return;
	seq_begin(sh);
	for (unsigned i = sh->n; i-- > 0;) {
		uintptr_t v;

		if (safe_read(sh->e[i].slot, &v) == 0 && v == tramp)
			*(uintptr_t *)sh->e[i].slot = sh->e[i].orig;
	}
	sh->n = 0;
	seq_end(sh);
}

/*
 * Put every real return address back, keeping the elements: an unwinder
 * is about to read the stack (backtrace, or the search phase of an
 * exception). shadow_rehook() hooks again the frames that are still
 * there. From the top: a sibling call's element holds the trampoline as
 * its real address, its caller's element the real one.
 */
static void shadow_unhook(struct shadow *sh)
{
	uintptr_t tramp = rw__entry_return_tramp();

	if (!sh)
		return;
	for (unsigned i = sh->n; i-- > 0;) {
		uintptr_t v;

		if (safe_read(sh->e[i].slot, &v) == 0 && v == tramp)
			*(uintptr_t *)sh->e[i].slot = sh->e[i].orig;
	}
}

/*
 * After an unwinder: the elements of frames at or above @keep (the stack
 * pointer of the frame that goes on) whose slot still holds the real
 * address get the trampoline again; the others are gone (frames an
 * exception left) and dropped. Bottom up, the reverse of unhook.
 */
static void shadow_rehook(struct shadow *sh, uintptr_t keep)
{
	uintptr_t tramp = rw__entry_return_tramp();
	unsigned k = 0;

	if (!sh || atomic_load(&sh->no_hijack))
		return;
	seq_begin(sh);
	for (unsigned i = 0; i < sh->n; i++) {
		struct shadow_ent *e = &sh->e[i];
		uintptr_t v;

		if (e->slot < keep || safe_read(e->slot, &v) != 0)
			continue;
		if (v == e->orig && e->orig != tramp)
			*(uintptr_t *)e->slot = tramp;
		else if (v != tramp)
			continue; /* the frame returned or was left */
		sh->e[k++] = *e;
	}
	sh->n = k;
	sh->full_swept = false;
	seq_end(sh);
}

/*
 * longjmp from @from (the stack pointer in the jumping frame) to a frame
 * whose stack pointer is @to: the frames in between are left. Their
 * elements are dropped, the real address written back first where the
 * slot still holds the trampoline (so that a wrong guess about which
 * frames are left only costs the trace of a return).
 */
static void shadow_leave(struct shadow *sh, uintptr_t from, uintptr_t to)
{
	uintptr_t tramp = rw__entry_return_tramp();
	unsigned k = 0;

	if (!sh || to <= from)
		return;
	seq_begin(sh);
	for (unsigned i = 0; i < sh->n; i++) {
		struct shadow_ent *e = &sh->e[i];
		uintptr_t v;

		if (e->slot < from || e->slot >= to) {
			sh->e[k++] = *e;
			continue;
		}
		if (safe_read(e->slot, &v) == 0 && v == tramp)
			*(uintptr_t *)e->slot = e->orig;
	}
	sh->n = k;
	sh->full_swept = false;
	seq_end(sh);
}

#else
/*
 * aarch64 (src/arch/aarch64/trace.c). The key of an element is its
 * frame's CFA - 8, and nothing is stored there: the function's prologue
 * saved the return address (the trampoline's, signed by its PACIASP or
 * PACIBSP with the CFA as modifier when it uses pointer authentication)
 * wherever its CFI says, or kept it in X30 (a leaf). Where a real return
 * address must be written back (an unwinder is about to follow the
 * frames, or they are left), a walk of the calling thread's stack by its
 * CFI (a64_walk) finds every frame whose return address is the
 * trampoline's, and where its CFI saved it: the element of that CFA
 * gives the real address, written back signed as the trampoline's was,
 * so the function's AUTIASP and any unwinder authenticate it. A frame
 * whose return address is not in memory (a register: impossible for a
 * function that called something) or is not the trampoline's in the form
 * expected is left alone: its unwinder stops there, as it would without
 * rewire's unhooking. Liveness: without a slot to read, an element is
 * dropped at a push only when a new call has the same CFA and did not
 * come from the trampoline (a sibling call's does), and, when the stack
 * is full, by a walk: elements whose CFA lies on the stretch of stack the
 * walk covered but that no hooked frame there has are gone. Elements
 * below the current frame on another stack (a suspended coroutine) stay.
 */
enum { A64_SIGN_NONE, A64_SIGN_A, A64_SIGN_B };

#define A64_WALK_MAX 4096
#define A64_SEGS 8
/* A step that moves the stack pointer up by more than this starts a new
 * stretch of the walk's coverage (another stack: a signal stack, a
 * coroutine's): the stack between is not known to be this one. */
#define A64_SEG_GAP (256 * 1024)

static uintptr_t ft_real_return(pid_t tid, uintptr_t slot);

/* Without its pointer authentication code (XPACLRI: a hint, a NOP
 * without pointer authentication). */
static uintptr_t a64_strip(uintptr_t p)
{
	register uintptr_t x30 __asm__("x30") = p;

	__asm__("hint #7" : "+r"(x30));
	return x30;
}

/* @p signed as PACIASP (A) or PACIBSP (B) signs X30 with SP = @cfa:
 * PACIA1716, PACIB1716, hints too. */
static uintptr_t a64_sign(uintptr_t p, uintptr_t cfa, int sign)
{
	register uintptr_t x17 __asm__("x17") = p;
	register uintptr_t x16 __asm__("x16") = cfa;

	if (sign == A64_SIGN_A)
		__asm__("hint #8" : "+r"(x17) : "r"(x16));
	else if (sign == A64_SIGN_B)
		__asm__("hint #10" : "+r"(x17) : "r"(x16));
	return x17;
}

/* The element of the frame of key @key with a real return address (not
 * the trampoline: a sibling call's), from the top; NULL. */
static struct shadow_ent *a64_find(struct shadow *sh, uintptr_t key,
				   uintptr_t tramp)
{
	for (unsigned i = sh ? sh->n : 0; i-- > 0;)
		if (sh->e[i].slot == key && sh->e[i].orig != tramp)
			return &sh->e[i];
	return NULL;
}

struct a64_walk {
	struct shadow *sh;
	void (*fn)(struct a64_walk *w, uintptr_t key, uintptr_t loc, int sign);
	uintptr_t lo, hi; /* unhook: keys in [lo, hi) */
	struct {
		uintptr_t lo, hi;
	} seg[A64_SEGS]; /* the stretches of stack covered */
	unsigned nseg;
};

static void a64_cover(struct a64_walk *w, uintptr_t from, uintptr_t to)
{
	if (w->nseg && to >= w->seg[w->nseg - 1].hi &&
	    from >= w->seg[w->nseg - 1].lo && from <= w->seg[w->nseg - 1].hi &&
	    to - from <= A64_SEG_GAP) {
		w->seg[w->nseg - 1].hi = to;
		return;
	}
	if (w->nseg == A64_SEGS || to < from || to - from > A64_SEG_GAP)
		return;
	w->seg[w->nseg].lo = from;
	w->seg[w->nseg].hi = to;
	w->nseg++;
}

static bool a64_covered(const struct a64_walk *w, uintptr_t key)
{
	for (unsigned i = 0; i < w->nseg; i++)
		if (key + 8 > w->seg[i].lo && key + 8 <= w->seg[i].hi)
			return true;
	return false;
}

/*
 * A walk of the calling thread's stack by its CFI (.eh_frame, found with
 * dl_iterate_phdr and .eh_frame_hdr), as libgcc's unwinder does it: only
 * what GCC and the assemblers emit for aarch64 (a CFA from SP or X29 and
 * an offset; registers saved at CFA offsets; DW_CFA_AARCH64_negate_ra_state,
 * which libunwind 1.6 refuses) and the kernel's signal frames (the
 * sigreturn trampoline: the interrupted registers are in the ucontext
 * above it). Anything else ends the walk early (0), never a guess. It
 * tracks SP, X29 and X30 with the addresses they were saved at.
 */
enum { A64_SAME, A64_UNDEF, A64_OFF, A64_VALOFF, A64_UNKNOWN };

struct a64_rule {
	uint8_t how;
	int32_t off;
};

struct a64_row {
	unsigned cfa_reg;
	intptr_t cfa_off;
	bool cfa_ok;
	bool ra_signed;	       /* DW_CFA_AARCH64_negate_ra_state toggles it */
	struct a64_rule r[31]; /* X0-X30 */
};

struct a64_fde {
	uintptr_t start;
	const uint8_t *cie_ins, *cie_end, *ins, *end;
	uintptr_t code_align;
	intptr_t data_align;
	uintptr_t ra;
	bool bkey; /* 'B' augmentation: return addresses signed with key B */
};

struct a64_state {
	uintptr_t pc, sp, x29, x30, loc29, loc30;
	bool exact; /* pc is not a return address (first frame, signal) */
};

/* A LEB128's bits; @shift and @last (its last byte) for the sign. */
static uintptr_t a64_leb(const uint8_t **p, unsigned *shift, uint8_t *last)
{
	uintptr_t v = 0;
	uint8_t b;

	*shift = 0;
	do {
		b = *(*p)++;
		if (*shift < 64)
			v |= (uintptr_t)(b & 0x7f) << *shift;
		*shift += 7;
	} while (b & 0x80);
	*last = b;
	return v;
}

static uintptr_t a64_uleb(const uint8_t **p)
{
	unsigned shift;
	uint8_t last;

	return a64_leb(p, &shift, &last);
}

static intptr_t a64_sleb(const uint8_t **p)
{
	unsigned shift;
	uint8_t last;
	uintptr_t v = a64_leb(p, &shift, &last);

	if (shift < 64 && (last & 0x40))
		v |= ~(uintptr_t)0 << shift;
	return (intptr_t)v;
}

/* A pointer encoded as @enc (DW_EH_PE_*) at *p; @datarel for datarel. */
static bool a64_enc(const uint8_t **p, uint8_t enc, uintptr_t datarel,
		    uintptr_t *out)
{
	const uint8_t *s = *p;
	uintptr_t v;

	if (enc == 0xff) {
		*out = 0;
		return true;
	}
	switch (enc & 0x0f) {
	case 0x01:
		v = a64_uleb(&s);
		break;
	case 0x09:
		v = (uintptr_t)a64_sleb(&s);
		break;
	case 0x00: /* absptr */
	case 0x02: /* udata2, 4, 8; sdata2, 4, 8 (bit 3: signed) */
	case 0x03:
	case 0x04:
	case 0x0a:
	case 0x0b:
	case 0x0c: {
		unsigned n = (enc & 7) == 2 ? 2 : (enc & 7) == 3 ? 4 : 8;

		v = 0;
		memcpy(&v, s, n); /* little-endian */
		if ((enc & 8) && n < 8 && (v >> (8 * n - 1)) & 1)
			v |= ~(uintptr_t)0 << (8 * n);
		s += n;
		break;
	}
	default:
		return false;
	}
	switch (enc & 0x70) {
	case 0x00:
		break;
	case 0x10:
		v += (uintptr_t)*p;
		break;
	case 0x30:
		v += datarel;
		break;
	default:
		return false;
	}
	if (enc & 0x80)
		memcpy(&v, (const void *)v, 8);
	*p = s;
	*out = v;
	return true;
}

struct a64_obj {
	uintptr_t pc, hdr;
	bool in;
};

static int a64_obj_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct a64_obj *q = arg;
	uintptr_t hdr = 0;
	bool in = false;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t s = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && q->pc >= s &&
		    q->pc < s + ph->p_memsz)
			in = true;
		else if (ph->p_type == PT_GNU_EH_FRAME)
			hdr = s;
	}
	if (!in)
		return 0;
	q->in = true;
	q->hdr = hdr;
	return 1;
}

/* The FDE covering @pc and its CIE. 0, or -1. */
static int a64_find_fde(uintptr_t pc, struct a64_fde *f)
{
	struct a64_obj q = { .pc = pc };
	const uint8_t *h, *p, *fde, *c, *cie;
	uintptr_t eh, cnt, range;
	size_t lo, hi;
	const int32_t *tab;
	uint32_t len;
	int32_t id;
	uint8_t fde_enc = 0;
	const char *aug;
	bool z = false;

	dl_iterate_phdr(a64_obj_cb, &q);
	if (!q.in || !q.hdr)
		return -1;
	h = (const uint8_t *)q.hdr;
	p = h + 4;
	if (h[0] != 1 || h[3] != 0x3b || !a64_enc(&p, h[1], q.hdr, &eh) ||
	    !a64_enc(&p, h[2], q.hdr, &cnt) || cnt == 0)
		return -1;
	tab = (const int32_t *)p;
	lo = 0;
	hi = cnt;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if ((uintptr_t)((intptr_t)q.hdr + tab[2 * mid]) <= pc)
			lo = mid;
		else
			hi = mid;
	}
	if ((uintptr_t)((intptr_t)q.hdr + tab[2 * lo]) > pc)
		return -1;
	fde = (const uint8_t *)((intptr_t)q.hdr + tab[2 * lo + 1]);
	memcpy(&len, fde, 4);
	memcpy(&id, fde + 4, 4);
	if (len == 0 || len == 0xffffffffu || id == 0)
		return -1;
	f->end = fde + 4 + len;
	cie = fde + 4 - id;
	p = fde + 8;
	memcpy(&len, cie, 4);
	if (len == 0 || len == 0xffffffffu)
		return -1;
	f->cie_end = cie + 4 + len;
	c = cie + 8;
	if (*c != 1 && *c != 3 && *c != 4)
		return -1;
	bool v1 = *c++ == 1;

	aug = (const char *)c;
	c += strlen(aug) + 1;
	f->code_align = a64_uleb(&c);
	f->data_align = a64_sleb(&c);
	f->ra = v1 ? *c++ : a64_uleb(&c);
	if (aug[0] == 'z') {
		uintptr_t alen = a64_uleb(&c), dummy;
		const uint8_t *aend = c + alen;

		z = true;
		f->bkey = false;
		for (const char *a = aug + 1; *a; a++) {
			if (*a == 'R') {
				fde_enc = *c++;
			} else if (*a == 'P') {
				uint8_t penc = *c++;

				if (!a64_enc(&c, penc & 0x7f, 0, &dummy))
					return -1;
			} else if (*a == 'L') {
				c++;
			} else if (*a == 'B') {
				f->bkey = true;
			} else if (*a != 'S' && *a != 'G') {
				break;
			}
		}
		c = aend;
	} else if (aug[0]) {
		return -1;
	} else {
		f->bkey = false;
	}
	f->cie_ins = c;
	if (!a64_enc(&p, fde_enc, 0, &f->start) ||
	    !a64_enc(&p, fde_enc & 0x0f, 0, &range))
		return -1;
	if (pc < f->start || pc - f->start >= range)
		return -1;
	if (z)
		p += a64_uleb(&p);
	f->ins = p;
	return 0;
}

static void a64_set(struct a64_row *row, uintptr_t reg, uint8_t how,
		    intptr_t off)
{
	if (reg < 31) {
		row->r[reg].how = how;
		row->r[reg].off = (int32_t)off;
	}
}

/* Run CFA instructions [p, end) up to @pc (@loc: the row's address). */
static int a64_run(const uint8_t *p, const uint8_t *end,
		   const struct a64_fde *f, uintptr_t pc, uintptr_t *loc,
		   struct a64_row *row, const struct a64_row *init)
{
	struct a64_row stack[4];
	unsigned ns = 0;
	intptr_t da = f->data_align;

	while (p < end) {
		uint8_t op = *p++;
		uintptr_t reg, adv = 0;

		if ((op & 0xc0) == 0x40) {
			adv = (op & 0x3f) * f->code_align;
		} else if ((op & 0xc0) == 0x80) {
			reg = op & 0x3f;
			a64_set(row, reg, A64_OFF, (intptr_t)a64_uleb(&p) * da);
			continue;
		} else if ((op & 0xc0) == 0xc0) {
			reg = op & 0x3f;
			if (init && reg < 31)
				row->r[reg] = init->r[reg];
			else
				a64_set(row, reg, A64_SAME, 0);
			continue;
		} else {
			switch (op) {
			case 0x00: /* nop */
				continue;
			case 0x2d: /* AARCH64_negate_ra_state */
				row->ra_signed = !row->ra_signed;
				continue;
			case 0x02:
				adv = *p++ * f->code_align;
				break;
			case 0x03: {
				uint16_t x;

				memcpy(&x, p, 2);
				p += 2;
				adv = x * f->code_align;
				break;
			}
			case 0x04: {
				uint32_t x;

				memcpy(&x, p, 4);
				p += 4;
				adv = x * f->code_align;
				break;
			}
			case 0x05:
				reg = a64_uleb(&p);
				a64_set(row, reg, A64_OFF,
					(intptr_t)a64_uleb(&p) * da);
				continue;
			case 0x06:
				reg = a64_uleb(&p);
				if (init && reg < 31)
					row->r[reg] = init->r[reg];
				continue;
			case 0x07:
				a64_set(row, a64_uleb(&p), A64_UNDEF, 0);
				continue;
			case 0x08:
				a64_set(row, a64_uleb(&p), A64_SAME, 0);
				continue;
			case 0x09:
				reg = a64_uleb(&p);
				(void)a64_uleb(&p);
				a64_set(row, reg, A64_UNKNOWN, 0);
				continue;
			case 0x0a:
				if (ns == 4)
					return -1;
				stack[ns++] = *row;
				continue;
			case 0x0b:
				if (!ns)
					return -1;
				*row = stack[--ns];
				continue;
			case 0x0c:
				row->cfa_reg = (unsigned)a64_uleb(&p);
				row->cfa_off = (intptr_t)a64_uleb(&p);
				row->cfa_ok = true;
				continue;
			case 0x0d:
				row->cfa_reg = (unsigned)a64_uleb(&p);
				continue;
			case 0x0e:
				row->cfa_off = (intptr_t)a64_uleb(&p);
				continue;
			case 0x0f:
				p += a64_uleb(&p);
				row->cfa_ok = false;
				continue;
			case 0x10:
			case 0x16:
				reg = a64_uleb(&p);
				p += a64_uleb(&p);
				a64_set(row, reg, A64_UNKNOWN, 0);
				continue;
			case 0x11:
				reg = a64_uleb(&p);
				a64_set(row, reg, A64_OFF, a64_sleb(&p) * da);
				continue;
			case 0x12:
				row->cfa_reg = (unsigned)a64_uleb(&p);
				row->cfa_off = a64_sleb(&p) * da;
				row->cfa_ok = true;
				continue;
			case 0x13:
				row->cfa_off = a64_sleb(&p) * da;
				continue;
			case 0x14:
				reg = a64_uleb(&p);
				a64_set(row, reg, A64_VALOFF,
					(intptr_t)a64_uleb(&p) * da);
				continue;
			case 0x15:
				reg = a64_uleb(&p);
				a64_set(row, reg, A64_VALOFF,
					a64_sleb(&p) * da);
				continue;
			case 0x2e: /* GNU_args_size */
				(void)a64_uleb(&p);
				continue;
			case 0x2f:
				reg = a64_uleb(&p);
				a64_set(row, reg, A64_OFF,
					-(intptr_t)a64_uleb(&p) * da);
				continue;
			default:
				return -1;
			}
		}
		if (*loc + adv > pc)
			return 0;
		*loc += adv;
	}
	return 0;
}

/* The kernel's sigreturn trampoline: MOV X8, #139; SVC #0. */
static bool a64_sigreturn_at(uintptr_t pc)
{
	uint32_t w[2];

	return rw__peek(pc, w, sizeof(w)) && w[0] == 0xd2801168u &&
	       w[1] == 0xd4000001u;
}

/*
 * Step @s to its caller. 1: stepped, *ra_loc and *ra the return address
 * and where it was saved (0: not in memory), *sign how the frame's CFI
 * says it is signed (A64_SIGN_*: what libgcc's unwinder authenticates it
 * with); 2: stepped out of a signal frame (s->pc is the interrupted
 * instruction); 0: the end of the stack; -1: cannot.
 */
static int a64_step(struct a64_state *s, uintptr_t *ra_loc, uintptr_t *ra,
		    int *sign)
{
	struct a64_fde f;
	struct a64_row row, init;
	uintptr_t look, loc, cfa, v, nx29, nloc29;

	if (!s->exact && a64_sigreturn_at(s->pc)) {
		/* rt_sigframe: siginfo, then the ucontext; regs[31], sp
		 * and pc follow one another in its mcontext. */
		uintptr_t at = s->sp + sizeof(siginfo_t) +
			       offsetof(ucontext_t, uc_mcontext.regs);
		uint64_t r[33];

		_Static_assert(offsetof(mcontext_t, sp) ==
					       offsetof(mcontext_t, regs) +
						       31 * 8 &&
				       offsetof(mcontext_t, pc) ==
					       offsetof(mcontext_t, sp) + 8,
			       "mcontext layout");
		if (!rw__peek(at, r, sizeof(r)))
			return -1;
		s->x29 = r[29];
		s->loc29 = at + 29 * 8;
		s->x30 = r[30];
		s->loc30 = at + 30 * 8;
		s->sp = r[31];
		s->pc = r[32];
		s->exact = true;
		return 2;
	}
	look = s->exact ? s->pc : s->pc - 1;
	if (a64_find_fde(look, &f) || f.ra != 30)
		return -1;
	memset(&row, 0, sizeof(row));
	loc = f.start;
	if (a64_run(f.cie_ins, f.cie_end, &f, look, &loc, &row, NULL))
		return -1;
	init = row;
	loc = f.start;
	if (a64_run(f.ins, f.end, &f, look, &loc, &row, &init) || !row.cfa_ok)
		return -1;
	if (row.cfa_reg == 31)
		cfa = s->sp + (uintptr_t)row.cfa_off;
	else if (row.cfa_reg == 29)
		cfa = s->x29 + (uintptr_t)row.cfa_off;
	else
		return -1;
	switch (row.r[30].how) {
	case A64_UNDEF:
		return 0;
	case A64_SAME:
		*ra = s->x30;
		*ra_loc = s->loc30;
		break;
	case A64_OFF:
		*ra_loc = cfa + (uintptr_t)row.r[30].off;
		if (safe_read(*ra_loc, ra) != 0)
			return -1;
		break;
	default:
		return -1;
	}
	nx29 = s->x29;
	nloc29 = s->loc29;
	if (row.r[29].how == A64_OFF) {
		nloc29 = cfa + (uintptr_t)row.r[29].off;
		if (safe_read(nloc29, &v) != 0)
			return -1;
		nx29 = v;
	} else if (row.r[29].how == A64_VALOFF) {
		nx29 = cfa + (uintptr_t)row.r[29].off;
		nloc29 = 0;
	} else if (row.r[29].how != A64_SAME) {
		nx29 = 0;
		nloc29 = 0;
	}
	*sign = !row.ra_signed ? A64_SIGN_NONE
		: f.bkey ? A64_SIGN_B
			 : A64_SIGN_A;
	s->sp = cfa;
	s->x29 = nx29;
	s->loc29 = nloc29;
	s->x30 = *ra;
	s->loc30 = *ra_loc;
	s->pc = a64_strip(*ra);
	s->exact = false;
	return *ra ? 1 : 0;
}

/*
 * Walk the calling thread's stack, calling w->fn for every frame whose
 * return address is the trampoline's, with its key and the address the
 * return address is saved at (0: not in memory), and going on from the
 * real address. 1 if the walk reached the end of the stack, 0 if it
 * stopped before.
 */
__attribute__((noinline)) static int a64_walk(struct a64_walk *w)
{
	uintptr_t tramp = rw__entry_return_tramp();
	uintptr_t *rec = __builtin_frame_address(0);
	struct a64_state s = {
		.pc = a64_strip((uintptr_t)__builtin_return_address(0)),
		.sp = (uintptr_t)__builtin_dwarf_cfa(),
		.x29 = rec[0],
		.loc29 = (uintptr_t)&rec[0],
	};
	uintptr_t psp = s.sp;

	w->nseg = 0;
	for (int n = 0; n < A64_WALK_MAX; n++) {
		uintptr_t loc = 0, raw = 0, key, real;
		struct shadow_ent *e;
		int sign = A64_SIGN_NONE;
		int r = a64_step(&s, &loc, &raw, &sign);

		if (r <= 0)
			return r == 0;
		a64_cover(w, psp, s.sp);
		psp = s.sp;
		if (r == 2 || s.pc != tramp)
			continue;
		key = s.sp - 8;
		e = a64_find(w->sh, key, tramp);
		real = e ? e->orig : ft_real_return(rw__gettid(), key);
		if (w->fn)
			w->fn(w, key, loc, sign);
		if (!real)
			return 0;
		s.pc = a64_strip(real);
	}
	return 0;
}

/* Write the real return address of the frame @key back at @loc, signed
 * as the frame's CFI says the trampoline's is (@sign), and remember
 * where. Not a guess from the value: a PAC of a few bits equals the
 * pointer's own upper bits now and then. */
static void a64_unhook_fn(struct a64_walk *w, uintptr_t key, uintptr_t loc,
			  int sign)
{
	uintptr_t tramp = rw__entry_return_tramp(), raw;
	struct shadow_ent *e = a64_find(w->sh, key, tramp);

	if (!e || !loc || key < w->lo || key >= w->hi ||
	    safe_read(loc, &raw) != 0 || raw != a64_sign(tramp, key + 8, sign))
		return;
	*(uintptr_t *)loc = a64_sign(e->orig, key + 8, sign);
	e->loc = loc;
	e->sign = sign;
}

/* Unhook the frames whose keys are in [lo, hi). */
static void a64_unhook(struct shadow *sh, uintptr_t lo, uintptr_t hi)
{
	struct a64_walk w = {
		.sh = sh, .fn = a64_unhook_fn, .lo = lo, .hi = hi
	};

	for (unsigned i = 0; i < sh->n; i++)
		sh->e[i].loc = 0;
	(void)a64_walk(&w);
}

/* Drop the elements whose frames returned on another thread. Owner,
 * inside seq_begin/seq_end. */
static void a64_reap(struct shadow *sh, uintptr_t tramp)
{
	for (unsigned j = 0; j < 8; j++) {
		uintptr_t k = atomic_exchange(&sh->stolen[j], 0);

		if (!k)
			continue;
		atomic_fetch_sub(&sh->nstolen, 1);
		for (unsigned i = sh->n; i-- > 0;) {
			if (sh->e[i].slot == k && sh->e[i].orig != tramp) {
				shadow_remove(sh, i);
				break;
			}
		}
	}
}

/*
 * At a push of the frame @key, from the top: an element with the same
 * key is gone, unless the call came from the trampoline (@sibling: X30
 * was the trampoline's at the entry), a sibling call of that frame. An
 * element below @key is gone if its frame was never hooked (it only
 * counted the depth of a thread being cancelled) or was unhooked and its
 * saved return address is not the trampoline's any more (as on x86-64:
 * the frame returned or was left); otherwise it may be another stack's
 * (a coroutine's) and it stays, with the ones under it.
 */
static void shadow_trim(struct shadow *sh, uintptr_t key, bool sibling,
			uintptr_t tramp)
{
	while (sh->n) {
		struct shadow_ent *t = &sh->e[sh->n - 1];
		uintptr_t v;

		if (t->slot > key || (t->slot == key && sibling))
			break;
		if (t->slot < key && t->hooked &&
		    (!t->loc || (safe_read(t->loc, &v) == 0 &&
				 v == a64_sign(tramp, t->slot + 8, t->sign))))
			break;
		shadow_remove(sh, sh->n - 1);
	}
}

static void a64_seen_fn(struct a64_walk *w, uintptr_t key, uintptr_t loc,
			int sign)
{
	(void)loc;
	(void)sign;
	for (unsigned i = 0; i < w->sh->n; i++)
		if (w->sh->e[i].slot == key)
			w->sh->e[i].seen = true;
}

/* Full: drop the elements that a walk proves gone. Not again until an
 * element is gone. Not inside seq_begin/seq_end. */
static void shadow_sweep(struct shadow *sh)
{
	struct a64_walk w = { .sh = sh, .fn = a64_seen_fn };
	unsigned k = 0;

	if (sh->full_swept)
		return;
	for (unsigned i = 0; i < sh->n; i++)
		sh->e[i].seen = false;
	if (a64_walk(&w) != 1) {
		sh->full_swept = true;
		return;
	}
	seq_begin(sh);
	for (unsigned i = 0; i < sh->n; i++)
		if (sh->e[i].seen || !a64_covered(&w, sh->e[i].slot))
			sh->e[k++] = sh->e[i];
	sh->full_swept = k == sh->n;
	sh->n = k;
	seq_end(sh);
}

static void shadow_unhook(struct shadow *sh)
{
	if (sh && sh->n)
		a64_unhook(sh, 0, UINTPTR_MAX);
}

static void shadow_restore(struct shadow *sh)
{
	if (!sh)
		return;
	shadow_unhook(sh);
	seq_begin(sh);
	sh->n = 0;
	seq_end(sh);
}

static void shadow_rehook(struct shadow *sh, uintptr_t keep)
{
	uintptr_t tramp = rw__entry_return_tramp();
	unsigned k = 0;

	if (!sh || atomic_load(&sh->no_hijack))
		return;
	seq_begin(sh);
	for (unsigned i = 0; i < sh->n; i++) {
		struct shadow_ent *e = &sh->e[i];
		uintptr_t v, cfa = e->slot + 8;

		if (e->slot < keep)
			continue;
		if (e->loc) {
			if (safe_read(e->loc, &v) != 0)
				continue;
			if (v == a64_sign(e->orig, cfa, e->sign))
				*(uintptr_t *)e->loc =
					a64_sign(tramp, cfa, e->sign);
			else if (v != a64_sign(tramp, cfa, e->sign))
				continue; /* the frame returned or was left */
			e->loc = 0;
		}
		sh->e[k++] = *e;
	}
	sh->n = k;
	sh->full_swept = false;
	seq_end(sh);
}

static void shadow_leave(struct shadow *sh, uintptr_t from, uintptr_t to)
{
	unsigned k = 0;
	bool any = false;

	if (!sh || to <= from)
		return;
	for (unsigned i = 0; i < sh->n && !any; i++)
		any = sh->e[i].slot >= from && sh->e[i].slot < to;
	if (!any)
		return;
	a64_unhook(sh, from, to);
	seq_begin(sh);
	for (unsigned i = 0; i < sh->n; i++)
		if (sh->e[i].slot < from || sh->e[i].slot >= to)
			sh->e[k++] = sh->e[i];
	sh->n = k;
	sh->full_swept = false;
	seq_end(sh);
}
#endif

/* The real return address at @slot of thread @tid (see entry.h): in its
 * shadow stack, else (a migrated coroutine) in any other. */
static uintptr_t ft_real_return(pid_t tid, uintptr_t slot)
{
	uintptr_t tramp = rw__entry_return_tramp();

	for (int pass = 0; pass < 2; pass++) {
		for (struct shadow *sh = atomic_load(&shadows); sh;
		     sh = sh->next) {
			pid_t owner = atomic_load(&sh->tid);

			if (!owner || (pass == 0) != (owner == tid))
				continue;
			unsigned n = sh->n;

			/* A sibling call's element returns to the
			 * trampoline: the real address is its caller's,
			 * further down. */
			for (unsigned i = n <= RW_FTRACE_GRAPH_DEPTH ? n : 0;
			     i-- > 0;)
				if (sh->e[i].slot == slot &&
				    sh->e[i].orig != tramp)
					return sh->e[i].orig;
		}
	}
	return 0;
}

/* ---- The hot path ------------------------------------------------------------- */

/* Count a hit that was not traced in every set of @f that wanted it. */
static void count_sets(struct ft_func *f, bool full)
{
	struct ft_users *u;

	rw_rcu_read_lock();
	u = rw_rcu_dereference(f->users);
	for (size_t i = 0; u && i < u->n; i++) {
		if (full && !u->sets[i]->probe.ret)
			continue;
		atomic_fetch_add_explicit(full ? &u->sets[i]->shadow_full
					       : &u->sets[i]->recursion,
					  1, memory_order_relaxed);
	}
	rw_rcu_read_unlock();
}

static void ft_enter(void *tdata, uintptr_t *slot)
{
	struct ft_func *f = tdata;
	struct ft_tls *me = &ft_tls;
	struct ft_users *u;
	uint64_t gen = 0;
	unsigned depth;
	uintptr_t key = RW__ENTRY_KEY(slot);

	if (me->busy) {
		count_sets(f, false);
		return;
	}
	me->busy = 1;
	depth = 0;
	if (me->sh && me->sh->n) {
		/* Frames left without a return are not counted. */
		seq_begin(me->sh);
#if defined(__aarch64__)
		if (atomic_load_explicit(&me->sh->nstolen,
					 memory_order_relaxed))
			a64_reap(me->sh, rw__entry_return_tramp());
		shadow_trim(me->sh, key, *slot == rw__entry_return_tramp(),
			    rw__entry_return_tramp());
#else
		shadow_trim(me->sh, (uintptr_t)slot, rw__entry_return_tramp());
#endif
		seq_end(me->sh);
		depth = me->sh->n;
	}
	rw_rcu_read_lock();
	u = rw_rcu_dereference(f->users);
	if (u) {
		for (size_t i = 0; i < u->n; i++) {
			const struct rw_ftrace_probe *p = &u->sets[i]->probe;

			if (p->entry)
				p->entry(p->data, &f->pub, *slot, depth);
			if (p->ret)
				gen = u->gen;
		}
	}
	rw_rcu_read_unlock();
	if (gen) {
		struct shadow *sh = shadow_get();
		uintptr_t tramp = rw__entry_return_tramp();

		if (sh) {
			/* A thread that is being cancelled keeps its frames
			 * as they are: the element only counts the depth. */
			bool hook = !atomic_load_explicit(&sh->no_hijack,
							  memory_order_relaxed);

			/* Stale elements went before the probes ran (this
			 * thread was busy since: nothing pushed meanwhile). */
#if defined(__aarch64__)
			if (sh->n == RW_FTRACE_GRAPH_DEPTH)
				shadow_sweep(sh);
			seq_begin(sh);
#else
			seq_begin(sh);
			if (sh->n == RW_FTRACE_GRAPH_DEPTH)
				shadow_sweep(sh, tramp);
#endif
			if (sh->n < RW_FTRACE_GRAPH_DEPTH) {
				struct shadow_ent *e = &sh->e[sh->n];

				e->slot = key;
#if defined(__aarch64__)
				e->loc = 0;
				e->sign = A64_SIGN_NONE;
				e->hooked = hook;
#endif
				e->orig = *slot;
				e->f = f;
				e->gen = gen;
				e->depth = depth;
				e->ts = rw__now_ns();
				/* The element is complete before the return
				 * address points at the trampoline: a stack
				 * check may look at both. */
				sh->n++;
				seq_end(sh);
				atomic_signal_fence(memory_order_seq_cst);
				if (hook)
					*slot = tramp;
			} else {
				seq_end(sh);
				count_sets(f, true);
			}
		}
	}
	me->busy = 0;
}

static uintptr_t ft_return(uintptr_t sp)
{
	struct ft_tls *me = &ft_tls;
	struct shadow *sh = me->sh;
	uintptr_t slot = sp - sizeof(uintptr_t);
	uintptr_t tramp = rw__entry_return_tramp();
	struct shadow_ent e;
	int was_busy = me->busy;
	unsigned i = 0;

	/* A signal handler that runs a traced function while the stack is
	 * being changed gets no element of its own. */
	me->busy = 1;
#if defined(__aarch64__)
	if (sh && atomic_load_explicit(&sh->nstolen, memory_order_relaxed)) {
		seq_begin(sh);
		a64_reap(sh, tramp);
		seq_end(sh);
	}
#endif
	if (sh) {
		for (i = sh->n; i-- > 0;)
			if (sh->e[i].slot == slot)
				break;
	}
	if (sh && i != (unsigned)-1) {
		e = sh->e[i];
		/* Elements above it belong to other stacks (coroutines) or
		 * are stale; they stay for their own returns or a trim. */
		seq_begin(sh);
		shadow_remove(sh, i);
		seq_end(sh);
	} else if (shadow_steal(sh, slot, tramp, &e) == 0) {
		i = 0;
	} else {
		goto lost;
	}
	if (!was_busy) {
		struct ft_users *u;
		uint64_t ns = rw__now_ns() - e.ts;

		rw_rcu_read_lock();
		u = rw_rcu_dereference(e.f->users);
		if (u) {
			for (size_t k = 0; k < u->n; k++) {
				const struct rw_ftrace *t = u->sets[k];

				/* Only the sets that saw the entry. */
				if (t->probe.ret && t->attach_gen <= e.gen)
					t->probe.ret(t->probe.data, &e.f->pub,
						     e.orig, ns, e.depth);
			}
		}
		rw_rcu_read_unlock();
	}
	me->busy = was_busy;
	return e.orig;
lost:
	/* A return through the trampoline with no element anywhere: the
	 * only copy of the return address is lost. Cannot happen unless
	 * the stack was corrupted; going on would jump to a random
	 * address. */
	rw__log("function tracing: a return at sp %#lx has no shadow element",
		(unsigned long)sp);
	static const char msg[] = "rewire: function tracing lost a return "
				  "address (corrupted stack?); aborting\n";
	if (write(2, msg, sizeof(msg) - 1) < 0) {
	}
	abort();
}

/* ---- Attach and detach ------------------------------------------------------ */

static struct ft_users *users_with(const struct ft_users *u,
				   struct rw_ftrace *add,
				   const struct rw_ftrace *drop)
{
	size_t n = u ? u->n : 0;
	struct ft_users *v = malloc(sizeof(*v) + (n + 1) * sizeof(v->sets[0]));
	size_t k = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (u->sets[i] != drop)
			v->sets[k++] = u->sets[i];
	if (add)
		v->sets[k++] = add;
	v->n = k;
	v->gen = atomic_fetch_add(&users_gen, 1) + 1;
	if (k == 0) {
		free(v);
		return NULL;
	}
	return v;
}

static int pin_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct {
		uintptr_t addr;
		const char *name;
	} *q = arg;

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t s = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && q->addr >= s &&
		    q->addr < s + ph->p_memsz) {
			q->name = info->dlpi_name;
			return 1;
		}
	}
	return 0;
}

/* A reference on the shared object holding @addr (NULL for the program). */
static void *pin(uintptr_t addr)
{
	struct {
		uintptr_t addr;
		const char *name;
	} q = { addr, NULL };

	dl_iterate_phdr(pin_cb, &q);
	if (!q.name || !q.name[0])
		return NULL;
	return dlopen(q.name, RTLD_LAZY | RTLD_NOLOAD);
}

static void unpin_all(struct rw_ftrace *t)
{
	for (size_t i = 0; i < t->npins; i++)
		if (t->pins[i])
			dlclose(t->pins[i]);
	free(t->pins);
	t->pins = NULL;
	t->npins = 0;
}

/* Set the users of @t's functions (add or drop @t) and write the entries
 * that change. ft_lock held. On error nothing changed. */
static int change_users(struct rw_ftrace *t, bool add)
{
	struct rw__entry_change *ch = calloc(t->n ? t->n : 1, sizeof(*ch));
	struct ft_users **old = calloc(t->n ? t->n : 1, sizeof(*old));
	struct ft_users **fresh = calloc(t->n ? t->n : 1, sizeof(*fresh));
	size_t nch = 0;
	int err;

	if (!ch || !old || !fresh) {
		err = -ENOMEM;
		goto out;
	}
	err = rw__lock_acquire(&rw__entry_lock);
	if (err)
		goto out;
	for (size_t i = 0; i < t->n && !err; i++) {
		struct ft_func *f = t->funcs[i];

		if (!f->entry) {
			err = rw__entry_get(f->pub.addr, f->sled,
					    f->pub.demangled, &f->entry);
			if (err) {
				set_error("%s: the entry is not " RW__ENTRY_DESC
					  " any more",
					  f->pub.demangled);
				break;
			}
			f->entry->tdata = f;
		}
		old[i] = atomic_load(&f->users);
		fresh[i] = users_with(old[i], add ? t : NULL, add ? NULL : t);
		if (!fresh[i] && (add || (old[i] && old[i]->n > 1))) {
			err = -ENOMEM;
			break;
		}
	}
	if (err) {
		rw__lock_release(&rw__entry_lock);
		for (size_t i = 0; i < t->n; i++)
			free(fresh[i]);
		goto out;
	}
	for (size_t i = 0; i < t->n; i++) {
		struct ft_func *f = t->funcs[i];
		bool want = fresh[i] != NULL;

		if (want != f->entry->traced) {
			ch[nch].e = f->entry;
			ch[nch].traced = want;
			ch[nch].patch = f->entry->patch;
			nch++;
		}
	}
	/* Adding: the arrays first, so that the first hit finds them. */
	if (add)
		for (size_t i = 0; i < t->n; i++)
			rw_rcu_assign_pointer(t->funcs[i]->users, fresh[i]);
	rw__text_error_clear();
	err = rw__entry_apply(ch, nch);
	if (err) {
		if (rw__text_error()[0])
			set_error("cannot write the entries: %s",
				  rw__text_error());
		else
			set_error("cannot write the entries: %s",
				  rw_strerror(err));
		if (add)
			for (size_t i = 0; i < t->n; i++)
				rw_rcu_assign_pointer(t->funcs[i]->users,
						      old[i]);
	} else if (!add) {
		for (size_t i = 0; i < t->n; i++)
			rw_rcu_assign_pointer(t->funcs[i]->users, fresh[i]);
	}
	rw__lock_release(&rw__entry_lock);
	/* Whatever was unpublished may still be read by a probe call. */
	rw_rcu_synchronize();
	for (size_t i = 0; i < t->n; i++)
		free(err ? fresh[i] : old[i]);
out:
	free(ch);
	free(old);
	free(fresh);
	return err;
}

int rw_ftrace_attach(const char *const *patterns, size_t npatterns,
		     const struct rw_ftrace_probe *probe, unsigned flags,
		     struct rw_ftrace **out)
{
	struct pat *p = NULL;
	struct rw_ftrace *t;
	size_t cap = 0;
	int err;

	ft_error[0] = '\0';
	if (!out || !probe || (!probe->entry && !probe->ret) || flags) {
		set_error("%s", !out	 ? "no place for the result"
				: !probe ? "no probe"
				: flags	 ? "unknown flags"
					 : "a probe needs an entry or a "
					   "return function");
		return -EINVAL;
	}
	if (npatterns == 0) {
		set_error("no pattern: name the functions to trace");
		return -EINVAL;
	}
	if (!rw__arch_can_patch()) {
		set_error("function tracing needs code patching (this build "
			  "uses the generic backend)");
		return -EOPNOTSUPP;
	}
	if (probe->ret && !RW__ENTRY_GRAPH) {
		set_error("graph tracing (a probe with a return function) is "
			  "not available on this architecture yet: entry "
			  "probes are");
		return -EOPNOTSUPP;
	}
	if (rw__rcu_in_read_side()) {
		set_error("called from a probe (an RCU read-side critical "
			  "section)");
		return -EDEADLK;
	}
	err = pats_parse(patterns, npatterns, &p);
	if (err)
		return err;
	t = calloc(1, sizeof(*t));
	if (!t) {
		pats_free(p, npatterns);
		return -ENOMEM;
	}
	t->probe = *probe;
	err = rw__lock_acquire(&ft_lock);
	if (err) {
		set_error("called while this thread attaches or detaches");
		goto fail;
	}
	err = rw__lock_acquire(&rw__entry_lock);
	if (!err) {
		err = refresh();
		rw__lock_release(&rw__entry_lock);
	}
	for (struct ft_obj *o = objects; o && !err; o = o->next) {
		if (!o->loaded)
			continue;
		for (size_t i = 0; i < o->n; i++) {
			struct ft_func *f = &o->funcs[i];

			if (f->pub.status || !selected(p, npatterns, f))
				continue;
			if (t->n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct ft_func **v =
					realloc(t->funcs, nc * sizeof(*v));

				if (!v) {
					err = -ENOMEM;
					break;
				}
				t->funcs = v;
				cap = nc;
			}
			t->funcs[t->n++] = f;
		}
	}
	if (!err && t->n == 0)
		err = explain_none(p, npatterns);
	if (!err) {
		/* An exact name that cannot be traced is an error even when
		 * other patterns matched. */
		for (size_t k = 0; k < npatterns && !err; k++) {
			if (p[k].neg || p[k].wild)
				continue;
			for (struct ft_obj *o = objects; o && !err;
			     o = o->next) {
				for (size_t i = 0; o->loaded && i < o->n; i++) {
					struct ft_func *f = &o->funcs[i];

					if (f->pub.status &&
					    pat_match(&p[k], f)) {
						set_error(
							"%s cannot be traced:"
							" %s",
							f->pub.demangled,
							status_str(
								f->pub.status));
						err = f->pub.status == -EPERM
							      ? -EPERM
							      : f->pub.status;
						break;
					}
				}
			}
		}
	}
	/* An exact name that exists only inlined: an error too. */
	for (size_t k = 0; k < npatterns && !err; k++) {
		const struct ft_func *f;

		if (p[k].neg || p[k].wild || names_symbol(&p[k]))
			continue;
		f = inline_only(&p[k]);
		if (f)
			err = inlined_error(f);
	}
	if (!err) {
		qsort(t->funcs, t->n, sizeof(*t->funcs), func_ptr_cmp);
		t->pins = calloc(t->n, sizeof(*t->pins));
		if (!t->pins)
			err = -ENOMEM;
	}
	if (!err) {
		void *last = NULL;
		const struct ft_obj *lo = NULL;

		for (size_t i = 0; i < t->n; i++) {
			if (t->funcs[i]->obj == lo)
				continue;
			lo = t->funcs[i]->obj;
			last = pin(t->funcs[i]->pub.addr);
			if (last)
				t->pins[t->npins++] = last;
		}
		/* Every array made for it from here has a generation at
		 * least this one; every older array has a smaller one. */
		t->attach_gen = atomic_load(&users_gen) + 1;
		err = change_users(t, true);
	}
	rw__lock_release(&ft_lock);
	if (err)
		goto fail;
	pats_free(p, npatterns);
	rw__log("function tracing: %zu function(s) attached", t->n);
	*out = t;
	return 0;
fail:
	unpin_all(t);
	free(t->funcs);
	free(t);
	pats_free(p, npatterns);
	return err;
}

int rw_ftrace_detach(struct rw_ftrace *t)
{
	int err;

	ft_error[0] = '\0';
	if (!t) {
		set_error("no probe set");
		return -EINVAL;
	}
	if (rw__rcu_in_read_side() || ft_tls.busy) {
		set_error("called from a probe");
		return -EDEADLK;
	}
	err = rw__lock_acquire(&ft_lock);
	if (err) {
		set_error("called while this thread attaches or detaches");
		return err;
	}
	err = change_users(t, false);
	rw__lock_release(&ft_lock);
	if (err)
		return err;
	unpin_all(t);
	free(t->funcs);
	free(t);
	return 0;
}

size_t rw_ftrace_nfuncs(const struct rw_ftrace *t)
{
	return t ? t->n : 0;
}

const struct rw_ftrace_func *rw_ftrace_func_at(const struct rw_ftrace *t,
					       size_t i)
{
	return t && i < t->n ? &t->funcs[i]->pub : NULL;
}

void rw_ftrace_get_stats(const struct rw_ftrace *t, struct rw_ftrace_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (!t)
		return;
	s->recursion =
		atomic_load_explicit(&t->recursion, memory_order_relaxed);
	s->shadow_full =
		atomic_load_explicit(&t->shadow_full, memory_order_relaxed);
}

/* ---- Unwinders --------------------------------------------------------------- */

/*
 * Functions that walk the stack by its return addresses, or leave frames
 * without returning. Each puts the calling thread's real return addresses
 * back first, and calls the next definition:
 *
 *   backtrace, _Unwind_Backtrace	hook the frames again afterwards;
 *   _Unwind_RaiseException,	the frames the exception leaves are
 *   _Unwind_Resume_or_Rethrow	dropped when a handler catches it
 *				(__cxa_begin_catch), the others hooked
 *				again;
 *   longjmp and friends		the elements of the frames left go;
 *   pthread_exit, _Unwind_ForcedUnwind	every frame goes;
 *   pthread_cancel		the target thread does the same in
 *				rewire's signal handler if it has
 *				cancellation enabled, else when it
 *				enables it (pthread_setcancelstate).
 *
 * They are found only if librewire comes before the library that defines
 * them in the lookup order (linked before libgcc_s and libstdc++, or
 * preloaded: `rewire run`).
 */
#define RW_NEXT(type, name)      \
	static type next_##name; \
	if (!next_##name)        \
		next_##name = (type)dlsym(RTLD_NEXT, #name);

/* Declared here with opaque types: unwind.h is not needed to pass them on. */
int _Unwind_RaiseException(void *exc);
int _Unwind_Resume_or_Rethrow(void *exc);
int _Unwind_ForcedUnwind(void *exc, void *stop, void *arg);
int _Unwind_Backtrace(void *fn, void *arg);
int backtrace(void **buf, int size);
void *__cxa_begin_catch(void *exc);
void __longjmp_chk(sigjmp_buf env, int val);

typedef int (*unwind1_fn)(void *);
typedef int (*unwind3_fn)(void *, void *, void *);
typedef int (*unwind_bt_fn)(void *, void *);
typedef void *(*begin_catch_fn)(void *);

/* The stack pointer of the caller of the function that calls this (its
 * CFA: on aarch64 the frame record is not at the top of the frame). */
#if defined(__aarch64__)
#define CALLER_SP() ((uintptr_t)__builtin_dwarf_cfa())
#else
#define CALLER_SP() ((uintptr_t)__builtin_frame_address(0) + 16)
#endif

RW_EXPORT int _Unwind_RaiseException(void *exc)
{
	RW_NEXT(unwind1_fn, _Unwind_RaiseException)
	int r;

	shadow_unhook(ft_tls.sh);
	r = next__Unwind_RaiseException ? next__Unwind_RaiseException(exc)
					: 5 /* _URC_END_OF_STACK */;
	/* Only when no handler was found. */
	shadow_rehook(ft_tls.sh, 0);
	return r;
}

RW_EXPORT int _Unwind_Resume_or_Rethrow(void *exc)
{
	RW_NEXT(unwind1_fn, _Unwind_Resume_or_Rethrow)
	int r;

	shadow_unhook(ft_tls.sh);
	r = next__Unwind_Resume_or_Rethrow ? next__Unwind_Resume_or_Rethrow(exc)
					   : 5;
	shadow_rehook(ft_tls.sh, 0);
	return r;
}

RW_EXPORT void *__cxa_begin_catch(void *exc)
{
	RW_NEXT(begin_catch_fn, __cxa_begin_catch)
	/* The catching frame goes on: the frames below it were left. */
	shadow_rehook(ft_tls.sh, CALLER_SP());
	return next___cxa_begin_catch ? next___cxa_begin_catch(exc) : NULL;
}

RW_EXPORT int _Unwind_ForcedUnwind(void *exc, void *stop, void *arg)
{
	RW_NEXT(unwind3_fn, _Unwind_ForcedUnwind)
	shadow_restore(ft_tls.sh);
	return next__Unwind_ForcedUnwind
		       ? next__Unwind_ForcedUnwind(exc, stop, arg)
		       : 5;
}

RW_EXPORT int _Unwind_Backtrace(void *fn, void *arg)
{
	RW_NEXT(unwind_bt_fn, _Unwind_Backtrace)
	int r;

	shadow_unhook(ft_tls.sh);
	r = next__Unwind_Backtrace ? next__Unwind_Backtrace(fn, arg) : 5;
	shadow_rehook(ft_tls.sh, 0);
	return r;
}

typedef int (*backtrace_fn)(void **, int);
RW_EXPORT int backtrace(void **buf, int size)
{
	RW_NEXT(backtrace_fn, backtrace)
	void *tmp[257];
	int n = size < 256 ? size + 1 : 257, r;

	void **to = size < 256 ? tmp : buf;

	if (size <= 0 || !next_backtrace)
		return next_backtrace ? next_backtrace(buf, size) : 0;
	shadow_unhook(ft_tls.sh);
	/* This function's own frame is the first: not the caller's. */
	r = next_backtrace(to, size < 256 ? n : size);
	shadow_rehook(ft_tls.sh, 0);
	if (r <= 1)
		return 0;
	memmove(buf, to + 1, (size_t)(r - 1) * sizeof(*buf));
	return r - 1;
}

/*
 * The stack pointer a jmp_buf returns to: glibc's x86-64 layout keeps it
 * in word 6, mangled with the thread's pointer guard (%fs:0x30: xor, then
 * rotate left by 17).
 */
#if defined(__x86_64__)
static uintptr_t jmpbuf_sp(const void *env)
{
	uintptr_t v = ((const uintptr_t *)env)[6], guard;

	__asm__("mov %%fs:0x30, %0" : "=r"(guard));
	v = (v >> 17) | (v << (64 - 17));
	return v ^ guard;
}
#elif defined(__aarch64__)
/*
 * glibc's aarch64 layout: x19-x28, x29, x30, then SP in word 13, mangled
 * with the pointer guard by an exclusive or. The guard is a private
 * symbol of ld.so: it is learnt once (jmpbuf_learn(), from the
 * constructor) from a setjmp at a known stack pointer, as the
 * sanitizers' runtimes do; 0 (unknown: shadow_leave() does nothing, and
 * the frames left are dropped later) if two setjmps at different
 * depths disagree.
 */
static uintptr_t jmp_guard;
static bool jmp_guard_ok;

__attribute__((noinline)) static uintptr_t jmpbuf_guess(int depth)
{
	jmp_buf b;
	uintptr_t sp;
	volatile char pad[64];

	pad[0] = (char)depth;
	if (depth > 0)
		return jmpbuf_guess(depth - 1) + (uintptr_t)pad[0] * 0;
	__asm__ volatile("mov %0, sp" : "=r"(sp));
	if (_setjmp(b) != 0)
		return 0;
	return ((const uintptr_t *)b)[13] ^ sp;
}

static void jmpbuf_learn(void)
{
	uintptr_t a = jmpbuf_guess(0), b = jmpbuf_guess(3);

	jmp_guard = a;
	jmp_guard_ok = a == b;
}

static uintptr_t jmpbuf_sp(const void *env)
{
	return jmp_guard_ok ? ((const uintptr_t *)env)[13] ^ jmp_guard : 0;
}
#else
/* Without graph tracing (RW__ENTRY_GRAPH 0) no shadow stack has an
 * element: 0 makes shadow_leave() a no-op. */
static uintptr_t jmpbuf_sp(const void *env)
{
	(void)env;
	return 0;
}
#endif

/*
 * Each is defined under its exact symbol name (the asm label), not by its
 * C name: with _FORTIFY_SOURCE (Debian's and Fedora's default flags)
 * <setjmp.h> redirects longjmp, _longjmp and siglongjmp to
 * __longjmp_chk, and four definitions of __longjmp_chk do not assemble.
 */
#define RW_LONGJMP(name, type)                                              \
	typedef void (*name##_fn)(type, int);                               \
	RW_EXPORT __attribute__((noreturn)) void interpose_##name(          \
		type env, int val) __asm__(#name);                          \
	RW_EXPORT __attribute__((noreturn)) void interpose_##name(type env, \
								  int val)  \
	{                                                                   \
		RW_NEXT(name##_fn, name)                                    \
		shadow_leave(ft_tls.sh, CALLER_SP(), jmpbuf_sp(env));       \
		next_##name(env, val);                                      \
		__builtin_unreachable();                                    \
	}
RW_LONGJMP(longjmp, jmp_buf)
RW_LONGJMP(_longjmp, jmp_buf)
RW_LONGJMP(siglongjmp, sigjmp_buf)
RW_LONGJMP(__longjmp_chk, sigjmp_buf)

typedef void (*pthread_exit_fn)(void *);
RW_EXPORT __attribute__((noreturn)) void pthread_exit(void *ret)
{
	RW_NEXT(pthread_exit_fn, pthread_exit)
	/* The cleanups' calls are hooked as usual: they return before the
	 * unwinder goes on. */
	shadow_unhook(ft_tls.sh);
	next_pthread_exit(ret);
	__builtin_unreachable();
}

typedef int (*setcancelstate_fn)(int, int *);

/* A cancel is pending for the calling thread: if it can act on it, every
 * frame goes now and no call is hooked any more. */
static void cancel_now(struct shadow *sh, bool enabled)
{
	if (!enabled)
		return;
	/* The elements stay for the depth of the calls the cleanups
	 * make, which are not hooked: their frames are not live when the
	 * cancel acts (a thread running when it is cancelled may make
	 * new calls before it reaches a cancellation point, and the
	 * unwinder must not meet a hooked frame). */
	atomic_store(&sh->no_hijack, 1);
	shadow_unhook(sh);
}

/* Can the calling thread act on a cancel (without acting on one)? */
static bool cancel_enabled(void)
{
	RW_NEXT(setcancelstate_fn, pthread_setcancelstate)
	int old = PTHREAD_CANCEL_ENABLE;

	if (!next_pthread_setcancelstate)
		return true;
	/* Disabling and restoring never acts on a pending cancel (only
	 * enabling does, for asynchronous ones). */
	next_pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	next_pthread_setcancelstate(old, NULL);
	return old == PTHREAD_CANCEL_ENABLE;
}

static void restore_fn(void *arg, void *uc)
{
	struct shadow *sh = arg;

	(void)uc;
	if (ft_tls.sh == sh)
		cancel_now(sh, cancel_enabled());
}

static bool restore_filter(pid_t tid, void *arg)
{
	const struct shadow *sh = arg;

	return tid == atomic_load(&sh->tid);
}

RW_EXPORT int pthread_setcancelstate(int state, int *old)
{
	RW_NEXT(setcancelstate_fn, pthread_setcancelstate)
	struct shadow *sh = ft_tls.sh;

	if (state == PTHREAD_CANCEL_ENABLE && sh &&
	    atomic_load(&sh->cancel_pending))
		cancel_now(sh, true);
	return next_pthread_setcancelstate
		       ? next_pthread_setcancelstate(state, old)
		       : ENOSYS;
}

typedef int (*pthread_cancel_fn)(pthread_t);
#define CANCEL_ROUNDS 30
RW_EXPORT int pthread_cancel(pthread_t th)
{
	RW_NEXT(pthread_cancel_fn, pthread_cancel)
	bool found = false;

	for (struct shadow *sh = atomic_load(&shadows); sh; sh = sh->next) {
		if (!atomic_load(&sh->tid) || !pthread_equal(sh->self, th))
			continue;
		found = true;
		atomic_store(&sh->cancel_pending, 1);
		if (sh == ft_tls.sh) {
			restore_fn(sh, NULL);
			break;
		}
		/* The target must have unhooked its frames before glibc's
		 * cancel signal reaches it: both pending, the kernel gives
		 * it SIGCANCEL (32) first, ours (a higher real-time signal)
		 * after, so an unwinder could meet a hooked frame. A target
		 * slow to answer (a starved machine) is asked again, for up
		 * to CANCEL_ROUNDS seconds; past that, the cancel goes on. */
		for (int round = 0; round < CANCEL_ROUNDS; round++) {
			struct rw_tid_list late = { 0 };
			int r = rw__on_threads(restore_fn, sh, restore_filter,
					       sh, 1000, &late);

			rw_tid_list_free(&late);
			if (r != -RW_ERR_THREAD_TIMEOUT ||
			    atomic_load(&sh->no_hijack) ||
			    !atomic_load(&sh->tid))
				break;
			if (round == CANCEL_ROUNDS - 1)
				rw__log("pthread_cancel: thread %d did not "
					"unhook its traced frames in %d s",
					(int)atomic_load(&sh->tid),
					CANCEL_ROUNDS);
		}
		break;
	}
	/* Not tracing yet: its first hooked call looks here. */
	for (int i = 0; !found && i < PENDING_CANCELS; i++) {
		pthread_t z = 0;

		found = atomic_compare_exchange_strong(&pending_cancel[i], &z,
						       th);
	}
	return next_pthread_cancel ? next_pthread_cancel(th) : ESRCH;
}

/* ---- Set-up ---------------------------------------------------------------- */

static void ft_prepare(void)
{
	(void)rw__lock_acquire(&ft_lock);
}

static void ft_parent(void)
{
	if (rw__lock_held_by_me(&ft_lock))
		rw__lock_release(&ft_lock);
}

static void ft_child(void)
{
	rw__lock_reset(&ft_lock);
	/* Only the forking thread lives on: the other threads' shadow
	 * stacks are free again. */
	pid_t tid = rw__gettid();

	for (struct shadow *sh = atomic_load(&shadows); sh; sh = sh->next)
		if (sh != ft_tls.sh && atomic_load(&sh->tid) > 0)
			atomic_store(&sh->tid, 0);
		else
			atomic_store(&sh->tid, tid);
}

static const struct rw__fork_handlers ft_fork = { ft_prepare, ft_parent,
						  ft_child };

__attribute__((constructor)) static void ftrace_init(void)
{
	if (pthread_key_create(&shadow_key, shadow_release) == 0)
		atomic_store(&shadow_key_ok, 1);
#if defined(__aarch64__)
	jmpbuf_learn();
#endif
	rw__entry_set_tracer(ft_enter, ft_return, ft_real_return);
	rw__fork_handlers_register(RW__FORK_FTRACE, &ft_fork);
}
