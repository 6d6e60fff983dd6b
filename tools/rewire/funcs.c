// SPDX-License-Identifier: MIT
/*
 * What `rewire trace --function`, funccount and funclatency share: the
 * session's function table (FUNCS, read in pages) and the names of
 * callers (SYMBOLIZE, cached).
 */
#include "rewire.h"

#include "trace_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void func_display(const char *name, const char *demangled, char *out,
		  size_t size)
{
	/* C++: the demangled name has its parameter list already. */
	if (demangled && *demangled && strcmp(demangled, name))
		snprintf(out, size, "%s", demangled);
	else
		snprintf(out, size, "%s()", name);
}

int funcs_fetch(struct conn *c, uint64_t n, struct rw_trace_func_meta **out)
{
	struct rw_trace_func_meta *f;
	uint64_t next = 0;

	*out = NULL;
	if (n > (1u << 24))
		return fail(EX_PROTO, -EPROTO, "process %d: %llu functions",
			    (int)c->pid, (unsigned long long)n);
	f = xmalloc(sizeof(*f) * (size_t)(n ? n : 1));
	memset(f, 0, sizeof(*f) * (size_t)(n ? n : 1));
	while (next < n) {
		struct rw_wire_msg m = { .fd = -1 };
		struct rw_wire_iter it;
		struct rw_wire_field gr;
		uint64_t after = next;
		int ret;

		conn_begin(c, RW_MSG_FUNCS);
		rw_wire_u64(&c->buf, RW_TAG_FROM, next);
		ret = conn_request(c, &m, "functions");
		if (ret) {
			free(f);
			return ret;
		}
		rw_wire_iter_init(&it, m.payload, m.len);
		while (rw_wire_next(&it, &gr)) {
			uint64_t id = UINT64_MAX;
			char dem[sizeof(f->display)];
			struct rw_trace_func_meta *x;

			if (gr.tag != RW_TAG_FUNCTION || gr.kind != RW_WK_GROUP)
				continue;
			rw_wire_find_u64(gr.data, gr.len, RW_TAG_ID, &id);
			if (id >= n)
				continue;
			x = &f[id];
			rw_wire_find_u64(gr.data, gr.len, RW_TAG_ADDR,
					 &x->addr);
			rw_wire_find_u64(gr.data, gr.len, RW_TAG_SIZE,
					 &x->size);
			rw_wire_find_str(gr.data, gr.len, RW_TAG_NAME, x->name,
					 sizeof(x->name));
			if (!rw_wire_find_str(gr.data, gr.len, RW_TAG_DEMANGLED,
					      dem, sizeof(dem)))
				dem[0] = '\0';
			func_display(x->name, dem, x->display,
				     sizeof(x->display));
		}
		rw_wire_find_u64(m.payload, m.len, RW_TAG_NEXT, &after);
		rw_wire_msg_free(&m);
		if (after <= next) {
			free(f);
			return fail(EX_PROTO, -EPROTO,
				    "process %d: FUNCS does not advance",
				    (int)c->pid);
		}
		next = after;
	}
	*out = f;
	return 0;
}

/* --- Callers ---------------------------------------------------------------
 * An open-addressed cache of SYMBOLIZE's answers; once a request fails,
 * nothing more is asked (the process is gone or too old) and addresses
 * print as numbers.
 */
#define SYMC_SIZE 8192 /* a power of two; full: not cached */

struct symc_ent {
	uint64_t addr; /* 0: empty */
	char *name;
};

struct symcache {
	struct conn *c;
	bool dead;
	size_t n;
	struct symc_ent e[SYMC_SIZE];
};

struct symcache *symcache_new(struct conn *c)
{
	struct symcache *s = xmalloc(sizeof(*s));

	memset(s, 0, sizeof(*s));
	s->c = c;
	return s;
}

void symcache_free(struct symcache *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < SYMC_SIZE; i++)
		free(s->e[i].name);
	free(s);
}

bool symcache_resolve(void *arg, uint64_t addr, char *out, size_t size)
{
	struct symcache *s = arg;
	size_t h = (size_t)((addr * 0x9e3779b97f4a7c15ull) >> 51) &
		   (SYMC_SIZE - 1);
	struct rw_wire_msg m = { .fd = -1 };
	char name[512] = "";

	out[0] = '\0';
	if (!addr)
		return false;
	for (size_t k = 0; k < SYMC_SIZE; k++, h = (h + 1) & (SYMC_SIZE - 1)) {
		if (!s->e[h].addr)
			break;
		if (s->e[h].addr == addr) {
			snprintf(out, size, "%s", s->e[h].name);
			return *out != '\0';
		}
	}
	if (s->dead)
		return false;
	conn_begin(s->c, RW_MSG_SYMBOLIZE);
	rw_wire_u64(&s->c->buf, RW_TAG_ADDR, addr);
	if (conn_call(s->c, &m, 5000)) {
		s->dead = true;
		return false;
	}
	rw_wire_find_str(m.payload, m.len, RW_TAG_SYMBOL, name, sizeof(name));
	rw_wire_msg_free(&m);
	if (s->n < SYMC_SIZE / 2 && !s->e[h].addr) {
		s->e[h].addr = addr;
		s->e[h].name = xasprintf("%s", name);
		s->n++;
	}
	snprintf(out, size, "%s", name);
	return *out != '\0';
}
