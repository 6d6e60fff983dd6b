/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the function tracing tests (test_ftrace_entry,
 * test_ftrace_badinput, test_ftrace_graph_unwind, torture_ftrace): a probe
 * that logs what it sees per thread, and the oracles that read the logs.
 * Every helper is static inline: each test stays one translation unit. C
 * and C++ (test_ftrace_graph_unwind.cc), so the shared counters use the
 * __atomic builtins, not <stdatomic.h>.
 *
 * Functions: a struct ft_table names the functions a test knows (their
 * addresses from dlsym); the probe turns rw_ftrace_func.addr into an index
 * of the table (FT_FOREIGN: a function the test did not expect).
 *
 * Logs: a thread sets ft_cur to its struct ft_log; the probe appends one
 * struct ft_ev per call, tagged with the log's current tag (a coroutine's
 * number) and the generation of the probe set (struct ft_ctx.gen). A probe
 * hit in a thread without a log is counted in ft_ctx.nolog. Per-function
 * counters in struct ft_ctx count every hit, logged or not.
 *
 *   ft_table_add(t, handle, sym, name)  add dlsym(handle, sym) as @name
 *   ft_table_put(t, name, addr)         add a function by its address
 *   ft_attach(pats, n, ctx, graph)      rw_ftrace_attach with the logging
 *                                       probe, or fail with the message
 *   ft_expect(log, tab, name, ret, depth)  append an expected event
 *   ft_log_same(got, exp, tab, what)    the logs hold the same events
 *                                       (function, kind, depth); prints
 *                                       both when not
 *   ft_log_print(log, tab)              print a log
 *   ft_text_snap(addr, snap)            copy the executable segments of
 *                                       the object that holds @addr
 *   ft_text_same(snap)                  they still hold those bytes
 *   ft_rss_kb(), ft_maps_lines()        the process's RSS and mappings
 */
#ifndef REWIRE_TEST_FT_TEST_H
#define REWIRE_TEST_FT_TEST_H

#include <rewire/ftrace.h>

#include "check.h"

#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FT_MAXFN 64
#define FT_FOREIGN 0xffffu

struct ft_fn {
	const char *name;
	uintptr_t addr;
};

struct ft_table {
	struct ft_fn fn[FT_MAXFN];
	unsigned n;
};

static inline unsigned ft_table_put(struct ft_table *t, const char *name,
				    uintptr_t addr)
{
	CHECK(t->n < FT_MAXFN);
	t->fn[t->n].name = name;
	t->fn[t->n].addr = addr;
	return t->n++;
}

static inline unsigned ft_table_add(struct ft_table *t, void *handle,
				    const char *sym, const char *name)
{
	void *p = dlsym(handle, sym);

	if (!p) {
		fprintf(stderr, "dlsym(%s): %s\n", sym, dlerror());
		exit(1);
	}
	CHECK(t->n < FT_MAXFN);
	t->fn[t->n].name = name ? name : sym;
	t->fn[t->n].addr = (uintptr_t)p;
	return t->n++;
}

static inline unsigned ft_table_find(const struct ft_table *t, uintptr_t addr)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->fn[i].addr == addr)
			return i;
	return FT_FOREIGN;
}

static inline unsigned ft_table_named(const struct ft_table *t,
				      const char *name)
{
	for (unsigned i = 0; i < t->n; i++)
		if (!strcmp(t->fn[i].name, name))
			return i;
	fprintf(stderr, "ft_table_named: no function %s\n", name);
	exit(1);
}

struct ft_ev {
	uint32_t fn;  /* index in the table, or FT_FOREIGN */
	uint16_t ret; /* 0 entry, 1 return */
	uint16_t tag;
	uint32_t gen;
	uint32_t depth;
	uintptr_t caller;
	uint64_t ns;
};

struct ft_log {
	struct ft_ev *ev;
	size_t n, cap;
	size_t lost; /* events that did not fit */
	uint16_t tag;
};

static inline void ft_log_init(struct ft_log *l, size_t cap)
{
	memset(l, 0, sizeof(*l));
	l->ev = (struct ft_ev *)calloc(cap, sizeof(*l->ev));
	CHECK(l->ev);
	l->cap = cap;
}

static inline void ft_log_free(struct ft_log *l)
{
	free(l->ev);
	l->ev = NULL;
}

static inline void ft_log_reset(struct ft_log *l)
{
	l->n = 0;
	l->lost = 0;
}

/* The calling thread's log (NULL: not logging). */
static __thread struct ft_log *ft_cur;

struct ft_ctx {
	const struct ft_table *tab;
	uint32_t gen;
	unsigned long nolog;   /* hits in threads without a log */
	unsigned long foreign; /* hits of functions not in the table */
	unsigned long entries[FT_MAXFN];
	unsigned long returns[FT_MAXFN];
};

static inline void ft_record(struct ft_ctx *c, const struct rw_ftrace_func *f,
			     uintptr_t caller, int ret, unsigned depth,
			     uint64_t ns)
{
	struct ft_log *l = ft_cur;
	unsigned i = ft_table_find(c->tab, f->addr);

	if (i == FT_FOREIGN)
		__atomic_add_fetch(&c->foreign, 1, __ATOMIC_RELAXED);
	else if (ret)
		__atomic_add_fetch(&c->returns[i], 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&c->entries[i], 1, __ATOMIC_RELAXED);
	if (!l) {
		__atomic_add_fetch(&c->nolog, 1, __ATOMIC_RELAXED);
		return;
	}
	if (l->n == l->cap) {
		l->lost++;
		return;
	}
	struct ft_ev *e = &l->ev[l->n];
	e->fn = i;
	e->ret = (uint16_t)ret;
	e->gen = c->gen;
	e->tag = l->tag;
	e->depth = depth;
	e->caller = caller;
	e->ns = ns;
	/* A signal handler's probe may log in the middle of this one's:
	 * publish the slot last. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	l->n++;
}

static inline void ft_on_entry(void *data, const struct rw_ftrace_func *f,
			       uintptr_t caller, unsigned depth)
{
	ft_record((struct ft_ctx *)data, f, caller, 0, depth, 0);
}

static inline void ft_on_return(void *data, const struct rw_ftrace_func *f,
				uintptr_t caller, uint64_t ns, unsigned depth)
{
	ft_record((struct ft_ctx *)data, f, caller, 1, depth, ns);
}

static inline struct rw_ftrace *ft_attach(const char *const *pats, size_t n,
					  struct ft_ctx *ctx, int graph)
{
	struct rw_ftrace_probe p;
	struct rw_ftrace *t = NULL;
	int err;

	p.entry = ft_on_entry;
	p.ret = graph ? ft_on_return : NULL;
	p.data = ctx;
	err = rw_ftrace_attach(pats, n, &p, 0, &t);
	if (err) {
		fprintf(stderr, "rw_ftrace_attach(%s%s): %d (%s): %s\n",
			pats[0], n > 1 ? ", ..." : "", err, rw_strerror(err),
			rw_ftrace_last_error());
		exit(1);
	}
	CHECK(t);
	return t;
}

static inline void ft_detach(struct rw_ftrace *t)
{
	int err = rw_ftrace_detach(t);

	if (err) {
		fprintf(stderr, "rw_ftrace_detach: %d (%s): %s\n", err,
			rw_strerror(err), rw_ftrace_last_error());
		exit(1);
	}
}

static inline void ft_expect(struct ft_log *l, const struct ft_table *t,
			     const char *name, int ret, unsigned depth)
{
	CHECK(l->n < l->cap);
	memset(&l->ev[l->n], 0, sizeof(l->ev[0]));
	l->ev[l->n].fn = ft_table_named(t, name);
	l->ev[l->n].ret = (uint16_t)ret;
	l->ev[l->n].depth = depth;
	l->ev[l->n].tag = l->tag;
	l->n++;
}

static inline void ft_log_print_range(const struct ft_log *l,
				      const struct ft_table *t, size_t from,
				      size_t to)
{
	if (from)
		fprintf(stderr, "    ...\n");
	for (size_t i = from; i < l->n && i < to; i++) {
		const struct ft_ev *e = &l->ev[i];
		fprintf(stderr, "    %3zu: %s %-24s depth %u tag %u gen %u\n",
			i, e->ret ? "ret  " : "entry",
			e->fn == FT_FOREIGN ? "(foreign)" : t->fn[e->fn].name,
			e->depth, e->tag, e->gen);
	}
	if (to < l->n)
		fprintf(stderr, "    ... (%zu events)\n", l->n);
	if (l->lost)
		fprintf(stderr, "    (%zu events lost)\n", l->lost);
}

static inline void ft_log_print(const struct ft_log *l,
				const struct ft_table *t)
{
	ft_log_print_range(l, t, 0, l->n);
}

static inline int ft_ev_same(const struct ft_ev *a, const struct ft_ev *b)
{
	return a->fn == b->fn && a->ret == b->ret && a->depth == b->depth &&
	       a->tag == b->tag;
}

/* @got holds exactly the events of @exp (function, kind, depth, tag).
 * Prints both (around the first difference) when not, unless @what is
 * NULL. */
static inline bool ft_log_same(const struct ft_log *got,
			       const struct ft_log *exp,
			       const struct ft_table *t, const char *what)
{
	size_t i;

	for (i = 0; i < got->n && i < exp->n; i++)
		if (!ft_ev_same(&got->ev[i], &exp->ev[i]))
			break;
	if (i == got->n && i == exp->n && !got->lost)
		return true;
	if (!what)
		return false;
	fprintf(stderr, "%s: the trace differs from the calls at event %zu\n",
		what, i);
	fprintf(stderr, "  traced:\n");
	ft_log_print_range(got, t, i > 12 ? i - 12 : 0, i + 12);
	fprintf(stderr, "  expected:\n");
	ft_log_print_range(exp, t, i > 12 ? i - 12 : 0, i + 12);
	return false;
}

/* Snapshots of an object's code. */
#define FT_SNAP_SEGS 8
struct ft_snap {
	int nseg;
	uintptr_t start[FT_SNAP_SEGS];
	size_t len[FT_SNAP_SEGS];
	uint8_t *bytes[FT_SNAP_SEGS];
};

struct ft_snap_arg {
	uintptr_t addr;
	struct ft_snap *snap;
};

static inline int ft_snap_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	struct ft_snap_arg *a = (struct ft_snap_arg *)data;
	bool mine = false;
	int i;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && a->addr >= lo &&
		    a->addr < lo + ph->p_memsz)
			mine = true;
	}
	if (!mine)
		return 0;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		struct ft_snap *s = a->snap;

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		CHECK(s->nseg < FT_SNAP_SEGS);
		s->start[s->nseg] = info->dlpi_addr + ph->p_vaddr;
		s->len[s->nseg] = ph->p_memsz;
		s->bytes[s->nseg] = (uint8_t *)malloc(ph->p_memsz);
		CHECK(s->bytes[s->nseg]);
		memcpy(s->bytes[s->nseg], (const void *)s->start[s->nseg],
		       ph->p_memsz);
		s->nseg++;
	}
	return 1;
}

static inline void ft_text_snap(uintptr_t addr, struct ft_snap *snap)
{
	struct ft_snap_arg a = { addr, snap };

	memset(snap, 0, sizeof(*snap));
	dl_iterate_phdr(ft_snap_cb, &a);
	CHECK(snap->nseg > 0);
}

/* 0 when every byte is the same, else the first address that differs. */
static inline uintptr_t ft_text_diff(const struct ft_snap *snap)
{
	for (int i = 0; i < snap->nseg; i++) {
		const uint8_t *now = (const uint8_t *)snap->start[i];

		for (size_t j = 0; j < snap->len[i]; j++)
			if (now[j] != snap->bytes[i][j])
				return snap->start[i] + j;
	}
	return 0;
}

static inline void ft_snap_free(struct ft_snap *snap)
{
	for (int i = 0; i < snap->nseg; i++)
		free(snap->bytes[i]);
	snap->nseg = 0;
}

static inline long ft_status_kb(const char *key)
{
	char line[256];
	long v = -1;
	size_t klen = strlen(key);
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':')
			v = strtol(line + klen + 1, NULL, 10);
	fclose(f);
	return v;
}

static inline long ft_rss_kb(void)
{
	return ft_status_kb("VmRSS");
}

static inline long ft_maps_lines(void)
{
	char line[512];
	long n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

#endif /* REWIRE_TEST_FT_TEST_H */
