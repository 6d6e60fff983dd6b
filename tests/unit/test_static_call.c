/* SPDX-License-Identifier: MIT */
/*
 * Static calls: retargeting, NULL and return-0 targets, query, far targets
 * in another object (through a stub), trampolines defined in a dlopen()ed
 * object, and the shape of the code (a direct call to a trampoline that is
 * a direct jmp).
 */
#include <rewire/rewire.h>

#include "check.h"
#include "insn.h"

#include <dlfcn.h>
#include <stdint.h>

RW_DEFINE_STATIC_KEY_FALSE(exe_key);

static int add1(int x)
{
	return x + 1;
}

static int mul2(int x)
{
	return x * 2;
}

static int side_effect;
static void set_side(void)
{
	side_effect++;
}

RW_DEFINE_STATIC_CALL(op, add1);
RW_DEFINE_STATIC_CALL_NULL(hook, set_side);
RW_DEFINE_STATIC_CALL_RET0(ret, add1);

__attribute__((noinline)) static int call_op(int x)
{
	return rw_static_call(op)(x);
}

__attribute__((noinline)) static void call_hook(void)
{
	rw_static_call(hook)();
}

__attribute__((noinline)) static int call_ret(int x)
{
	return rw_static_call(ret)(x);
}

int main(void)
{
	char path[512];
	void *h;
	int (*far)(int), (*exe_on)(int), (*exe_on_likely)(int);
	int (*dso_key_on)(void), (*dso_call_it)(int);
	struct rw_static_key *(*dso_key_ptr)(void);

	CHECK_EQ(call_op(5), 6);
	CHECK(rw_static_call_query(op) == add1);
	CHECK_OK(rw_static_call_update(op, mul2));
	CHECK_EQ(call_op(5), 10);
	CHECK(rw_static_call_query(op) == mul2);
	CHECK_OK(rw_static_call_update(op, RW_STATIC_CALL_RET0));
	CHECK_EQ(call_op(5), 0);
	CHECK_OK(rw_static_call_update(op, add1));
	CHECK_EQ(call_op(5), 6);
	/* Same target again: nothing to write. */
	CHECK_OK(rw_static_call_update(op, add1));

	/* NULL: a call that does nothing. */
	call_hook();
	CHECK_EQ(side_effect, 0);
	CHECK(rw_static_call_query(hook) == NULL);
	CHECK_OK(rw_static_call_update(hook, set_side));
	call_hook();
	CHECK_EQ(side_effect, 1);
	CHECK_OK(rw_static_call_update(hook, NULL));
	call_hook();
	CHECK_EQ(side_effect, 1);

	/* RET0 from the start. */
	CHECK_EQ(call_ret(7), 0);
	CHECK_OK(rw_static_call_update(ret, add1));
	CHECK_EQ(call_ret(7), 8);

	CHECK_EQ(rw__static_call_update(NULL, NULL), -EINVAL);

#if defined(RW_BACKEND_X86_64)
	{
		/* The code shape: call_op calls the trampoline directly and
		 * the trampoline is a direct jmp to the target. */
		const uint8_t *t =
			(const uint8_t *)rw_static_call_ptr(op)->tramp;
		int32_t rel;

		CHECK_EQ(t[0], 0xe9);
		__builtin_memcpy(&rel, t + 1, 4);
		CHECK((uintptr_t)(t + 5 + rel) == (uintptr_t)add1);
	}
#elif defined(RW_BACKEND_AARCH64)
	{
		/* The trampoline: BTI C, then the slot, a B to the target
		 * (in reach: same executable). NULL and RET0 targets are B
		 * to the trampoline's own RET and MOV X0, #0; RET. */
		const uint32_t *t =
			(const uint32_t *)rw_static_call_ptr(op)->tramp;

		CHECK_EQ(t[0], 0xd503245fu);
		CHECK(rw_test_is_jmp(&t[1]));
		CHECK(rw_test_target(&t[1]) == (uintptr_t)add1);
		CHECK_EQ(t[2], 0xd65f03c0u);
		CHECK_EQ(t[3], 0xd2800000u);
		CHECK_EQ(t[4], 0xd65f03c0u);
		CHECK_OK(rw_static_call_update(op, NULL));
		CHECK(rw_test_target(&t[1]) == (uintptr_t)&t[2]);
		CHECK_OK(rw_static_call_update(op, RW_STATIC_CALL_RET0));
		CHECK(rw_test_target(&t[1]) == (uintptr_t)&t[3]);
		CHECK_OK(rw_static_call_update(op, add1));
		CHECK(rw_test_target(&t[1]) == (uintptr_t)add1);
	}
#endif

	/* An object loaded later: a key of ours already enabled is enabled at
	 * its sites on load; its own static call works; a target in it is far
	 * from our trampoline. */
	CHECK_OK(rw_static_key_enable(&exe_key));
	snprintf(path, sizeof(path), "%s/dso_sites.so", RW_TEST_DSO_DIR);
	for (int round = 0; round < 3; round++) {
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!h)
			SKIP("dlopen %s: %s", path, dlerror());
		far = (int (*)(int))dlsym(h, "dso_far_target");
		exe_on = (int (*)(int))dlsym(h, "dso_exe_key_on");
		exe_on_likely = (int (*)(int))dlsym(h, "dso_exe_key_on_likely");
		dso_key_on = (int (*)(void))dlsym(h, "dso_key_on");
		dso_call_it = (int (*)(int))dlsym(h, "dso_call_it");
		dso_key_ptr = (struct rw_static_key * (*)(void))
			dlsym(h, "dso_key_ptr");
		CHECK(far && exe_on && exe_on_likely && dso_key_on &&
		      dso_call_it && dso_key_ptr);
		CHECK_EQ(exe_on(0), 1);
		CHECK_EQ(exe_on_likely(0), 1);
		CHECK_OK(rw_static_key_disable(&exe_key));
		CHECK_EQ(exe_on(0), 0);
		CHECK_EQ(exe_on_likely(0), 0);
		CHECK_OK(rw_static_key_enable(&exe_key));
		CHECK_EQ(exe_on(0), 1);
		CHECK_EQ(rw_static_key_sites(&exe_key), RW_TEST_SITES(2));

		CHECK_EQ(dso_key_on(), 1);
		CHECK_OK(rw_static_key_disable(dso_key_ptr()));
		CHECK_EQ(dso_key_on(), 0);
		CHECK_OK(rw_static_key_enable(dso_key_ptr()));

		CHECK_EQ(dso_call_it(1), 101);

		CHECK_OK(rw_static_call_update(op, far));
		CHECK_EQ(call_op(5), 15);
		CHECK_OK(rw_static_call_update(op, add1));
		CHECK_EQ(call_op(5), 6);
		dlclose(h);
		/* The object's sites are gone from the registry. */
		CHECK_EQ(rw_static_key_sites(&exe_key), 0);
	}
	printf("static calls: ok\n");
	return 0;
}
