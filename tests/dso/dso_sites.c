/* SPDX-License-Identifier: MIT */
/* A shared object with sites of a key defined in the executable, a key and
 * a static call of its own, and a function far from the executable. */
#include <rewire/rewire.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT int dso_far_target(int x);
EXPORT int dso_exe_key_on(void);
EXPORT int dso_exe_key_on_likely(void);
EXPORT int dso_key_on(void);
EXPORT struct rw_static_key *dso_key_ptr(void);
EXPORT int dso_call_it(int x);

RW_DECLARE_STATIC_KEY_FALSE(exe_key);
RW_DEFINE_STATIC_KEY_TRUE(dso_key);

int dso_far_target(int x)
{
	return x * 3;
}

int dso_exe_key_on(void)
{
	return rw_static_branch_unlikely(exe_key) ? 1 : 0;
}

int dso_exe_key_on_likely(void)
{
	return rw_static_branch_likely(exe_key) ? 1 : 0;
}

int dso_key_on(void)
{
	return rw_static_branch_likely(dso_key) ? 1 : 0;
}

struct rw_static_key *dso_key_ptr(void)
{
	return &dso_key.key;
}

static int dso_add100(int x)
{
	return x + 100;
}

RW_DEFINE_STATIC_CALL(dso_call, dso_add100);

int dso_call_it(int x)
{
	return rw_static_call(dso_call)(x);
}
