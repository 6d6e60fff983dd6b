/* SPDX-License-Identifier: MIT */
/* select_json.c: what select.c reads in a child's JSON document. */
#ifndef REWIRE_TOOL_SELECT_JSON_H
#define REWIRE_TOOL_SELECT_JSON_H

#include <stddef.h>

/*
 * Whether @s (@n bytes) is exactly one JSON value (white space around it
 * allowed): 0, else -1. For an object, its boolean members "changed" and
 * "check" into *@changed and *@check (1, 0; -1 when absent).
 */
int sel_json_read(const char *s, size_t n, int *changed, int *check);

#endif /* REWIRE_TOOL_SELECT_JSON_H */
