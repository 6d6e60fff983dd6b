/* SPDX-License-Identifier: MIT */
/*
 * The instructions of a site, per architecture, for tests that look at
 * code bytes (the text writer, the int3/BRK protocol, static keys and
 * calls). What rewire itself encodes is tested against these, written
 * independently from the encoders in src/arch/.
 *
 *	RW_TEST_INSN		the length of a site (x86-64: 5, aarch64: 4)
 *	RW_TEST_NOP_ASM		a site's NOP, for asm bodies
 *	rw_test_nop[]		its bytes
 *	rw_test_is_trap(p)	rewire's trap is at p (int3 / BRK #0x7277)
 *	rw_test_is_call(p)	a call at p (e8 rel32 / BL)
 *	rw_test_is_jmp(p)	a jump at p (e9 rel32 / B)
 *	rw_test_target(p)	the target of the call or jump at p
 *	rw_test_trap_first	the trap covers the site's first byte only
 *				(x86-64) or the whole site (aarch64)
 */
#ifndef RW_TEST_INSN_H
#define RW_TEST_INSN_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#define RW_TEST_INSN 5
#define RW_TEST_NOP_ASM ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00"
static const uint8_t rw_test_nop[RW_TEST_INSN] = { 0x0f, 0x1f, 0x44, 0x00,
						   0x00 };

static inline bool rw_test_is_trap(const void *p)
{
	return *(volatile const uint8_t *)p == 0xcc;
}

static inline bool rw_test_is_call(const void *p)
{
	return *(volatile const uint8_t *)p == 0xe8;
}

static inline bool rw_test_is_jmp(const void *p)
{
	return *(volatile const uint8_t *)p == 0xe9;
}

static inline uintptr_t rw_test_target(const void *p)
{
	int32_t rel;

	memcpy(&rel, (const uint8_t *)p + 1, 4);
	return (uintptr_t)p + 5 + (uintptr_t)(intptr_t)rel;
}
#elif defined(__aarch64__)
#define RW_TEST_INSN 4
#define RW_TEST_NOP_ASM "nop"
static const uint8_t rw_test_nop[RW_TEST_INSN] = { 0x1f, 0x20, 0x03, 0xd5 };

static inline uint32_t rw_test_word(const void *p)
{
	return *(volatile const uint32_t *)p;
}

static inline bool rw_test_is_trap(const void *p)
{
	return rw_test_word(p) == 0xd42e4ee0u; /* brk #0x7277 */
}

static inline bool rw_test_is_call(const void *p)
{
	return (rw_test_word(p) & 0xfc000000u) == 0x94000000u;
}

static inline bool rw_test_is_jmp(const void *p)
{
	return (rw_test_word(p) & 0xfc000000u) == 0x14000000u;
}

static inline uintptr_t rw_test_target(const void *p)
{
	int32_t imm = (int32_t)(rw_test_word(p) << 6) >> 6;

	return (uintptr_t)p + (uintptr_t)((intptr_t)imm * 4);
}
#endif

#endif /* RW_TEST_INSN_H */
