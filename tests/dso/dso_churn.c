/* SPDX-License-Identifier: MIT */
/*
 * The object torture_dlopen loads and unloads again and again: 64 sites
 * (63 unlikely, 1 likely) of dl_exe_key, a key defined in the executable;
 * a key and a static call of its own; and a call into the executable's
 * static call, through the PLT.
 */
#include <rewire/rewire.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT int churn_exe_sum(void);
EXPORT int churn_exe_likely(void);
EXPORT long churn_exe_sites(void);
EXPORT int churn_key_on(void);
EXPORT struct rw_static_key *churn_key_ptr(void);
EXPORT int churn_call_it(int x);
EXPORT int churn_call_set(int which);
EXPORT int churn_call_exe(int x);

RW_DECLARE_STATIC_KEY_FALSE(dl_exe_key);
RW_DECLARE_STATIC_CALL(dl_exe_call, int(int));
RW_DEFINE_STATIC_KEY_TRUE(churn_key);

/* 63 unlikely sites of dl_exe_key: how many branches were taken. */
#define B1 s += rw_static_branch_unlikely(dl_exe_key) ? 1 : 0;
#define B7 B1 B1 B1 B1 B1 B1 B1
int churn_exe_sum(void)
{
	int s = 0;

	B7 B7 B7 B7 B7 B7 B7 B7 B7 return s;
}

int churn_exe_likely(void)
{
	return rw_static_branch_likely(dl_exe_key) ? 1 : 0;
}

/* Sites of dl_exe_key in this object, from its own table. */
long churn_exe_sites(void)
{
	long n = 0;

	for (struct rw__jump_entry *e = __start___rw_jump_table;
	     e < __stop___rw_jump_table; e++)
		if ((e->key & ~(uintptr_t)1) == (uintptr_t)&dl_exe_key.key)
			n++;
	return n;
}

int churn_key_on(void)
{
	return rw_static_branch_likely(churn_key) ? 1 : 0;
}

struct rw_static_key *churn_key_ptr(void)
{
	return &churn_key.key;
}

static int churn_add100(int x)
{
	return x + 100;
}

static int churn_add200(int x)
{
	return x + 200;
}

RW_DEFINE_STATIC_CALL(churn_call, churn_add100);

int churn_call_it(int x)
{
	return rw_static_call(churn_call)(x);
}

int churn_call_set(int which)
{
	return rw_static_call_update(churn_call,
				     which ? churn_add200 : churn_add100);
}

int churn_call_exe(int x)
{
	return rw_static_call(dl_exe_call)(x);
}
