// SPDX-License-Identifier: MIT
/* rewire ls PID: what a process has that can be changed (one LS request). */
#include "rewire.h"

#include <stdlib.h>
#include <string.h>

enum {
	OPT_KEYS = 10,
	OPT_CALLS,
	OPT_TPS,
	OPT_PATCHES,
	OPT_THREADS,
};
static const struct opt ls_opts[] = {
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

static void ls_keys(const struct rw_wire_msg *m, struct json *j)
{
	static const char *head[] = { "NAME",	 "STATE", "COUNT",
				      "DEFAULT", "SITES", "OBJECT" };
	struct rw_wire_iter it;
	struct rw_wire_field f;
	struct table t;
	char *name = xmalloc(STR_MAX), *obj = xmalloc(STR_MAX);
	size_t n = 0;

	if (j) {
		json_key(j, "keys");
		json_arr_begin(j);
	} else {
		printf("KEYS\n");
		table_init(&t, 6, head);
	}
	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		int64_t count = 0;
		char cnt[32], sites[32];

		if (f.tag != RW_TAG_KEY || f.kind != RW_WK_GROUP)
			continue;
		gstr(&f, RW_TAG_NAME, name, STR_MAX);
		gstr(&f, RW_TAG_OBJECT, obj, STR_MAX);
		rw_wire_find_i64(f.data, f.len, RW_TAG_COUNT, &count);
		n++;
		if (j) {
			json_obj_begin(j);
			json_kstr(j, "name", name);
			json_kstr(j, "object", obj);
			json_kbool(j, "enabled", gu64(&f, RW_TAG_ENABLED));
			json_ki64(j, "count", count);
			json_kbool(j, "initial", gu64(&f, RW_TAG_INITIAL));
			json_ku64(j, "sites", gu64(&f, RW_TAG_SITES));
			json_obj_end(j);
		} else {
			const char *cells[6] = {
				name,  onoff(gu64(&f, RW_TAG_ENABLED)),
				cnt,   onoff(gu64(&f, RW_TAG_INITIAL)),
				sites, *obj ? base_name(obj) : NULL
			};

			snprintf(cnt, sizeof(cnt), "%lld", (long long)count);
			snprintf(sites, sizeof(sites), "%llu",
				 (unsigned long long)gu64(&f, RW_TAG_SITES));
			table_add(&t, cells);
		}
	}
	if (j) {
		json_arr_end(j);
	} else if (n) {
		table_print(&t, stdout);
	} else {
		table_print(&t, stdout);
		printf("(none)\n");
	}
	free(name);
	free(obj);
}

static void ls_calls(const struct rw_wire_msg *m, struct json *j)
{
	static const char *head[] = { "NAME", "TARGET", "CANDIDATES",
				      "OBJECT" };
	struct rw_wire_iter it;
	struct rw_wire_field f;
	struct table t;
	char *name = xmalloc(STR_MAX), *obj = xmalloc(STR_MAX);
	char *target = xmalloc(STR_MAX), *cand = xmalloc(STR_MAX);
	size_t n = 0;

	if (j) {
		json_key(j, "calls");
		json_arr_begin(j);
	} else {
		printf("STATIC CALLS\n");
		table_init(&t, 4, head);
	}
	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		struct rw_wire_iter gi;
		struct rw_wire_field c;
		char *cands = NULL;

		if (f.tag != RW_TAG_CALL || f.kind != RW_WK_GROUP)
			continue;
		gstr(&f, RW_TAG_NAME, name, STR_MAX);
		gstr(&f, RW_TAG_OBJECT, obj, STR_MAX);
		gstr(&f, RW_TAG_TARGET, target, STR_MAX);
		n++;
		if (j) {
			json_obj_begin(j);
			json_kstr(j, "name", name);
			json_kstr(j, "object", obj);
			json_kstr(j, "target", target);
			json_key(j, "candidates");
			json_arr_begin(j);
		}
		rw_wire_iter_group(&gi, &f);
		while (rw_wire_next(&gi, &c)) {
			if (c.tag != RW_TAG_CANDIDATE ||
			    !rw_wire_get_str(&c, cand, STR_MAX))
				continue;
			if (j)
				json_str(j, cand);
			else
				cands = list_add(cands, ",", cand);
		}
		if (j) {
			json_arr_end(j);
			json_obj_end(j);
		} else {
			const char *cells[4] = { name, target, cands,
						 *obj ? base_name(obj) : NULL };

			table_add(&t, cells);
		}
		free(cands);
	}
	if (j) {
		json_arr_end(j);
	} else {
		table_print(&t, stdout);
		if (!n)
			printf("(none)\n");
	}
	free(name);
	free(obj);
	free(target);
	free(cand);
}

static void ls_tracepoints(const struct rw_wire_msg *m, struct json *j)
{
	static const char *head[] = { "NAME", "PROBES", "ARGS", "OBJECT" };
	struct rw_wire_iter it;
	struct rw_wire_field f;
	struct table t;
	char *name = xmalloc(STR_MAX), *obj = xmalloc(STR_MAX);
	char *s = xmalloc(STR_MAX), *type = xmalloc(STR_MAX);
	size_t n = 0;

	if (j) {
		json_key(j, "tracepoints");
		json_arr_begin(j);
	} else {
		printf("TRACEPOINTS\n");
		table_init(&t, 4, head);
	}
	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		struct rw_wire_iter gi;
		struct rw_wire_field c;
		char *args = NULL, *probes = NULL;
		uint64_t nprobes = gu64(&f, RW_TAG_PROBES);

		if (f.tag != RW_TAG_TRACEPOINT || f.kind != RW_WK_GROUP)
			continue;
		gstr(&f, RW_TAG_NAME, name, STR_MAX);
		gstr(&f, RW_TAG_OBJECT, obj, STR_MAX);
		n++;
		if (j) {
			json_obj_begin(j);
			json_kstr(j, "name", name);
			json_kstr(j, "object", obj);
			json_ku64(j, "probes", nprobes);
			json_key(j, "fields");
			json_arr_begin(j);
		}
		/* Fields first, then probe names (two passes: JSON needs
		 * them apart). */
		rw_wire_iter_group(&gi, &f);
		while (rw_wire_next(&gi, &c)) {
			uint64_t kind = 0;

			if (c.tag != RW_TAG_FIELD || c.kind != RW_WK_GROUP)
				continue;
			gstr(&c, RW_TAG_NAME, s, STR_MAX);
			field_type(&c, type, STR_MAX);
			rw_wire_find_u64(c.data, c.len, RW_TAG_KIND, &kind);
			if (j) {
				json_obj_begin(j);
				json_kstr(j, "name", s);
				json_kstr(j, "type", type);
				json_ku64(j, "kind", kind);
				json_obj_end(j);
			} else {
				size_t tl = strlen(type);
				char *a = xasprintf(
					"%s%s%s", type,
					tl && type[tl - 1] == '*' ? "" : " ",
					s);

				args = list_add(args, ", ", a);
				free(a);
			}
		}
		if (j) {
			json_arr_end(j);
			json_key(j, "probe_names");
			json_arr_begin(j);
		}
		rw_wire_iter_group(&gi, &f);
		while (rw_wire_next(&gi, &c)) {
			if (c.tag != RW_TAG_PROBE ||
			    !rw_wire_get_str(&c, s, STR_MAX))
				continue;
			if (j)
				json_str(j, s);
			else
				probes = list_add(probes, ",", s);
		}
		if (j) {
			json_arr_end(j);
			json_obj_end(j);
		} else {
			char *pr =
				probes ? xasprintf("%llu (%s)",
						   (unsigned long long)nprobes,
						   probes)
				       : xasprintf("%llu",
						   (unsigned long long)nprobes);
			const char *cells[4] = { name, pr, args ? args : "",
						 *obj ? base_name(obj) : NULL };

			table_add(&t, cells);
			free(pr);
		}
		free(args);
		free(probes);
	}
	if (j) {
		json_arr_end(j);
	} else {
		table_print(&t, stdout);
		if (!n)
			printf("(none)\n");
	}
	free(name);
	free(obj);
	free(s);
	free(type);
}

static void ls_patches(const struct rw_wire_msg *m, struct json *j)
{
	static const char *head[] = { "NAME",  "STATE", "THREADS",
				      "FUNCS", "FLAGS", "PATH" };
	struct rw_wire_iter it;
	struct rw_wire_field f;
	struct table t;
	struct patch_info *pi = xmalloc(sizeof(*pi));
	size_t n = 0;

	if (j) {
		json_key(j, "patches");
		json_arr_begin(j);
	} else {
		printf("PATCHES\n");
		table_init(&t, 6, head);
	}
	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		char threads[64], funcs[32], flags[32];

		if (f.tag != RW_TAG_PATCH || f.kind != RW_WK_GROUP)
			continue;
		patch_info_read(f.data, f.len, pi);
		n++;
		if (j) {
			patch_info_json(j, pi);
		} else {
			const char *cells[6] = {
				pi->name, patch_state_name(pi->state),
				threads,  funcs,
				flags,	  pi->path
			};

			snprintf(threads, sizeof(threads), "%llu/%llu",
				 (unsigned long long)pi->switched,
				 (unsigned long long)pi->total);
			snprintf(funcs, sizeof(funcs), "%llu",
				 (unsigned long long)pi->nfuncs);
			snprintf(flags, sizeof(flags), "%s%s%s",
				 pi->forced ? "forced" : "",
				 pi->forced && pi->replace ? "," : "",
				 pi->replace ? "replace" : "");
			if (!*flags)
				snprintf(flags, sizeof(flags), "-");
			table_add(&t, cells);
		}
	}
	if (j) {
		json_arr_end(j);
	} else {
		table_print(&t, stdout);
		if (!n)
			printf("(none)\n");
	}
	free(pi);
}

static void ls_threads(const struct rw_wire_msg *m, struct json *j)
{
	static const char *head[] = { "TID", "NAME", "STATE", "PATCHED" };
	struct rw_wire_iter it;
	struct rw_wire_field f;
	struct table t;
	bool any_patched = false;
	char name[256], state[16];
	size_t n = 0;

	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		struct rw_wire_field p;

		if (f.tag == RW_TAG_THREAD && f.kind == RW_WK_GROUP &&
		    rw_wire_find(f.data, f.len, RW_TAG_PATCHED, &p))
			any_patched = true;
	}
	if (j) {
		json_key(j, "threads");
		json_arr_begin(j);
	} else {
		printf("THREADS\n");
		table_init(&t, any_patched ? 4 : 3, head);
	}
	rw_wire_iter_init(&it, m->payload, m->len);
	while (rw_wire_next(&it, &f)) {
		int64_t patched = -1;
		bool has_patched;
		char tid[32];

		if (f.tag != RW_TAG_THREAD || f.kind != RW_WK_GROUP)
			continue;
		gstr(&f, RW_TAG_NAME, name, sizeof(name));
		gstr(&f, RW_TAG_STATE, state, sizeof(state));
		has_patched = rw_wire_find_i64(f.data, f.len, RW_TAG_PATCHED,
					       &patched);
		n++;
		if (j) {
			json_obj_begin(j);
			json_ku64(j, "tid", gu64(&f, RW_TAG_TID));
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
				 (unsigned long long)gu64(&f, RW_TAG_TID));
			table_add(&t, cells);
		}
	}
	if (j) {
		json_arr_end(j);
	} else {
		table_print(&t, stdout);
		if (!n)
			printf("(none)\n");
	}
}

int cmd_ls(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct rw_wire_msg m;
	struct json j;
	bool all, first = true;
	pid_t pid;
	int ret = opts_parse(argc, argv, ls_opts, &v, false);

	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (v.npos < 1)
		return usage_error("missing PID");
	if (v.npos > 1)
		return usage_error("unexpected argument '%s'", v.pos[1]);
	if (!parse_pid(v.pos[0], &pid))
		return usage_error("'%s' is not a process id", v.pos[0]);
	all = !v.set[OPT_KEYS] && !v.set[OPT_CALLS] && !v.set[OPT_TPS] &&
	      !v.set[OPT_PATCHES] && !v.set[OPT_THREADS];

	ret = conn_open(pid, &c);
	if (ret)
		goto out;
	conn_begin(&c, RW_MSG_LS);
	ret = conn_call(&c, &m, -1);
	if (ret == EX_FAIL)
		ret = conn_fail(&c, "ls");
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
#define SECTION(opt, fn)                            \
	do {                                        \
		if (all || v.set[opt]) {            \
			if (!g.json && !first)      \
				putchar('\n');      \
			first = false;              \
			fn(&m, g.json ? &j : NULL); \
		}                                   \
	} while (0)
	SECTION(OPT_KEYS, ls_keys);
	SECTION(OPT_CALLS, ls_calls);
	SECTION(OPT_TPS, ls_tracepoints);
	SECTION(OPT_PATCHES, ls_patches);
	SECTION(OPT_THREADS, ls_threads);
#undef SECTION
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
