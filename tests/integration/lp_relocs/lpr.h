/* SPDX-License-Identifier: MIT */
/*
 * test_lp_relocs: what every patch of the test shares. compute() becomes
 * compute_fixed(), whose addresses are fields that the loader fills from
 * the relocation table, as in a patch `rewire build-patch` makes: each
 * `movabsq $0, %reg` is followed by a hidden global label, and the table
 * entry writes at label - 8 (the imm64 is the movabs's last 8 bytes).
 *
 *   lpr_var_at   ABS64, the program's static variable "counter_var"
 *   lpr_fn_at    ABS64, the program's static function "helper_fn"
 *   lpr_int_at   ABS64, the patch's own internal_value (by address)
 *   pc32_field   PC32, internal_value - &pc32_field (data)
 *
 * compute_fixed(x) = helper_fn(x) + 2 * internal_value, and counts its
 * calls in counter_var. Each patch appends its own entries (LPR_PATCH).
 */
#ifndef LPR_H
#define LPR_H

#include <rewire/patch.h>

#include <stdint.h>

extern char lpr_var_at[], lpr_fn_at[], lpr_int_at[];

/* Never written by C: the loader writes it (volatile: not folded). */
static volatile int32_t pc32_field;
__attribute__((used)) static volatile int32_t far_field;
static long internal_value = 1000;

#define LPR_MOVABS(out, label)                               \
	__asm__ volatile("movabsq $0, %0\n\t"                \
			 ".globl " label "\n\t"              \
			 ".hidden " label "\n" label ":\n\t" \
			 : "=r"(out))

__attribute__((noinline, noclone, used)) static int compute_fixed(int x)
{
	uintptr_t at = (uintptr_t)&pc32_field;
	const long *internal, *via_pc32;
	int (*fn)(int);
	long *var;

	LPR_MOVABS(var, "lpr_var_at");
	LPR_MOVABS(fn, "lpr_fn_at");
	LPR_MOVABS(internal, "lpr_int_at");
	/* An address the compiler cannot see through. */
	__asm__("" : "+r"(at));
	via_pc32 = (const long *)(at + (uintptr_t)(intptr_t)pc32_field);
	__atomic_add_fetch(var, 1, __ATOMIC_RELAXED);
	return fn(x) + (int)*internal + (int)*via_pc32;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "compute", 0, compute_fixed),
};

#define LPR_GOOD_RELOCS                                                  \
	{ .where = lpr_var_at - 8,                                       \
	  .name = "counter_var",                                         \
	  .type = RW_PATCH_RELOC_ABS64 },                                \
		{ .where = lpr_fn_at - 8,                                \
		  .name = "helper_fn",                                   \
		  .type = RW_PATCH_RELOC_ABS64 },                        \
		{ .where = lpr_int_at - 8,                               \
		  .target = &internal_value,                             \
		  .type = RW_PATCH_RELOC_ABS64 },                        \
	{                                                                \
		.where = (void *)&pc32_field, .target = &internal_value, \
		.type = RW_PATCH_RELOC_PC32                              \
	}

/* The patch @pname: the good entries, then @... (more entries, or none). */
#define LPR_PATCH(pname, ...)                                            \
	RW_PATCH_RELOCS(relocs) = { LPR_GOOD_RELOCS, __VA_ARGS__ };      \
	RW_PATCH(pname, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs), \
		 .relocs = relocs, .nrelocs = RW_PATCH_COUNT(relocs))

#endif
