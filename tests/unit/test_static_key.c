/* SPDX-License-Identifier: MIT */
/*
 * Static keys: both flavours and both branch forms follow the key, the
 * reference count follows the kernel's rules, a flip is one batch of at
 * most three core syncs, and bad use returns errors.
 */
#include <rewire/rewire.h>

#include "check.h"

#include <limits.h>

RW_DEFINE_STATIC_KEY_FALSE(kf);
RW_DEFINE_STATIC_KEY_TRUE(kt);
static RW_DEFINE_STATIC_KEY_FALSE(many);

__attribute__((noinline)) static int kf_unlikely(void)
{
	if (rw_static_branch_unlikely(kf))
		return 1;
	return 0;
}

__attribute__((noinline)) static int kf_likely(void)
{
	if (rw_static_branch_likely(kf))
		return 1;
	return 0;
}

__attribute__((noinline)) static int kt_unlikely(void)
{
	if (rw_static_branch_unlikely(kt))
		return 1;
	return 0;
}

__attribute__((noinline)) static int kt_likely(void)
{
	if (rw_static_branch_likely(kt))
		return 1;
	return 0;
}

#define SITE(i) (rw_static_branch_unlikely(many) ? (i) : 0)
#define SITE10(i)                                                          \
	(SITE(i) + SITE(i + 1) + SITE(i + 2) + SITE(i + 3) + SITE(i + 4) + \
	 SITE(i + 5) + SITE(i + 6) + SITE(i + 7) + SITE(i + 8) + SITE(i + 9))

/* 50 sites of one key: 1 + ... + 50 = 1275 when enabled. */
__attribute__((noinline)) static long many_sites(void)
{
	long n = 0;

	n += SITE10(1);
	n += SITE10(11);
	n += SITE10(21);
	n += SITE10(31);
	n += SITE10(41);
	return n;
}

static void expect(int f_on, int t_on)
{
	CHECK_EQ(kf_unlikely(), f_on);
	CHECK_EQ(kf_likely(), f_on);
	CHECK_EQ(kt_unlikely(), t_on);
	CHECK_EQ(kt_likely(), t_on);
	CHECK_EQ(rw_static_key_enabled(&kf), f_on);
	CHECK_EQ(rw_static_key_enabled(&kt), t_on);
}

int main(void)
{
	struct rw_text_stats a, b;
	long nmany;

	expect(0, 1);
	CHECK_EQ(rw_static_key_sites(&kf), RW_TEST_SITES(2));
	CHECK_EQ(rw_static_key_sites(&kt), RW_TEST_SITES(2));
	nmany = rw_static_key_sites(&many);
#if defined(RW_BACKEND_AARCH64)
	/* GCC for aarch64 duplicates a site or two (tail duplication of the
	 * asm goto): every copy is a site of its own, patched with the rest
	 * (the sums below prove it). */
	CHECK(nmany >= 50 && nmany <= 60);
#else
	CHECK_EQ(nmany, RW_TEST_SITES(50));
#endif

	CHECK_OK(rw_static_key_enable(&kf));
	expect(1, 1);
	CHECK_OK(rw_static_key_disable(&kt));
	expect(1, 0);
	CHECK_OK(rw_static_key_enable(&kt));
	CHECK_OK(rw_static_key_disable(&kf));
	expect(0, 1);
	/* Idempotent. */
	CHECK_OK(rw_static_key_disable(&kf));
	CHECK_OK(rw_static_key_enable(&kt));
	expect(0, 1);

	/* Reference counting. */
	CHECK_OK(rw_static_key_inc(&kf));
	CHECK_OK(rw_static_key_inc(&kf));
	CHECK_EQ(rw_static_key_count(&kf), 2);
	expect(1, 1);
	CHECK_EQ(rw_static_key_disable(&kf), -EBUSY);
	CHECK_OK(rw_static_key_dec(&kf));
	expect(1, 1);
	CHECK_OK(rw_static_key_dec(&kf));
	expect(0, 1);
	CHECK_EQ(rw_static_key_dec(&kf), -EINVAL);
	CHECK_EQ(rw_static_key_count(&kf), 0);

	/* Overflow leaves the count alone. */
	__atomic_store_n(&kt.key.enabled, INT_MAX, __ATOMIC_RELAXED);
	CHECK_EQ(rw_static_key_inc(&kt), -EOVERFLOW);
	CHECK_EQ(rw_static_key_count(&kt), INT_MAX);
	__atomic_store_n(&kt.key.enabled, 1, __ATOMIC_RELAXED);

	/* Bad input. */
	CHECK_EQ((rw_static_key_enable)(NULL), -EINVAL);
	CHECK_EQ((rw_static_key_inc)(NULL), -EINVAL);
	CHECK_EQ((rw_static_key_enabled)(NULL), false);

	/* One batch, at most three syncs, for the 50 sites. */
	CHECK_EQ(many_sites(), 0);
	rw_text_get_stats(&a);
	CHECK_OK(rw_static_key_enable(&many));
	rw_text_get_stats(&b);
	CHECK_EQ(many_sites(), 1275);
#ifdef RW_BACKEND_PATCHING
	CHECK_EQ(b.batches - a.batches, 1);
	CHECK_EQ(b.sites_patched - a.sites_patched, (uint64_t)nmany);
	CHECK(b.syncs - a.syncs <= 3);
#endif
	CHECK_OK(rw_static_key_disable(&many));
	CHECK_EQ(many_sites(), 0);
	printf("static keys: ok\n");
	return 0;
}
