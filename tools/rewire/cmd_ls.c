// SPDX-License-Identifier: MIT
/* rewire ls PID: what a process has that can be changed (one LS request). */
#include "rewire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rewire/common.h>

enum {
	OPT_KEYS = 10,
	OPT_CALLS,
	OPT_TPS,
	OPT_PATCHES,
	OPT_THREADS,
	OPT_FUNCTIONS,
};
static const struct opt ls_opts[] = {
	{ "functions", 0, false, OPT_FUNCTIONS },
	{ "keys", 0, false, OPT_KEYS },
	{ "calls", 0, false, OPT_CALLS },
	{ "tracepoints", 0, false, OPT_TPS },
	{ "patches", 0, false, OPT_PATCHES },
	{ "threads", 0, false, OPT_THREADS },
	{ NULL, 0, false, 0 },
};

#define STR_MAX (RW_WIRE_MAX_STR + 1)

static void gstr(const struct rw_wire_field *grp, uint16_t tag, char *out,
		 size_t size)
{
	if (!rw_wire_find_str(grp->data, grp->len, tag, out, size))
		out[0] = '\0';
}

static uint64_t gu64(const struct rw_wire_field *grp, uint16_t tag)
{
	uint64_t v = 0;

	rw_wire_find_u64(grp->data, grp->len, tag, &v);
	return v;
}

/* The C type of a FIELD group: CTYPE, or TYPE as a string. */
static void field_type(const struct rw_wire_field *f, char *out, size_t size)
{
	gstr(f, RW_TAG_CTYPE, out, size);
	if (!*out)
		gstr(f, RW_TAG_TYPE, out, size);
}

/* Appends "," + @s to a malloc'd list. */
static char *list_add(char *list, const char *sep, const char *s)
{
	char *n = xasprintf("%s%s%s", list ? list : "",
			    list && *list ? sep : "", s);

	free(list);
	return n;
}

static const char *onoff(uint64_t v)
{
	return v ? "on" : "off";
}

/*
 * Scratch space for the rows of a section, allocated once per section: the
 * strings of one group are read into it, row after row.
 */
struct ls_scratch {
	char name[STR_MAX];
	char obj[STR_MAX];
	char s[STR_MAX];
	char s2[STR_MAX];
	struct patch_info pi;
};

/*
 * A section of the listing: the groups of @tag in LS's reply, as the JSON
 * array @key or as a table under @title. @row prints one group: an object
 * on @j, or (j NULL) a row of @t.
 */
struct ls_section {
	int opt; /* the option that selects it */
	uint16_t tag;
	const char *key;
	const char *title;
	const char **head;
	int ncols;
	/* Columns of the table if not @ncols (NULL: always @ncols). */
	int (*ncols_of)(const struct rw_wire_msg *m);
	void (*row)(const struct rw_wire_field *f, struct json *j,
		    struct table *t, struct ls_scratch *s);
};

/* The NAME and OBJECT of group @f into @s; with @j, opens its object with
 * them. */
static void row_begin(const struct rw_wire_field *f, struct json *j,
		      struct ls_scratch *s)
{
	gstr(f, RW_TAG_NAME, s->name, STR_MAX);
	gstr(f, RW_TAG_OBJECT, s->obj, STR_MAX);
	if (j) {
		json_obj_begin(j);
		json_kstr(j, "name", s->name);
		json_kstr(j, "object", s->obj);
	}
}

/* The OBJECT column: the object's file name, or NULL ("-") if unknown. */
static const char *row_object(const struct ls_scratch *s)
{
	return *s->obj ? base_name(s->obj) : NULL;
}

/*
 * The strings of @tag in group @f (read through @buf): with @j, the array
 * @key; else returned as a malloc'd "," list, NULL if there are none.
 */
static char *row_strings(const struct rw_wire_field *f, uint16_t tag,
			 const char *key, struct json *j, char *buf)
{
	struct rw_wire_iter gi;
	struct rw_wire_field c;
	char *list = NULL;

	if (j) {
		json_key(j, key);
		json_arr_begin(j);
	}
	rw_wire_iter_group(&gi, f);
	while (rw_wire_next(&gi, &c)) {
		if (c.tag != tag || !rw_wire_get_str(&c, buf, STR_MAX))
			continue;
		if (j)
			json_str(j, buf);
		else
			list = list_add(list, ",", buf);
	}
	if (j)
		json_arr_end(j);
	return list;
}

static void key_row(const struct rw_wire_field *f, struct json *j,
		    struct table *t, struct ls_scratch *s)
{
	int64_t count = 0;
	char cnt[32], sites[32];

	row_begin(f, j, s);
	rw_wire_find_i64(f->data, f->len, RW_TAG_COUNT, &count);
	if (j) {
		json_kbool(j, "enabled", gu64(f, RW_TAG_ENABLED));
		json_ki64(j, "count", count);
		json_kbool(j, "initial", gu64(f, RW_TAG_INITIAL));
		json_ku64(j, "sites", gu64(f, RW_TAG_SITES));
		json_obj_end(j);
	} else {
		const char *cells[6] = {
			s->name, onoff(gu64(f, RW_TAG_ENABLED)),
			cnt,	 onoff(gu64(f, RW_TAG_INITIAL)),
			sites,	 row_object(s)
		};

		snprintf(cnt, sizeof(cnt), "%lld", (long long)count);
		snprintf(sites, sizeof(sites), "%llu",
			 (unsigned long long)gu64(f, RW_TAG_SITES));
		table_add(t, cells);
	}
}

static void call_row(const struct rw_wire_field *f, struct json *j,
		     struct table *t, struct ls_scratch *s)
{
	char *target = s->s, *cands;

	row_begin(f, j, s);
	gstr(f, RW_TAG_TARGET, target, STR_MAX);
	if (j)
		json_kstr(j, "target", target);
	cands = row_strings(f, RW_TAG_CANDIDATE, "candidates", j, s->s2);
	if (j) {
		json_obj_end(j);
	} else {
		const char *cells[4] = { s->name, target, cands,
					 row_object(s) };

		table_add(t, cells);
	}
	free(cands);
}

static void tracepoint_row(const struct rw_wire_field *f, struct json *j,
			   struct table *t, struct ls_scratch *s)
{
	char *str = s->s, *type = s->s2;
	struct rw_wire_iter gi;
	struct rw_wire_field c;
	char *args = NULL, *probes = NULL;
	uint64_t nprobes = gu64(f, RW_TAG_PROBES);

	row_begin(f, j, s);
	if (j) {
		json_ku64(j, "probes", nprobes);
		json_key(j, "fields");
		json_arr_begin(j);
	}
	/* Fields first, then probe names (two passes: JSON needs them
	 * apart). */
	rw_wire_iter_group(&gi, f);
	while (rw_wire_next(&gi, &c)) {
		uint64_t kind = 0;

		if (c.tag != RW_TAG_FIELD || c.kind != RW_WK_GROUP)
			continue;
		gstr(&c, RW_TAG_NAME, str, STR_MAX);
		field_type(&c, type, STR_MAX);
		rw_wire_find_u64(c.data, c.len, RW_TAG_KIND, &kind);
		if (j) {
			json_obj_begin(j);
			json_kstr(j, "name", str);
			json_kstr(j, "type", type);
			json_ku64(j, "kind", kind);
			json_obj_end(j);
		} else {
			size_t tl = strlen(type);
			char *a = xasprintf(
				"%s%s%s", type,
				tl && type[tl - 1] == '*' ? "" : " ", str);

			args = list_add(args, ", ", a);
			free(a);
		}
	}
	if (j)
		json_arr_end(j);
	probes = row_strings(f, RW_TAG_PROBE, "probe_names", j, str);
	if (j) {
		json_obj_end(j);
	} else {
		char *pr =
			probes ? xasprintf("%llu (%s)",
					   (unsigned long long)nprobes, probes)
			       : xasprintf("%llu", (unsigned long long)nprobes);
		const char *cells[4] = { s->name, pr, args ? args : "",
					 row_object(s) };

		table_add(t, cells);
		free(pr);
	}
	free(args);
	free(probes);
}

static void patch_row(const struct rw_wire_field *f, struct json *j,
		      struct table *t, struct ls_scratch *s)
{
	struct patch_info *pi = &s->pi;
	char threads[64], funcs[32], flags[48], id[40];

	patch_info_read(f->data, f->len, pi);
	if (j) {
		patch_info_json(j, pi);
	} else {
		const char *cells[7] = { pi->name, patch_state_name(pi->state),
					 threads,  funcs,
					 flags,	   id,
					 pi->path };

		snprintf(threads, sizeof(threads), "%llu/%llu",
			 (unsigned long long)pi->switched,
			 (unsigned long long)pi->total);
		snprintf(funcs, sizeof(funcs), "%llu",
			 (unsigned long long)pi->nfuncs);
		snprintf(flags, sizeof(flags), "%s%s%s%s%s",
			 pi->forced ? "forced" : "",
			 pi->forced && pi->replace ? "," : "",
			 pi->replace ? "replace" : "",
			 (pi->forced || pi->replace) && pi->from_dir ? "," : "",
			 pi->from_dir ? "from-dir" : "");
		/* A build-id's first 16 digits, as `rewire apply` compares
		 * it (whole in --json); "size:...-fnv:..." whole. */
		snprintf(id, sizeof(id), "%.*s",
			 strncmp(pi->file_id, "size:", 5) ? 16 : 39,
			 *pi->file_id ? pi->file_id : "-");
		if (!*flags)
			snprintf(flags, sizeof(flags), "-");
		table_add(t, cells);
	}
}

/* The PATCHED column only when some thread has the field. */
static int thread_ncols(const struct rw_wire_msg *m)
{
	struct rw_wire_iter it;
	struct rw_wire_field f;

	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		struct rw_wire_field p;

		if (f.tag == RW_TAG_THREAD && f.kind == RW_WK_GROUP &&
		    rw_wire_find(f.data, f.len, RW_TAG_PATCHED, &p))
			return 4;
	}
	return 3;
}

static void thread_row(const struct rw_wire_field *f, struct json *j,
		       struct table *t, struct ls_scratch *s)
{
	char name[256], state[16], tid[32];
	int64_t patched = -1;
	bool has_patched;

	(void)s;
	gstr(f, RW_TAG_NAME, name, sizeof(name));
	gstr(f, RW_TAG_STATE, state, sizeof(state));
	has_patched =
		rw_wire_find_i64(f->data, f->len, RW_TAG_PATCHED, &patched);
	if (j) {
		json_obj_begin(j);
		json_ku64(j, "tid", gu64(f, RW_TAG_TID));
		json_kstr(j, "name", name);
		json_kstr(j, "state", state);
		if (has_patched)
			json_ki64(j, "patched", patched);
		json_obj_end(j);
	} else {
		const char *cells[4] = { tid, name, state,
					 !has_patched	? NULL
					 : patched == 1 ? "yes"
					 : patched == 0 ? "no"
							: "?" };

		snprintf(tid, sizeof(tid), "%llu",
			 (unsigned long long)gu64(f, RW_TAG_TID));
		table_add(t, cells);
	}
}

static const char *key_head[] = { "NAME",    "STATE", "COUNT",
				  "DEFAULT", "SITES", "OBJECT" };
static const char *call_head[] = { "NAME", "TARGET", "CANDIDATES", "OBJECT" };
static const char *tracepoint_head[] = { "NAME", "PROBES", "ARGS", "OBJECT" };
static const char *patch_head[] = { "NAME",  "STATE",	"THREADS", "FUNCS",
				    "FLAGS", "FILE_ID", "PATH" };
static const char *thread_head[] = { "TID", "NAME", "STATE", "PATCHED" };

/* In the order they are printed. */
static const struct ls_section sections[] = {
	{ OPT_KEYS, RW_TAG_KEY, "keys", "KEYS", key_head, 6, NULL, key_row },
	{ OPT_CALLS, RW_TAG_CALL, "calls", "STATIC CALLS", call_head, 4, NULL,
	  call_row },
	{ OPT_TPS, RW_TAG_TRACEPOINT, "tracepoints", "TRACEPOINTS",
	  tracepoint_head, 4, NULL, tracepoint_row },
	{ OPT_PATCHES, RW_TAG_PATCH, "patches", "PATCHES", patch_head, 7, NULL,
	  patch_row },
	{ OPT_THREADS, RW_TAG_THREAD, "threads", "THREADS", thread_head, 4,
	  thread_ncols, thread_row },
};

static void ls_section(const struct rw_wire_msg *m, struct json *j,
		       const struct ls_section *sec)
{
	struct ls_scratch *s = xmalloc(sizeof(*s));
	struct rw_wire_iter it;
	struct rw_wire_field f;
	struct table t;
	size_t n = 0;

	if (j) {
		json_key(j, sec->key);
		json_arr_begin(j);
	} else {
		printf("%s\n", sec->title);
		table_init(&t, sec->ncols_of ? sec->ncols_of(m) : sec->ncols,
			   sec->head);
	}
	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		if (f.tag != sec->tag || f.kind != RW_WK_GROUP)
			continue;
		n++;
		sec->row(&f, j, &t, s);
	}
	if (j) {
		json_arr_end(j);
	} else {
		table_print(&t, stdout);
		if (!n)
			printf("(none)\n");
	}
	free(s);
}

/* --- ls --functions ----------------------------------------------------------
 * FUNC_LIST, in pages (NEXT, MORE).
 */

/* STATUS: a word for the table, a sentence for JSON. */
static const char *func_status(int64_t st, bool word)
{
	switch (st) {
	case 0:
		return word ? "traceable" : "traceable";
	case -RW_ERR_NOT_PATCHABLE:
		return word ? "no-entry" : "no patchable entry";
	case -EPERM:
		return word ? "rewire"
			    : "rewire's own code or a library it "
			      "calls while tracing";
	case -RW_ERR_BREAKPOINT:
		return word ? "breakpoint"
			    : "another tool's breakpoint is on "
			      "the entry";
	default:
		return word ? "no" : err_desc((int)st);
	}
}

static int ls_functions(struct conn *c, char **globs, int nglobs)
{
	struct ls_scratch *s = xmalloc(sizeof(*s));
	static const char *head[] = { "FUNCTION", "STATUS", "INLINED",
				      "OBJECT" };
	uint64_t from = 0, total = 0, traceable = 0, more = 1;
	struct table t;
	struct json j;
	int ret = 0;

	if (g.json) {
		json_init(&j, stdout);
		json_obj_begin(&j);
		json_ku64(&j, "pid", (uint64_t)c->pid);
		json_kstr(&j, "program", c->program);
		json_key(&j, "functions");
		json_arr_begin(&j);
	} else {
		table_init(&t, 4, head);
	}
	while (more) {
		struct rw_wire_msg m;
		struct rw_wire_iter it;
		struct rw_wire_field f;
		uint64_t next = from;

		conn_begin(c, RW_MSG_FUNC_LIST);
		for (int i = 0; i < nglobs; i++)
			rw_wire_str(&c->buf, RW_TAG_PATTERN, globs[i]);
		rw_wire_u64(&c->buf, RW_TAG_FROM, from);
		ret = conn_request(c, &m, "ls --functions");
		if (ret)
			break;
		rw_wire_iter_init(&it, m.payload, m.len);
		while (rw_wire_next(&it, &f)) {
			int64_t st = 0;
			uint64_t addr = 0, size = 0, inl = 0;
			char disp[STR_MAX + 4], inls[24];

			if (f.tag != RW_TAG_FUNCTION || f.kind != RW_WK_GROUP)
				continue;
			gstr(&f, RW_TAG_NAME, s->name, STR_MAX);
			gstr(&f, RW_TAG_DEMANGLED, s->s, STR_MAX);
			gstr(&f, RW_TAG_OBJECT, s->obj, STR_MAX);
			rw_wire_find_i64(f.data, f.len, RW_TAG_STATUS, &st);
			rw_wire_find_u64(f.data, f.len, RW_TAG_ADDR, &addr);
			rw_wire_find_u64(f.data, f.len, RW_TAG_SIZE, &size);
			rw_wire_find_u64(f.data, f.len, RW_TAG_INLINED, &inl);
			total++;
			traceable += st == 0;
			if (g.json) {
				json_obj_begin(&j);
				json_kstr(&j, "name", s->name);
				json_kstr(&j, "demangled",
					  *s->s ? s->s : s->name);
				json_kstr(&j, "object", s->obj);
				json_ku64(&j, "address", addr);
				json_ku64(&j, "size", size);
				json_kbool(&j, "traceable", st == 0);
				json_kstr(&j, "status", func_status(st, true));
				json_kstr(&j, "reason", func_status(st, false));
				json_ku64(&j, "inlined", inl);
				json_obj_end(&j);
				continue;
			}
			func_display(s->name, s->s, disp, sizeof(disp));
			snprintf(inls, sizeof(inls), "%llu",
				 (unsigned long long)inl);
			{
				const char *cells[4] = { disp,
							 func_status(st, true),
							 inl ? inls : NULL,
							 row_object(s) };

				table_add(&t, cells);
			}
		}
		more = 0;
		rw_wire_find_u64(m.payload, m.len, RW_TAG_NEXT, &next);
		rw_wire_find_u64(m.payload, m.len, RW_TAG_MORE, &more);
		rw_wire_msg_free(&m);
		if (more && next <= from) {
			ret = fail(EX_PROTO, -EPROTO,
				   "process %d: FUNC_LIST does not advance",
				   (int)c->pid);
			break;
		}
		from = next;
	}
	if (g.json) {
		json_arr_end(&j);
		json_obj_end(&j);
		if (!ret)
			json_done(&j);
	} else {
		if (!ret)
			table_print(&t, stdout);
		else
			table_print(&t, stderr);
		if (!ret && !g.quiet)
			msg("%llu function%s, %llu traceable",
			    (unsigned long long)total, total == 1 ? "" : "s",
			    (unsigned long long)traceable);
	}
	fflush(stdout);
	free(s);
	return ret;
}

int cmd_ls(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct rw_wire_msg m;
	struct json j;
	bool all, first = true;
	pid_t pid;
	int ret;

	/* --functions takes GLOBs after the PID. */
	ret = opts_parse(argc, argv, ls_opts, &v, false);
	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.set[OPT_FUNCTIONS]) {
		if (v.npos < 1)
			return usage_error("missing PID");
		if (!parse_pid(v.pos[0], &pid))
			return usage_error("'%s' is not a process id",
					   v.pos[0]);
		for (int i = 1; i < v.npos; i++)
			if (!*v.pos[i])
				return usage_error("empty function pattern");
		ret = conn_open(pid, &c);
		if (!ret)
			ret = ls_functions(&c, v.pos + 1, v.npos - 1);
		conn_close(&c);
		return ret;
	}
	ret = opts_parse_pid(argc, argv, ls_opts, &v, 1, "missing PID", &pid);
	if (ret)
		return ret < 0 ? EX_OK : ret;
	all = !v.set[OPT_KEYS] && !v.set[OPT_CALLS] && !v.set[OPT_TPS] &&
	      !v.set[OPT_PATCHES] && !v.set[OPT_THREADS];

	ret = conn_open(pid, &c);
	if (ret)
		goto out;
	conn_begin(&c, RW_MSG_LS);
	ret = conn_request(&c, &m, "ls");
	if (ret)
		goto out;

	if (g.json) {
		json_init(&j, stdout);
		json_obj_begin(&j);
		json_ku64(&j, "pid", (uint64_t)pid);
		json_kstr(&j, "program", c.program);
		json_kstr(&j, "cmdline", c.cmdline);
		json_kstr(&j, "version", c.libversion);
	}
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (!all && !v.set[sections[i].opt])
			continue;
		if (!g.json && !first)
			putchar('\n');
		first = false;
		ls_section(&m, g.json ? &j : NULL, &sections[i]);
	}
	if (g.json) {
		json_obj_end(&j);
		json_done(&j);
	}
	fflush(stdout);
	rw_wire_msg_free(&m);
out:
	conn_close(&c);
	return ret;
}
