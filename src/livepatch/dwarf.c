/* SPDX-License-Identifier: MIT */
/*
 * Inlined copies of patched functions (rw__lp_check_inlined).
 *
 * A patch redirects a function's entry. Where the compiler inlined the
 * function into a caller, the caller carries its own copy of the old body,
 * which the patch never reaches: the program would run old and new code
 * side by side while the patch reports success. The copies are not in the
 * symbol table; only the debug information knows them, as
 * DW_TAG_inlined_subroutine entries whose abstract origin is the function.
 *
 * For each object holding a patched function: its DWARF, from the object
 * itself or from a separate debug file, as gdb looks (src/debuginfo.c).
 * The function's DWARF entry is the subprogram of the symbol's address in
 * the compilation unit that holds that address (so that two
 * static functions of the same name in other files are not confused), or
 * failing that the subprogram of that name in that unit, or an external
 * one of that name. Its identity is the entry itself and what it refers
 * to as DW_AT_abstract_origin or DW_AT_specification; every inlined
 * subroutine of the object (any compilation unit: with LTO a copy can be
 * in another) whose origin is one of those is a copy, unless the concrete
 * function that holds it is itself replaced by the same patch.
 *
 * Entries are compared by the address of their bytes in the mapped debug
 * sections, which is unique even across a dwz alternate file.
 */
#include "lp.h"

#include "debuginfo.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_IDS 8     /* entries naming one function */
#define MAX_CALLERS 8 /* callers named in a message */
#define MAX_DEPTH 64  /* nesting of DWARF entries followed */

/* One patched function of the object being checked. */
struct want {
	const struct rw__lp_func *f;
	const char *name; /* as in the DWARF: without a .cold/.part suffix */
	char name_buf[128];
	const void *ids[MAX_IDS];
	size_t nids;
	bool found;
	size_t ncopies;
	size_t ncallers;
	char callers[MAX_CALLERS][64];
};

/* An object and its debug information. */
struct dobj {
	uintptr_t bias;
	char file[PATH_MAX]; /* the object's file, as opened */
	char real[PATH_MAX]; /* its path (for .gnu_debuglink) */
	const char *shown;   /* for messages */
	struct rw__debuginfo di;
	const struct rw__lp_func *funcs; /* all of the patch's functions */
	size_t nfuncs;
};

struct where_query {
	uintptr_t addr;
	bool found;
	uintptr_t bias;
	char name[PATH_MAX];
};

static int where_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct where_query *q = arg;

	(void)size;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type != PT_LOAD || q->addr < lo ||
		    q->addr - lo >= ph->p_memsz)
			continue;
		q->found = true;
		q->bias = info->dlpi_addr;
		snprintf(q->name, sizeof(q->name), "%s",
			 info->dlpi_name ? info->dlpi_name : "");
		return 1;
	}
	return 0;
}

/* Add @die and what it stands for to @w's identities. */
static void add_ids(struct want *w, Dwarf_Die *die)
{
	Dwarf_Die cur = *die, next;

	for (int depth = 0; depth < MAX_DEPTH && w->nids < MAX_IDS; depth++) {
		Dwarf_Attribute a;
		bool dup = false;

		for (size_t i = 0; i < w->nids && !dup; i++)
			dup = w->ids[i] == cur.addr;
		if (!dup)
			w->ids[w->nids++] = cur.addr;
		if (!dwarf_attr(&cur, DW_AT_abstract_origin, &a) &&
		    !dwarf_attr(&cur, DW_AT_specification, &a))
			return;
		if (!dwarf_formref_die(&a, &next))
			return;
		cur = next;
	}
}

/*
 * The address past a function's patchable entry (its BTI c or endbr64 and
 * its NOPs), link-time when @bias is the object's. GCC's aarch64 DWARF
 * says a function begins there (DW_AT_low_pc after the NOPs that
 * -fpatchable-function-entry put at the symbol); x86-64's says it begins
 * at the symbol (there the answer is the symbol: a short function's
 * neighbour could begin right after its NOPs).
 */
static Dwarf_Addr past_entry(const struct rw__lp_func *f, uintptr_t bias)
{
#if defined(__aarch64__)
	if (f->sled >= f->old_addr && f->sled_len)
		return f->sled + f->sled_len - bias;
#endif
	return f->old_addr - bias;
}

/* Is @die the entry of @w: a subprogram at @addr, or named so (@by_name)? */
static bool subprogram_is(Dwarf_Die *die, const struct want *w, Dwarf_Addr addr,
			  bool by_name, bool external)
{
	Dwarf_Addr pc;
	const char *name;
	Dwarf_Attribute a;
	bool flag = false;

	if (dwarf_tag(die) != DW_TAG_subprogram)
		return false;
	if (!by_name) {
		Dwarf_Addr past = past_entry(w->f, w->f->old_addr - addr);

		return (!dwarf_entrypc(die, &pc) &&
			(pc == addr || pc == past)) ||
		       (!dwarf_lowpc(die, &pc) && (pc == addr || pc == past));
	}
	name = dwarf_diename(die);
	if (!name || strcmp(name, w->name))
		return false;
	if (external && (!dwarf_attr_integrate(die, DW_AT_external, &a) ||
			 dwarf_formflag(&a, &flag) || !flag))
		return false;
	return true;
}

/* Depth-first search below @parent for the entry of @w. */
static bool find_in(Dwarf_Die *parent, struct want *w, Dwarf_Addr addr,
		    bool by_name, bool external, int depth)
{
	Dwarf_Die child;

	if (depth > MAX_DEPTH || dwarf_child(parent, &child))
		return false;
	do {
		if (subprogram_is(&child, w, addr, by_name, external)) {
			add_ids(w, &child);
			return true;
		}
		/* Nested functions, namespaces, classes. */
		if (dwarf_haschildren(&child) &&
		    dwarf_tag(&child) != DW_TAG_inlined_subroutine &&
		    dwarf_tag(&child) != DW_TAG_lexical_block &&
		    find_in(&child, w, addr, by_name, external, depth + 1))
			return true;
	} while (dwarf_siblingof(&child, &child) == 0);
	return false;
}

/* Find the DWARF entry of @w (link-time address @addr). */
static void find_function(struct dobj *o, struct want *w, Dwarf_Addr addr)
{
	Dwarf_Off off = 0, next;
	size_t hsize;
	Dwarf_Die cu;

	if (dwarf_addrdie(o->di.dbg, addr, &cu)) {
		if (find_in(&cu, w, addr, false, false, 0) ||
		    find_in(&cu, w, addr, true, false, 0)) {
			w->found = true;
			return;
		}
	}
	/* No address ranges for the unit, or another layout: the external
	 * function of that name, in any unit. */
	while (dwarf_nextcu(o->di.dbg, off, &next, &hsize, NULL, NULL, NULL) ==
	       0) {
		if (dwarf_offdie(o->di.dbg, off + hsize, &cu) &&
		    (find_in(&cu, w, addr, false, false, 0) ||
		     find_in(&cu, w, addr, true, true, 0))) {
			w->found = true;
			return;
		}
		off = next;
	}
}

/* Is @die's abstract origin one of @w's entries? */
static bool copy_of(Dwarf_Die *die, const struct want *w)
{
	Dwarf_Attribute a;
	Dwarf_Die origin;

	if (!dwarf_attr(die, DW_AT_abstract_origin, &a) ||
	    !dwarf_formref_die(&a, &origin))
		return false;
	for (size_t i = 0; i < w->nids; i++)
		if (w->ids[i] == origin.addr)
			return true;
	return false;
}

/* Is @die (a concrete subprogram) replaced by the patch too? */
static bool replaced(const struct dobj *o, Dwarf_Die *die)
{
	Dwarf_Addr pc;

	if (dwarf_entrypc(die, &pc) && dwarf_lowpc(die, &pc))
		return false;
	for (size_t i = 0; i < o->nfuncs; i++)
		if (o->funcs[i].old_addr == o->bias + pc ||
		    past_entry(&o->funcs[i], o->bias) == pc)
			return true;
	return false;
}

static void note_copy(const struct dobj *o, struct want *w, Dwarf_Die *caller)
{
	const char *name = caller ? dwarf_diename(caller) : NULL;
	Dwarf_Addr pc = 0;

	if (caller && replaced(o, caller))
		return;
	w->ncopies++;
	if (!name) {
		if (caller &&
		    (!dwarf_entrypc(caller, &pc) || !dwarf_lowpc(caller, &pc)))
			name = "";
		else
			name = "(an unnamed function)";
	}
	for (size_t i = 0; i < w->ncallers && i < MAX_CALLERS; i++) {
		if (!strcmp(w->callers[i], name))
			return;
	}
	if (w->ncallers < MAX_CALLERS) {
		if (name[0])
			snprintf(w->callers[w->ncallers], sizeof(w->callers[0]),
				 "%s", name);
		else
			snprintf(w->callers[w->ncallers], sizeof(w->callers[0]),
				 "the function at %#lx",
				 (unsigned long)(o->bias + pc));
	}
	w->ncallers++;
}

/* Does @die hold code (a concrete instance, not an abstract one)? */
static bool has_code(Dwarf_Die *die)
{
	return dwarf_hasattr(die, DW_AT_low_pc) ||
	       dwarf_hasattr(die, DW_AT_ranges) ||
	       dwarf_hasattr(die, DW_AT_entry_pc);
}

/* Walk below @parent; @caller: the concrete subprogram around it. */
static void scan(const struct dobj *o, Dwarf_Die *parent, Dwarf_Die *caller,
		 struct want *ws, size_t nws, int depth)
{
	Dwarf_Die child;

	if (depth > MAX_DEPTH || dwarf_child(parent, &child))
		return;
	do {
		int tag = dwarf_tag(&child);
		Dwarf_Die *inner = caller;

		if (tag == DW_TAG_subprogram) {
			/* Abstract instances and declarations: no code. */
			if (!has_code(&child))
				continue;
			inner = &child;
		} else if (tag == DW_TAG_inlined_subroutine &&
			   has_code(&child)) {
			for (size_t i = 0; i < nws; i++)
				if (copy_of(&child, &ws[i]))
					note_copy(o, &ws[i], caller);
		}
		if (dwarf_haschildren(&child)) {
			Dwarf_Die keep = child;

			scan(o, &keep, inner == &child ? &keep : inner, ws, nws,
			     depth + 1);
		}
	} while (dwarf_siblingof(&child, &child) == 0);
}

/* The function's name as the DWARF knows it: "f" for "f.cold" or
 * "f.constprop.0". */
static const char *dwarf_name(const struct rw__lp_func *f, char *buf,
			      size_t size)
{
	const char *name = f->desc->old_name;
	const char *dot = strchr(name, '.');

	if (!dot)
		return name;
	snprintf(buf, size, "%.*s", (int)(dot - name), name);
	return buf;
}

/* Append @sep and @s to the string in @buf. */
static void append(char *buf, size_t size, const char *sep, const char *s)
{
	size_t n = strlen(buf);

	if (n + 1 < size)
		snprintf(buf + n, size - n, "%s%s", sep, s);
}

/* Check the functions of @funcs that live in the object @o. */
static int check_object(const char *path, struct dobj *o, unsigned flags,
			const bool *todo, char *notice, size_t notice_size)
{
	struct want *ws;
	char msg[RW__LP_ERRLEN], callers[RW__LP_ERRLEN];
	size_t nws = 0, bad = 0;
	Dwarf_Off off = 0, next;
	size_t hsize;
	Dwarf_Die cu;

	if (!rw__debuginfo_open(&o->di, o->file, o->real)) {
		if (!notice[0])
			snprintf(notice, notice_size,
				 "inlining not checked: no debug "
				 "information for %s (.debug_info, or a "
				 "separate debug file by build id or "
				 ".gnu_debuglink); copies of the patched "
				 "functions inlined into callers would keep "
				 "the old code",
				 o->shown);
		return 0;
	}
	ws = calloc(o->nfuncs, sizeof(*ws));
	if (!ws) {
		rw__lp_set_error("%s: out of memory", path);
		return -ENOMEM;
	}
	for (size_t i = 0; i < o->nfuncs; i++) {
		struct want *w = &ws[nws];

		if (!todo[i])
			continue;
		memset(w, 0, sizeof(*w));
		w->f = &o->funcs[i];
		w->name = dwarf_name(w->f, w->name_buf, sizeof(w->name_buf));
		find_function(o, w, w->f->old_addr - o->bias);
		if (!w->found) {
			if (!notice[0])
				snprintf(notice, notice_size,
					 "inlining of '%s' not "
					 "checked: %s has debug information, "
					 "but none for it",
					 w->name, o->shown);
			continue;
		}
		nws++;
	}
	while (dwarf_nextcu(o->di.dbg, off, &next, &hsize, NULL, NULL, NULL) ==
	       0) {
		if (dwarf_offdie(o->di.dbg, off + hsize, &cu))
			scan(o, &cu, NULL, ws, nws, 0);
		off = next;
	}
	for (size_t i = 0; i < nws; i++) {
		struct want *w = &ws[i];

		if (!w->ncopies)
			continue;
		callers[0] = '\0';
		for (size_t k = 0; k < w->ncallers && k < MAX_CALLERS; k++) {
			append(callers, sizeof(callers), k ? ", " : "",
			       w->callers[k]);
		}
		if (w->ncallers > MAX_CALLERS)
			append(callers, sizeof(callers), ", ", "...");
		/* Cut if it must be: the callers come first. */
		if (snprintf(msg, sizeof(msg),
			     "'%s' in %s is inlined into %zu caller%s (%zu "
			     "cop%s): %s; %s would keep running the old code",
			     w->name, o->shown, w->ncallers,
			     w->ncallers == 1 ? "" : "s", w->ncopies,
			     w->ncopies == 1 ? "y" : "ies", callers,
			     w->ncallers == 1 ? "it" : "they") < 0)
			msg[0] = '\0';
		if (flags & RW_PATCH_LOAD_ALLOW_INLINED) {
			if (!notice[0])
				snprintf(notice, notice_size, "allowed: %s",
					 msg);
			continue;
		}
		if (!bad++)
			rw__lp_set_error("%s: %s: patch %s too, or allow it "
					 "(RW_PATCH_LOAD_ALLOW_INLINED, rewire "
					 "patch --allow-inlined)",
					 path, msg,
					 w->ncallers == 1 ? "that caller"
							  : "those callers");
	}
	free(ws);
	return bad ? -RW_ERR_INLINED : 0;
}

int rw__lp_check_inlined(const char *path, const struct rw__lp_func *funcs,
			 size_t nfuncs, unsigned flags, char *notice,
			 size_t notice_size)
{
	bool *done = calloc(nfuncs ? nfuncs : 1, 2 * sizeof(bool));
	bool *todo = done ? done + nfuncs : NULL;
	int err = 0;

	notice[0] = '\0';
	if (!done) {
		rw__lp_set_error("%s: out of memory", path);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nfuncs && !err; i++) {
		struct where_query q = { .addr = funcs[i].old_addr };
		struct dobj o = { .di = { .fd = -1, .dfd = -1 } };

		if (done[i])
			continue;
		dl_iterate_phdr(where_cb, &q);
		if (!q.found)
			continue;
		o.bias = q.bias;
		o.funcs = funcs;
		o.nfuncs = nfuncs;
		if (q.name[0]) {
			snprintf(o.file, sizeof(o.file), "%s", q.name);
			snprintf(o.real, sizeof(o.real), "%s", q.name);
			o.shown = q.name;
		} else {
			ssize_t len = readlink("/proc/self/exe", o.real,
					       sizeof(o.real) - 1);

			o.real[len > 0 ? len : 0] = '\0';
			snprintf(o.file, sizeof(o.file), "/proc/self/exe");
			o.shown = "the main program";
		}
		/* Every function of this object, in one walk of its DWARF. */
		for (size_t k = i; k < nfuncs; k++) {
			struct where_query r = { .addr = funcs[k].old_addr };

			if (done[k])
				continue;
			dl_iterate_phdr(where_cb, &r);
			todo[k] = r.found && r.bias == q.bias;
			done[k] = todo[k];
		}
		err = check_object(path, &o, flags, todo, notice, notice_size);
		rw__debuginfo_close(&o.di);
		memset(todo, 0, nfuncs * sizeof(bool));
	}
	free(done);
	return err;
}
