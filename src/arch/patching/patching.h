/* SPDX-License-Identifier: MIT */
/*
 * What the patching backends (x86-64, aarch64) share, for their own files
 * only (the sources in src/arch/patching/).
 */
#ifndef REWIRE_ARCH_PATCHING_H
#define REWIRE_ARCH_PATCHING_H

#include "../arch.h"

/*
 * A new read-only executable page of @size bytes for generated code,
 * mapped at a 1 MiB step from @near (nearest first, both sides, up to
 * @span away) where @reachable(@near, page) holds (the branches that will
 * jump to it reach the whole page), or 0. Never replaces a mapping
 * (MAP_FIXED_NOREPLACE).
 */
uintptr_t rw__arch_map_near(uintptr_t near, size_t size, uintptr_t span,
			    bool (*reachable)(uintptr_t near, uintptr_t page));

#endif /* REWIRE_ARCH_PATCHING_H */
