/* SPDX-License-Identifier: MIT */
/*
 * The trace clock on aarch64 (src/arch/arch.h, rw__arch_tsc*; the reader's
 * side is tools/rewire/trace_reader.c): the generic timer's virtual count,
 * CNTVCT_EL0, which rw__arch_tsc() reads inline with one MRS.
 *
 * - Present: Linux lets EL0 read CNTVCT_EL0 on every arm64 machine (the
 *   vDSO's clock_gettime() reads it too). Where a timer erratum needs a
 *   workaround, the kernel traps the read and returns the corrected count
 *   instead: slower, still right.
 * - Invariant: the architecture requires one system counter, at a
 *   constant frequency, that every core sees alike (the generic timer is
 *   "always on": its count goes on in low-power states). The virtual count
 *   is that count less the hypervisor's offset, which is the same for
 *   every vCPU of a guest, and which the kernel keeps the same for every
 *   process.
 * - Frequency: CNTFRQ_EL0, which firmware sets at boot (readable at EL0);
 *   0 if firmware left it unset, and the reader then calibrates from its
 *   own (count, clock) pairs as it does for a TSC of unknown frequency.
 *   Read once.
 */
#include "../arch.h"

#include <pthread.h>

static uint64_t cnt_freq;
static pthread_once_t cnt_once = PTHREAD_ONCE_INIT;

static void cnt_probe(void)
{
	uint64_t f;

	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
	/* The register's upper 32 bits are reserved (RES0). */
	cnt_freq = f & 0xffffffffu;
}

bool rw__arch_tsc_present(void)
{
	return true;
}

bool rw__arch_tsc_invariant(void)
{
	return true;
}

uint64_t rw__arch_tsc_hz(void)
{
	pthread_once(&cnt_once, cnt_probe);
	return cnt_freq;
}
