// SPDX-License-Identifier: MIT
/*
 * select.c's reading of the children's JSON documents, with json-c (apart:
 * json-c's names clash with the writer of rewire.h).
 */
#include <json-c/json.h>

#include <stdbool.h>
#include <string.h>

#include "select_json.h"

int sel_json_read(const char *s, size_t n, int *changed, int *check)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o, *v;
	size_t used;
	int ret = -1;

	*changed = *check = -1;
	if (!tok)
		return -1;
	o = json_tokener_parse_ex(tok, s, (int)n);
	used = (size_t)json_tokener_get_parse_end(tok);
	if (!o || json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	while (used < n && strchr(" \t\r\n", s[used]))
		used++;
	if (used < n)
		goto out;
	ret = 0;
	if (!json_object_is_type(o, json_type_object))
		goto out;
	if (json_object_object_get_ex(o, "changed", &v) &&
	    json_object_is_type(v, json_type_boolean))
		*changed = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "check", &v) &&
	    json_object_is_type(v, json_type_boolean))
		*check = json_object_get_boolean(v);
out:
	json_object_put(o);
	json_tokener_free(tok);
	return ret;
}
