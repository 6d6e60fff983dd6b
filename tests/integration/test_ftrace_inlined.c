/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 13, point 5): function tracing says which functions
 * the compiler inlined. A call that was inlined does not go through the
 * function's entry, so tracing does not see it; a function inlined into
 * every caller cannot be traced at all. Only the DWARF knows (the symbol
 * table has no trace of inlined copies).
 *
 * ftrace_inlined/fti_dso.c, built -O2 as Debian builds it, loaded three
 * times: with its DWARF in a separate file (fti_dbg.so, .gnu_debuglink),
 * in the object (fti_inobj.so), and without (fti_nodbg.so, -g0). Checks:
 *   - rw_ftrace_list: fti_part (a symbol, inlined into two callers) has
 *     inlined = 2 and stays traceable; fti_full and fti_once (no code of
 *     their own) are listed after the object's symbols with status
 *     -RW_ERR_INLINED, address 0, size 0 and their number of copies (4 in
 *     3 callers, and 1); the exported functions have inlined = 0;
 *   - attaching fti_full by its exact name fails with -RW_ERR_INLINED and
 *     says why, alone or with a traceable name; a glob that selects only
 *     inline-only functions fails with -ENOENT naming them; a glob over
 *     the library traces the four functions with code, and fti_part's
 *     call through its pointer is seen;
 *   - without debug information (fti_nodbg.so) nothing is known:
 *     inlined = 0 everywhere and no inline-only entries.
 */
#include "check.h"

#include <rewire/ftrace.h>

#include <dlfcn.h>
#include <stdatomic.h>
#include <string.h>

#define MAXF 64

struct listed {
	size_t n;
	struct rw_ftrace_func f[MAXF];
	char names[MAXF][64];
};

static int collect(void *arg, const struct rw_ftrace_func *f)
{
	struct listed *l = arg;

	CHECK(l->n < MAXF);
	l->f[l->n] = *f;
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", f->name);
	l->f[l->n].name = l->names[l->n];
	l->n++;
	return 0;
}

static void list(const char *pattern, struct listed *l)
{
	const char *pats[] = { pattern };

	memset(l, 0, sizeof(*l));
	CHECK_OK(rw_ftrace_list(pats, 1, collect, l));
}

static const struct rw_ftrace_func *find(const struct listed *l,
					 const char *name, size_t *count)
{
	const struct rw_ftrace_func *r = NULL;

	*count = 0;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->f[i].name, name) == 0) {
			r = r ? r : &l->f[i];
			(*count)++;
		}
	return r;
}

static const struct rw_ftrace_func *one(const struct listed *l,
					const char *name)
{
	size_t n;
	const struct rw_ftrace_func *f = find(l, name, &n);

	if (n != 1) {
		fprintf(stderr, "%s listed %zu times\n", name, n);
		exit(1);
	}
	return f;
}

static void check_with_dwarf(const char *lib)
{
	char pat[64];
	struct listed l;
	const struct rw_ftrace_func *f;
	size_t first_inl = 0;

	snprintf(pat, sizeof(pat), "fti_*@%s", lib);
	list(pat, &l);
	for (size_t i = 0; i < l.n; i++)
		fprintf(stderr,
			"  %s: %s status %d addr %#lx size %zu "
			"inlined %u\n",
			lib, l.f[i].name, l.f[i].status,
			(unsigned long)l.f[i].addr, l.f[i].size,
			l.f[i].inlined);
	CHECK_EQ(l.n, 6);
	for (size_t i = 0; i < l.n && !first_inl; i++)
		if (l.f[i].status == -RW_ERR_INLINED)
			first_inl = i;
	/* The object's symbols first, in address order, then the
	 * inline-only functions. */
	CHECK_EQ(first_inl, 4);
	for (size_t i = 0; i < l.n; i++) {
		CHECK(strstr(l.f[i].object, lib) != NULL);
		CHECK_EQ(l.f[i].status, i < 4 ? 0 : -RW_ERR_INLINED);
		if (i && i < 4)
			CHECK(l.f[i - 1].addr < l.f[i].addr);
	}
	f = one(&l, "fti_part");
	CHECK(f->addr != 0 && f->size != 0);
	CHECK_EQ(f->inlined, 2);
	CHECK_EQ(one(&l, "fti_a")->inlined, 0);
	CHECK_EQ(one(&l, "fti_b")->inlined, 0);
	CHECK_EQ(one(&l, "fti_c")->inlined, 0);
	f = one(&l, "fti_full");
	CHECK_EQ(f->status, -RW_ERR_INLINED);
	CHECK_EQ(f->addr, 0);
	CHECK_EQ(f->size, 0);
	CHECK_EQ(f->inlined, 4);
	CHECK(strcmp(f->demangled, "fti_full") == 0);
	f = one(&l, "fti_once");
	CHECK_EQ(f->status, -RW_ERR_INLINED);
	CHECK_EQ(f->addr, 0);
	CHECK_EQ(f->inlined, 1);
}

static _Atomic int hits_part, hits_other;

static void on_entry(void *data, const struct rw_ftrace_func *f,
		     uintptr_t caller, unsigned depth)
{
	(void)data;
	(void)caller;
	(void)depth;
	if (strcmp(f->name, "fti_part") == 0)
		atomic_fetch_add(&hits_part, 1);
	else
		atomic_fetch_add(&hits_other, 1);
}

static void check_attach(void *h)
{
	const struct rw_ftrace_probe probe = { on_entry, NULL, NULL };
	const char *full[] = { "fti_full@fti_dbg.so" };
	const char *both[] = { "fti_a@fti_dbg.so", "fti_full@fti_dbg.so" };
	const char *once[] = { "fti_once@fti_inobj.so" };
	const char *glob_inl[] = { "fti_f*@fti_dbg.so", "fti_p*@fti_dbg.so" };
	const char *lib[] = { "fti_*@fti_dbg.so" };
	const char *nodbg[] = { "fti_full@fti_nodbg.so" };
	struct rw_ftrace *t = NULL;
	int (*a)(int) = (int (*)(int))dlsym(h, "fti_a");
	int (*volatile * pp)(int) = dlsym(h, "fti_part_ptr");
	int err;

	CHECK(a && pp);
	err = rw_ftrace_attach(full, 1, &probe, 0, &t);
	fprintf(stderr, "attach %s: %d: %s\n", full[0], err,
		rw_ftrace_last_error());
	CHECK_EQ(err, -RW_ERR_INLINED);
	CHECK(t == NULL);
	CHECK(strcmp(rw_ftrace_last_error(),
		     "fti_full was inlined into its 3 callers and has no code "
		     "of its own: it cannot be traced") == 0);

	CHECK_EQ(rw_ftrace_attach(both, 2, &probe, 0, &t), -RW_ERR_INLINED);
	CHECK(strstr(rw_ftrace_last_error(), "fti_full was inlined") != NULL);

	CHECK_EQ(rw_ftrace_attach(once, 1, &probe, 0, &t), -RW_ERR_INLINED);
	CHECK(strcmp(rw_ftrace_last_error(),
		     "fti_once was inlined into its 1 caller and has no code "
		     "of its own: it cannot be traced") == 0);

	/* fti_full and fti_part: only fti_part can be traced. */
	err = rw_ftrace_attach(glob_inl, 2, &probe, 0, &t);
	CHECK_OK(err);
	CHECK_EQ(rw_ftrace_nfuncs(t), 1);
	CHECK(strcmp(rw_ftrace_func_at(t, 0)->name, "fti_part") == 0);
	CHECK_OK(rw_ftrace_detach(t));
	t = NULL;

	/* Only inline-only functions: nothing to trace, and why. */
	{
		const char *g[] = { "fti_f*@fti_dbg.so" };

		err = rw_ftrace_attach(g, 1, &probe, 0, &t);
		fprintf(stderr, "attach %s: %d: %s\n", g[0], err,
			rw_ftrace_last_error());
		CHECK_EQ(err, -ENOENT);
		CHECK(strstr(rw_ftrace_last_error(),
			     "fti_full (inlined into every caller") != NULL);
	}

	err = rw_ftrace_attach(nodbg, 1, &probe, 0, &t);
	CHECK_EQ(err, -ENOENT);

	CHECK_OK(rw_ftrace_attach(lib, 1, &probe, 0, &t));
	CHECK_EQ(rw_ftrace_nfuncs(t), 4);
	for (size_t i = 0; i < rw_ftrace_nfuncs(t); i++) {
		CHECK(rw_ftrace_func_at(t, i)->status == 0);
		CHECK(rw_ftrace_func_at(t, i)->addr != 0);
	}
	/* fti_a's inlined copy of fti_part is not seen, the call through
	 * the pointer is. */
	CHECK_EQ(a(2), 11 + 4);
	CHECK_EQ((*pp)(5), 13);
	CHECK_OK(rw_ftrace_detach(t));
	CHECK_EQ(atomic_load(&hits_part), 1);
	CHECK_EQ(atomic_load(&hits_other), 1);
}

int main(void)
{
	static const char *const libs[] = { "fti_dbg.so", "fti_inobj.so",
					    "fti_nodbg.so" };
	void *h[3];
	struct listed l;
	const struct rw_ftrace_func *f;

	for (int i = 0; i < 3; i++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", FTI_DIR, libs[i]);
		h[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!h[i]) {
			fprintf(stderr, "%s\n", dlerror());
			return 1;
		}
	}

	check_with_dwarf("fti_dbg.so");
	check_with_dwarf("fti_inobj.so");

	/* Without debug information: nothing known. */
	list("fti_*@fti_nodbg.so", &l);
	CHECK_EQ(l.n, 4);
	for (size_t i = 0; i < l.n; i++) {
		CHECK_EQ(l.f[i].status, 0);
		CHECK_EQ(l.f[i].inlined, 0);
	}
	f = one(&l, "fti_part");
	CHECK(f->addr != 0);

	/* Every function of the process: both libraries' inline-only
	 * functions, the other listing left intact. */
	{
		struct listed all;
		size_t n;

		list("fti_full", &all);
		CHECK(find(&all, "fti_full", &n) != NULL);
		CHECK_EQ(n, 2);
	}

	check_attach(h[0]);
	for (int i = 0; i < 3; i++)
		dlclose(h[i]);
	return 0;
}
