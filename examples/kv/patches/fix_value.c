/* SPDX-License-Identifier: MIT */
/*
 * fix_value.so: the live patch of examples/kv/kvserver.c.
 *
 * kvserver's kv_copy_value() copies the last 8 bytes of a value of 100
 * bytes or more from one byte too early, so GET returns those values with
 * their last 8 bytes wrong. This patch replaces kv_copy_value in the
 * running server with the same function, fixed. The server's threads
 * switch to it one by one, each once it is not inside the old function;
 * no thread is stopped and no connection is dropped.
 *
 * Built by rewire_add_patch(fix_value ...) in examples/kv/CMakeLists.txt
 * into fix_value.so next to rw-kvserver, or by hand:
 *	cc -O2 -fPIC -shared -Iinclude -o fix_value.so fix_value.c
 * Applied from outside with `rewire patch PID fix_value.so`, undone with
 * `rewire unpatch PID fix_value` (the name given to RW_PATCH below).
 */
#include <rewire/patch.h>

#include <string.h>

#define KV_BIG_VALUE 100

/* kv_copy_value with the tail copied from the right place. Static: the
 * server's symbol is named in the descriptor below, not by this name. */
static void kv_copy_value_fixed(char *dst, const char *src, size_t len)
{
	size_t i;

	if (len < KV_BIG_VALUE) {
		memcpy(dst, src, len);
		return;
	}
	for (i = 0; i + 8 <= len; i += 8)
		memcpy(dst + i, src + i, 8);
	/* The tail: the 8 bytes that end the value. */
	memcpy(dst + len - 8, src + len - 8, 8);
}

RW_PATCH_FUNCS(funcs) = {
	/* the main program's kv_copy_value, the only one of that name */
	RW_PATCH_FUNC(NULL, "kv_copy_value", 0, kv_copy_value_fixed),
};
RW_PATCH(fix_value, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
