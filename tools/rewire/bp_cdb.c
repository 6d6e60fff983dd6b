// SPDX-License-Identifier: MIT
/*
 * bp_cdb.c - reads compile_commands.json for `rewire build-patch`, with
 * json-c (kept apart from rewire.h, whose JSON writer has names json-c
 * also uses).
 */
#include "bp.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int bp_cdb_read(const char *path, struct bp_cdb_entry **out, size_t *nout,
		char *err, size_t errlen)
{
	struct json_object *root = json_object_from_file(path);
	struct bp_cdb_entry *es;
	size_t n;

	if (!root) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 json_util_get_last_err());
		return -1;
	}
	if (!json_object_is_type(root, json_type_array)) {
		json_object_put(root);
		snprintf(err, errlen,
			 "%s is not a compilation database (a JSON array of "
			 "commands)",
			 path);
		return -1;
	}
	n = json_object_array_length(root);
	es = calloc(n ? n : 1, sizeof(*es));
	if (!es) {
		json_object_put(root);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(root, i);
		struct json_object *args;
		struct bp_cdb_entry *o = &es[i];

		o->dir = dup_or_null(jstr(e, "directory"));
		o->file = dup_or_null(jstr(e, "file"));
		o->command = dup_or_null(jstr(e, "command"));
		if (json_object_object_get_ex(e, "arguments", &args) &&
		    json_object_is_type(args, json_type_array)) {
			o->nargs = json_object_array_length(args);
			o->args = calloc(o->nargs + 1, sizeof(char *));
			for (size_t k = 0; o->args && k < o->nargs; k++)
				o->args[k] = dup_or_null(json_object_get_string(
					json_object_array_get_idx(args, k)));
		}
	}
	json_object_put(root);
	*out = es;
	*nout = n;
	return 0;
}

void bp_cdb_free(struct bp_cdb_entry *es, size_t n)
{
	for (size_t i = 0; es && i < n; i++) {
		free(es[i].dir);
		free(es[i].file);
		free(es[i].command);
		for (size_t k = 0; k < es[i].nargs; k++)
			free(es[i].args[k]);
		free(es[i].args);
	}
	free(es);
}
