/* SPDX-License-Identifier: MIT */
/*
 * Inlined functions of an object, from its DWARF, for function tracing
 * (ftrace_dwarf.h): a call the compiler inlined does not go through the
 * function's entry, so tracing the function does not see it, and a
 * function inlined into every caller has no entry to trace at all.
 *
 * One pass over every unit of the object's DWARF (src/debuginfo.c finds
 * it). A DW_TAG_inlined_subroutine with code is a copy of the function its
 * DW_AT_abstract_origin leads to (followed to the end of the chain: with
 * LTO an origin can itself have one); the copy's caller is the concrete
 * subprogram around it. A DW_TAG_subprogram with code and an abstract
 * origin is an out-of-line copy of that function (the function itself, or
 * a clone such as NAME.constprop.0). Functions are keyed by the address
 * of their entry's bytes in the mapped sections, unique even across a dwz
 * alternate file. A function with copies and no out-of-line code exists
 * only inlined; static functions of one name in several units (a header's
 * static inline function) are reported once, with their copies summed.
 *
 * Only the subtrees that can hold code are walked: units, namespaces,
 * subprograms with code, lexical blocks and inlined subroutines; types are
 * skipped.
 */
#include "ftrace_dwarf.h"

#include "debuginfo.h"

#include <dwarf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64 /* nesting of DWARF entries followed */

/* A function inlined at least once, or with an out-of-line copy. */
struct origin {
	const void *key; /* NULL: a free slot */
	Dwarf_Die die;
	unsigned copies, callers;
	const void *last_caller;
};

/* An out-of-line copy of a function. */
struct concrete {
	const void *key;
	Dwarf_Addr pc;
};

struct ctx {
	struct origin *tab; /* open addressing, a power of two long */
	size_t cap, used;
	struct concrete *conc;
	size_t nconc, cconc;
	int err;
};

static size_t hash_ptr(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

static int grow(struct ctx *c)
{
	size_t cap = c->cap ? c->cap * 2 : 1024;
	struct origin *tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap; i++) {
		size_t k;

		if (!c->tab[i].key)
			continue;
		for (k = hash_ptr(c->tab[i].key) & (cap - 1); tab[k].key;
		     k = (k + 1) & (cap - 1))
			;
		tab[k] = c->tab[i];
	}
	free(c->tab);
	c->tab = tab;
	c->cap = cap;
	return 0;
}

/* The record of the function whose entry is @die, made if need be. */
static struct origin *origin_get(struct ctx *c, Dwarf_Die *die)
{
	size_t k;

	if (2 * (c->used + 1) > c->cap && (c->err = grow(c)))
		return NULL;
	for (k = hash_ptr(die->addr) & (c->cap - 1); c->tab[k].key;
	     k = (k + 1) & (c->cap - 1))
		if (c->tab[k].key == die->addr)
			return &c->tab[k];
	c->tab[k].key = die->addr;
	c->tab[k].die = *die;
	c->used++;
	return &c->tab[k];
}

/* Does @die hold code (a concrete instance, not an abstract one)? */
static bool has_code(Dwarf_Die *die)
{
	return dwarf_hasattr(die, DW_AT_low_pc) ||
	       dwarf_hasattr(die, DW_AT_ranges) ||
	       dwarf_hasattr(die, DW_AT_entry_pc);
}

/* The end of @die's chain of abstract origins. */
static bool root_of(Dwarf_Die *die, Dwarf_Die *out)
{
	Dwarf_Attribute a;
	Dwarf_Die cur, next;

	if (!dwarf_attr(die, DW_AT_abstract_origin, &a) ||
	    !dwarf_formref_die(&a, &cur))
		return false;
	for (int depth = 0; depth < MAX_DEPTH; depth++) {
		if (!dwarf_attr(&cur, DW_AT_abstract_origin, &a) ||
		    !dwarf_formref_die(&a, &next))
			break;
		cur = next;
	}
	*out = cur;
	return true;
}

/* The entry of the concrete subprogram @die. */
static bool entry_of(Dwarf_Die *die, Dwarf_Addr *pc)
{
	Dwarf_Addr base, start, end;

	if (!dwarf_entrypc(die, pc) || !dwarf_lowpc(die, pc))
		return true;
	/* Split into hot and cold parts: the entry opens the first range. */
	if (dwarf_ranges(die, 0, &base, &start, &end) > 0) {
		*pc = start;
		return true;
	}
	return false;
}

static void add_concrete(struct ctx *c, Dwarf_Die *die)
{
	Dwarf_Die root;
	Dwarf_Addr pc;

	if (!root_of(die, &root) || !entry_of(die, &pc))
		return;
	if (c->nconc == c->cconc) {
		size_t n = c->cconc ? c->cconc * 2 : 256;
		struct concrete *v = realloc(c->conc, n * sizeof(*v));

		if (!v) {
			c->err = -ENOMEM;
			return;
		}
		c->conc = v;
		c->cconc = n;
	}
	c->conc[c->nconc++] = (struct concrete){ root.addr, pc };
	/* Known even when never inlined here: a copy in another unit (LTO)
	 * then finds it. */
	origin_get(c, &root);
}

static void add_copy(struct ctx *c, Dwarf_Die *die, const void *caller)
{
	Dwarf_Die root;
	struct origin *o;

	if (!root_of(die, &root) || !(o = origin_get(c, &root)))
		return;
	o->copies++;
	if (o->last_caller != caller || !o->callers) {
		o->callers++;
		o->last_caller = caller;
	}
}

/* Walk below @parent; @caller: the concrete subprogram around it. */
static void walk(struct ctx *c, Dwarf_Die *parent, const void *caller,
		 int depth)
{
	Dwarf_Die child;

	if (depth > MAX_DEPTH || dwarf_child(parent, &child))
		return;
	do {
		const void *inner = caller;

		switch (dwarf_tag(&child)) {
		case DW_TAG_subprogram:
			/* Abstract instances and declarations: no code. */
			if (!has_code(&child))
				continue;
			inner = child.addr;
			add_concrete(c, &child);
			break;
		case DW_TAG_inlined_subroutine:
			if (has_code(&child))
				add_copy(c, &child, caller);
			break;
		case DW_TAG_lexical_block:
		case DW_TAG_namespace:
		case DW_TAG_module:
			break;
		default:
			continue;
		}
		if (c->err)
			return;
		if (dwarf_haschildren(&child)) {
			Dwarf_Die keep = child;

			walk(c, &keep, inner, depth + 1);
		}
	} while (dwarf_siblingof(&child, &child) == 0);
}

static int conc_cmp(const void *a, const void *b)
{
	const struct concrete *x = a, *y = b;

	if (x->key != y->key)
		return (uintptr_t)x->key < (uintptr_t)y->key ? -1 : 1;
	return x->pc < y->pc ? -1 : x->pc > y->pc;
}

static int func_cmp(const void *a, const void *b)
{
	const struct rw__ftd_func *x = a, *y = b;
	int d = strcmp(x->name, y->name);

	if (d)
		return d;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static const char *name_of(Dwarf_Die *die)
{
	Dwarf_Attribute a;
	const char *s = NULL;

	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &a) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
		s = dwarf_formstring(&a);
	if (!s && dwarf_attr_integrate(die, DW_AT_name, &a))
		s = dwarf_formstring(&a);
	return s && *s ? s : NULL;
}

static int emit(struct rw__ftd_func **v, size_t *n, size_t *cap,
		const char *name, uintptr_t addr, const struct origin *o)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct rw__ftd_func *w = realloc(*v, nc * sizeof(*w));

		if (!w)
			return -ENOMEM;
		*v = w;
		*cap = nc;
	}
	(*v)[*n] = (struct rw__ftd_func){ strdup(name), addr, o->copies,
					  o->callers };
	if (!(*v)[*n].name)
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* The result from the walk: per function with copies, an element per
 * out-of-line copy or one of address 0; then inline-only functions of
 * the same name merged. */
static int collect(struct ctx *c, uintptr_t bias, struct rw__ftd_func **out,
		   size_t *nout)
{
	struct rw__ftd_func *v = NULL;
	size_t n = 0, cap = 0, k = 0;
	int err = 0;

	if (c->nconc)
		qsort(c->conc, c->nconc, sizeof(*c->conc), conc_cmp);
	for (size_t i = 0; i < c->cap && !err; i++) {
		struct origin *o = &c->tab[i];
		const char *name;
		size_t lo = 0, hi = c->nconc;
		Dwarf_Addr pc;

		if (!o->key || !o->copies || !(name = name_of(&o->die)))
			continue;
		/* The first out-of-line copy of this function. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if ((uintptr_t)c->conc[mid].key < (uintptr_t)o->key)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < c->nconc && c->conc[lo].key == o->key) {
			for (;
			     lo < c->nconc && c->conc[lo].key == o->key && !err;
			     lo++)
				err = emit(&v, &n, &cap, name,
					   bias + c->conc[lo].pc, o);
		} else if (has_code(&o->die) && entry_of(&o->die, &pc)) {
			/* An origin with code of its own. */
			err = emit(&v, &n, &cap, name, bias + pc, o);
		} else {
			err = emit(&v, &n, &cap, name, 0, o);
		}
	}
	if (err) {
		rw__ftrace_dwarf_free(v, n);
		return err;
	}
	if (n)
		qsort(v, n, sizeof(*v), func_cmp);
	for (size_t i = 0; i < n; i++) {
		if (k && !v[i].addr && !v[k - 1].addr &&
		    !strcmp(v[i].name, v[k - 1].name)) {
			v[k - 1].copies += v[i].copies;
			v[k - 1].callers += v[i].callers;
			free(v[i].name);
			continue;
		}
		v[k++] = v[i];
	}
	*out = v;
	*nout = k;
	return 0;
}

int rw__ftrace_dwarf_inlined(const char *file, const char *real, uintptr_t bias,
			     struct rw__ftd_func **out, size_t *n)
{
	struct rw__debuginfo d = { .fd = -1, .dfd = -1 };
	struct ctx c = { 0 };
	Dwarf_Off off = 0, next;
	size_t hsize;
	Dwarf_Die cu;
	int err = 0;

	*out = NULL;
	*n = 0;
	if (rw__debuginfo_open(&d, file, real)) {
		while (!c.err && dwarf_nextcu(d.dbg, off, &next, &hsize, NULL,
					      NULL, NULL) == 0) {
			if (dwarf_offdie(d.dbg, off + hsize, &cu))
				walk(&c, &cu, NULL, 0);
			off = next;
		}
		err = c.err ? c.err : collect(&c, bias, out, n);
	}
	rw__debuginfo_close(&d);
	free(c.tab);
	free(c.conc);
	return err;
}

void rw__ftrace_dwarf_free(struct rw__ftd_func *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}
