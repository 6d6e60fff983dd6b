/* SPDX-License-Identifier: MIT */
/* Pages of generated code near their callers (patching.h). */
#include "patching.h"

#include <sys/mman.h>

uintptr_t rw__arch_map_near(uintptr_t near, size_t size, uintptr_t span,
			    bool (*reachable)(uintptr_t near, uintptr_t page))
{
	const uintptr_t step = 1ul << 20;
	uintptr_t base = near & ~(step - 1);

	for (uintptr_t off = step; off < span; off += step) {
		for (int dir = -1; dir <= 1; dir += 2) {
			uintptr_t hint = dir < 0 ? base - off : base + off;
			void *p;

			if (dir < 0 && base < off)
				continue;
			p = mmap((void *)hint, size, PROT_READ | PROT_EXEC,
				 MAP_PRIVATE | MAP_ANONYMOUS |
					 MAP_FIXED_NOREPLACE,
				 -1, 0);
			if (p == MAP_FAILED)
				continue;
			if ((uintptr_t)p != hint ||
			    !reachable(near, (uintptr_t)p)) {
				munmap(p, size);
				continue;
			}
			return (uintptr_t)p;
		}
	}
	return 0;
}
