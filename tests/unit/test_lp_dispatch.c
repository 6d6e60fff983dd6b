/* SPDX-License-Identifier: MIT */
/*
 * Live patching dispatchers (rw__arch_dispatch_alloc, src/arch/): the
 * code a patched entry jumps to during a transition (src/livepatch/core.c).
 *
 *  1. A thread whose generation is an arm's goes to that arm's target,
 *     any other generation to the default; each thread by its own
 *     generation (thread-local, read at the offset given).
 *  2. Bit 31 ("being decided" by a checker) is cleared by the dispatcher,
 *     which then dispatches by the rest.
 *  3. Far targets (beyond B's +-128 MiB on aarch64, rel32 on x86-64) are
 *     reached.
 *  4. aarch64: both encodings of the clear (LDCLRAL with LSE, the
 *     LDAXR/STLXR loop without), each checked; more distinct far targets
 *     than a slot holds are refused (-E2BIG), six arms with the two
 *     targets core.c passes fit; the register contract: a call through a
 *     dispatcher reaches its target with every register but x16 and x17
 *     as the caller left it, sp and x30 included (the target signs x30
 *     with that sp: PACIASP).
 */
#include "check.h"

#include "arch/arch.h"
#include "text.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone, used))

static __thread _Atomic uint32_t gen __attribute__((tls_model("initial-exec")));

static NOINLINE int ret_1(void)
{
	return 1;
}

static NOINLINE int ret_2(void)
{
	return 2;
}

static NOINLINE int ret_3(void)
{
	return 3;
}

typedef int (*int_fn)(void);

/* A page far from this program's code, holding tiny functions that
 * return 100 + k (k < 32, one per 16 bytes). */
static uintptr_t far_page;

static void far_page_make(void)
{
	uintptr_t here = (uintptr_t)ret_1 & ~(uintptr_t)0xfff;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *p = MAP_FAILED;

	for (uintptr_t d = 8ull << 30; d <= 64ull << 30 && p == MAP_FAILED;
	     d += 4ull << 30) {
		uintptr_t want = here > d ? here - d : here + d;

		p = mmap((void *)want, pg, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
			 0);
		if (p != MAP_FAILED && (uintptr_t)p != want) {
			munmap(p, pg);
			p = MAP_FAILED;
		}
	}
	CHECK(p != MAP_FAILED);
	for (unsigned k = 0; k < 32; k++) {
		uint8_t *f = p + 16 * k;
#if defined(__aarch64__)
		uint32_t code[3] = {
			0xd503245fu,		      /* bti c */
			0x52800000u | (100 + k) << 5, /* mov w0, #100+k */
			0xd65f03c0u,		      /* ret */
		};
#else
		uint8_t code[6] = { 0xb8, (uint8_t)(100 + k), 0, 0, 0, 0xc3 };
#endif
		memcpy(f, code, sizeof(code));
	}
	__builtin___clear_cache((char *)p, (char *)p + pg);
	CHECK_EQ(mprotect(p, pg, PROT_READ | PROT_EXEC), 0);
	far_page = (uintptr_t)p;
}

static uintptr_t far_fn(unsigned k)
{
	return far_page + 16 * k;
}

static int32_t tls_off(void)
{
	intptr_t off = rw__arch_tls_offset((const void *)&gen);

	CHECK(off >= INT32_MIN && off <= INT32_MAX);
	return (int32_t)off;
}

static int alloc(const struct rw__arch_arm *arms, size_t n, uintptr_t dflt,
		 void **stub)
{
	int err;

	CHECK_OK(rw__lock_acquire(&rw__text_lock));
	err = rw__arch_dispatch_alloc((uintptr_t)ret_1, tls_off(), arms, n,
				      dflt, stub);
	rw__lock_release(&rw__text_lock);
	return err;
}

static void release(void *stub)
{
	CHECK_OK(rw__lock_acquire(&rw__text_lock));
	rw__arch_dispatch_free(stub);
	rw__lock_release(&rw__text_lock);
}

static int via(void *stub, uint32_t g)
{
	atomic_store(&gen, g);
	return ((int_fn)stub)();
}

/* ---- 1-3 ----------------------------------------------------------------- */

static void test_arms(const char *how)
{
	/* As core.c builds them: epochs alternate between two sides. */
	struct rw__arch_arm arms[RW__ARCH_DISPATCH_ARMS];
	void *stub;

	for (unsigned i = 0; i < RW__ARCH_DISPATCH_ARMS; i++) {
		arms[i].gen = 0x10000 * (i + 1) + 7 * i + 1;
		arms[i].target = i % 2 ? (uintptr_t)ret_2 : far_fn(i);
	}
	CHECK_OK(alloc(arms, RW__ARCH_DISPATCH_ARMS, (uintptr_t)ret_3, &stub));
	for (unsigned i = 0; i < RW__ARCH_DISPATCH_ARMS; i++)
		CHECK_EQ(via(stub, arms[i].gen), i % 2 ? 2 : (int)(100 + i));
	/* Any other generation: the default. */
	CHECK_EQ(via(stub, 0), 3);
	CHECK_EQ(via(stub, arms[0].gen + 1), 3);
	CHECK_EQ(via(stub, 0x7fffffff), 3);
	/* Bit 31: cleared, then dispatched by the rest. */
	for (unsigned i = 0; i < RW__ARCH_DISPATCH_ARMS; i++) {
		CHECK_EQ(via(stub, arms[i].gen | 0x80000000u),
			 i % 2 ? 2 : (int)(100 + i));
		CHECK_EQ(atomic_load(&gen), arms[i].gen);
	}
	CHECK_EQ(via(stub, 0x80000000u), 3);
	CHECK_EQ(atomic_load(&gen), 0);
	release(stub);

	/* No arm at all: always the default, far or near. */
	CHECK_OK(alloc(NULL, 0, far_fn(31), &stub));
	CHECK_EQ(via(stub, 5), 131);
	CHECK_EQ(via(stub, 5 | 0x80000000u), 131);
	CHECK_EQ(atomic_load(&gen), 5);
	release(stub);
	printf("%s: arms, default, bit 31, far targets: ok\n", how);
}

/* Each thread by its own generation. */
static void *thread_fn(void *arg)
{
	void *stub = arg;
	uintptr_t bad = 0;

	for (int i = 0; i < 100000; i++) {
		uint32_t g = (uint32_t)(i % 3);
		int want = g == 1 ? 1 : g == 2 ? 2 : 3;

		if (via(stub, g) != want)
			bad++;
	}
	return (void *)bad;
}

static void test_threads(void)
{
	struct rw__arch_arm arms[2] = { { 1, (uintptr_t)ret_1 },
					{ 2, (uintptr_t)ret_2 } };
	pthread_t t[4];
	void *stub, *bad;

	CHECK_OK(alloc(arms, 2, (uintptr_t)ret_3, &stub));
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, thread_fn, stub), 0);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(pthread_join(t[i], &bad), 0);
		CHECK(bad == NULL);
	}
	release(stub);
	printf("4 threads, each by its own generation: ok\n");
}

/* ---- 4. aarch64 ------------------------------------------------------------ */

#if defined(__aarch64__)
extern int rw__a64_dispatch_lse;

/*
 * rwt_probe(stub): calls @stub with x0-x15, x18-x29 set to 0x1000 + n,
 * having stored the sp and x30 the target must see; rwt_record, the
 * target, stores what it sees in rwt_seen[0..29] (x0-x29), [30] (x30),
 * [31] (sp).
 */
uint64_t rwt_seen[32], rwt_expect_sp, rwt_expect_lr;
void rwt_probe(void *stub);
void rwt_record(void);
__asm__(".text\n"
	".globl rwt_probe\n"
	".type rwt_probe,@function\n"
	"rwt_probe:\n"
	"	hint #34\n"
	"	stp x29, x30, [sp, #-96]!\n"
	"	stp x19, x20, [sp, #16]\n"
	"	stp x21, x22, [sp, #32]\n"
	"	stp x23, x24, [sp, #48]\n"
	"	stp x25, x26, [sp, #64]\n"
	"	stp x27, x28, [sp, #80]\n"
	"	mov x16, x0\n"
	"	adrp x17, rwt_expect_sp\n"
	"	add x17, x17, :lo12:rwt_expect_sp\n"
	"	mov x1, sp\n"
	"	str x1, [x17]\n"
	"	adrp x17, rwt_expect_lr\n"
	"	add x17, x17, :lo12:rwt_expect_lr\n"
	"	adr x1, 1f\n"
	"	str x1, [x17]\n"
	"	mov x0, #0x1000\n	mov x1, #0x1001\n"
	"	mov x2, #0x1002\n	mov x3, #0x1003\n"
	"	mov x4, #0x1004\n	mov x5, #0x1005\n"
	"	mov x6, #0x1006\n	mov x7, #0x1007\n"
	"	mov x8, #0x1008\n	mov x9, #0x1009\n"
	"	mov x10, #0x100a\n	mov x11, #0x100b\n"
	"	mov x12, #0x100c\n	mov x13, #0x100d\n"
	"	mov x14, #0x100e\n	mov x15, #0x100f\n"
	"	mov x18, #0x1012\n	mov x19, #0x1013\n"
	"	mov x20, #0x1014\n	mov x21, #0x1015\n"
	"	mov x22, #0x1016\n	mov x23, #0x1017\n"
	"	mov x24, #0x1018\n	mov x25, #0x1019\n"
	"	mov x26, #0x101a\n	mov x27, #0x101b\n"
	"	mov x28, #0x101c\n	mov x29, #0x101d\n"
	"	blr x16\n"
	"1:	ldp x19, x20, [sp, #16]\n"
	"	ldp x21, x22, [sp, #32]\n"
	"	ldp x23, x24, [sp, #48]\n"
	"	ldp x25, x26, [sp, #64]\n"
	"	ldp x27, x28, [sp, #80]\n"
	"	ldp x29, x30, [sp], #96\n"
	"	ret\n"
	".size rwt_probe, .-rwt_probe\n"
	".globl rwt_record\n"
	".type rwt_record,@function\n"
	"rwt_record:\n"
	"	hint #34\n"
	"	adrp x16, rwt_seen\n"
	"	add x16, x16, :lo12:rwt_seen\n"
	"	stp x0, x1, [x16, #0]\n"
	"	stp x2, x3, [x16, #16]\n"
	"	stp x4, x5, [x16, #32]\n"
	"	stp x6, x7, [x16, #48]\n"
	"	stp x8, x9, [x16, #64]\n"
	"	stp x10, x11, [x16, #80]\n"
	"	stp x12, x13, [x16, #96]\n"
	"	stp x14, x15, [x16, #112]\n"
	"	stp x18, x19, [x16, #144]\n"
	"	stp x20, x21, [x16, #160]\n"
	"	stp x22, x23, [x16, #176]\n"
	"	stp x24, x25, [x16, #192]\n"
	"	stp x26, x27, [x16, #208]\n"
	"	stp x28, x29, [x16, #224]\n"
	"	mov x17, sp\n"
	"	stp x30, x17, [x16, #240]\n"
	"	ret\n"
	".size rwt_record, .-rwt_record\n");

static void probe(void *stub, uint32_t g)
{
	memset(rwt_seen, 0, sizeof(rwt_seen));
	atomic_store(&gen, g);
	rwt_probe(stub);
	for (int i = 0; i < 30; i++)
		if (i != 16 && i != 17)
			CHECK_EQ(rwt_seen[i], 0x1000 + i);
	CHECK_EQ(rwt_seen[30], rwt_expect_lr);
	CHECK_EQ(rwt_seen[31], rwt_expect_sp);
}

static void test_registers(const char *how)
{
	struct rw__arch_arm arms[2] = { { 1, (uintptr_t)rwt_record },
					{ 2, (uintptr_t)ret_2 } };
	void *stub;

	CHECK_OK(alloc(arms, 2, (uintptr_t)ret_3, &stub));
	probe(stub, 1);
	/* Through the clear of bit 31 (the LL/SC loop spills x0). */
	probe(stub, 1 | 0x80000000u);
	CHECK_EQ(atomic_load(&gen), 1);
	release(stub);
	/* The default arm too. */
	CHECK_OK(alloc(arms + 1, 1, (uintptr_t)rwt_record, &stub));
	probe(stub, 7 | 0x80000000u);
	CHECK_EQ(atomic_load(&gen), 7);
	release(stub);
	printf("%s: only x16 and x17 change; sp and x30 kept: ok\n", how);
}

static void test_too_big(void)
{
	struct rw__arch_arm arms[RW__ARCH_DISPATCH_ARMS];
	void *stub = (void *)1;

	/* Seven distinct far targets: 7 literals and thunks do not fit
	 * with the LL/SC loop. */
	rw__a64_dispatch_lse = 0;
	for (unsigned i = 0; i < RW__ARCH_DISPATCH_ARMS; i++) {
		arms[i].gen = i + 1;
		arms[i].target = far_fn(i);
	}
	CHECK_EQ(alloc(arms, RW__ARCH_DISPATCH_ARMS, far_fn(20), &stub),
		 -E2BIG);
	CHECK(stub == NULL);
	/* Seven arms are more than any slot takes. */
	CHECK_EQ(alloc(arms, RW__ARCH_DISPATCH_ARMS + 1, far_fn(20), &stub),
		 -E2BIG);
	rw__a64_dispatch_lse = -1;
	printf("-E2BIG: ok\n");
}
#endif

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
	SKIP("dispatchers exist on the x86_64 and aarch64 backends only");
#endif
	far_page_make();
#if defined(__aarch64__)
	if (getauxval(AT_HWCAP) & (1ul << 8)) { /* HWCAP_ATOMICS */
		rw__a64_dispatch_lse = 1;
		test_arms("LSE (ldclral)");
		test_registers("LSE (ldclral)");
	} else {
		printf("no LSE on this CPU: the LDCLRAL dispatcher is not run\n");
	}
	rw__a64_dispatch_lse = 0;
	test_arms("LL/SC (ldaxr/stlxr)");
	test_registers("LL/SC (ldaxr/stlxr)");
	rw__a64_dispatch_lse = -1;
	test_too_big();
	test_threads();
#else
	test_arms("x86-64");
	test_threads();
#endif
	return 0;
}
