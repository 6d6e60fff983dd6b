// SPDX-License-Identifier: MIT
/* rewire key PID NAME on|off, rewire call PID NAME TARGET. */
#include "rewire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct opt no_opts[] = {
	{ NULL, 0, false, 0 },
};

static int parse_onoff(const char *s, uint64_t *v)
{
	static const char *on[] = { "on", "1", "true", "enable", "yes" };
	static const char *off[] = { "off", "0", "false", "disable", "no" };

	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		if (!strcmp(s, on[i])) {
			*v = 1;
			return 0;
		}
		if (!strcmp(s, off[i])) {
			*v = 0;
			return 0;
		}
	}
	return -1;
}

/* The key's state before the change, from LS, into *@state: 1, 0, or -1
 * unknown. Returns an exit code, the error printed. */
static int key_state(struct conn *c, const char *name, int *state)
{
	struct rw_wire_msg m;
	struct rw_wire_iter it;
	struct rw_wire_field f;
	char kname[RW_WIRE_MAX_STR + 1];
	int found = 0, ret;

	*state = -1;
	conn_begin(c, RW_MSG_LS);
	ret = conn_request(c, &m, "ls");
	if (ret)
		return ret;
	rw_wire_iter_init(&it, m.payload, m.len);
	while (rw_wire_next(&it, &f)) {
		uint64_t en = 0;

		if (f.tag != RW_TAG_KEY || f.kind != RW_WK_GROUP ||
		    !rw_wire_find_str(f.data, f.len, RW_TAG_NAME, kname,
				      sizeof(kname)) ||
		    strcmp(kname, name))
			continue;
		rw_wire_find_u64(f.data, f.len, RW_TAG_ENABLED, &en);
		/* Several keys of that name: the server refuses anyway. */
		*state = found++ ? -1 : (int)en;
	}
	rw_wire_msg_free(&m);
	return 0;
}

int cmd_key(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct rw_wire_msg m;
	uint64_t value, enabled = 0, sites = 0;
	pid_t pid;
	int old, ret = opts_parse_pid(argc, argv, no_opts, &v, 3,
				      "expected PID NAME on|off", &pid);

	if (ret)
		return ret < 0 ? EX_OK : ret;
	if (parse_onoff(v.pos[2], &value))
		return usage_error("'%s' is not on or off", v.pos[2]);

	ret = conn_open(pid, &c);
	if (ret)
		goto out;
	ret = key_state(&c, v.pos[1], &old);
	if (ret)
		goto out;
	conn_begin(&c, RW_MSG_KEY);
	rw_wire_str(&c.buf, RW_TAG_NAME, v.pos[1]);
	rw_wire_u64(&c.buf, RW_TAG_VALUE, value);
	ret = conn_request(&c, &m, "key %.200s", v.pos[1]);
	if (ret)
		goto out;
	if (!rw_wire_find_u64(m.payload, m.len, RW_TAG_ENABLED, &enabled))
		enabled = value;
	rw_wire_find_u64(m.payload, m.len, RW_TAG_SITES, &sites);
	rw_wire_msg_free(&m);
	if (g.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_kstr(&j, "key", v.pos[1]);
		json_key(&j, "old");
		if (old < 0)
			json_null(&j);
		else
			json_bool(&j, old);
		json_kbool(&j, "enabled", enabled);
		json_ku64(&j, "sites", sites);
		json_obj_end(&j);
		json_done(&j);
	} else {
		printf("%s: %s -> %s (%llu site%s)\n", v.pos[1],
		       old < 0 ? "?" : (old ? "on" : "off"),
		       enabled ? "on" : "off", (unsigned long long)sites,
		       sites == 1 ? "" : "s");
	}
out:
	conn_close(&c);
	return ret;
}

int cmd_call(int argc, char **argv)
{
	struct optv v;
	struct conn c;
	struct rw_wire_msg m;
	char old[RW_WIRE_MAX_STR + 1] = "?";
	char target[RW_WIRE_MAX_STR + 1];
	pid_t pid;
	int ret = opts_parse_pid(argc, argv, no_opts, &v, 3,
				 "expected PID NAME TARGET", &pid);

	if (ret)
		return ret < 0 ? EX_OK : ret;

	ret = conn_open(pid, &c);
	if (ret)
		goto out;
	conn_begin(&c, RW_MSG_CALL);
	rw_wire_str(&c.buf, RW_TAG_NAME, v.pos[1]);
	rw_wire_str(&c.buf, RW_TAG_TARGET, v.pos[2]);
	ret = conn_request(&c, &m, "call %.200s -> %.200s", v.pos[1], v.pos[2]);
	if (ret)
		goto out;
	rw_wire_find_str(m.payload, m.len, RW_TAG_OLD, old, sizeof(old));
	if (!rw_wire_find_str(m.payload, m.len, RW_TAG_TARGET, target,
			      sizeof(target)))
		snprintf(target, sizeof(target), "%s", v.pos[2]);
	rw_wire_msg_free(&m);
	if (g.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_kstr(&j, "call", v.pos[1]);
		json_kstr(&j, "old", old);
		json_kstr(&j, "target", target);
		json_obj_end(&j);
		json_done(&j);
	} else {
		printf("%s: %s -> %s\n", v.pos[1], old, target);
	}
out:
	conn_close(&c);
	return ret;
}
