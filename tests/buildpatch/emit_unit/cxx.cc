// SPDX-License-Identifier: MIT
/*
 * The C++ target of test_bp_emit, built into libeu_cxx.so (cxx_after.cc is
 * the fix): a method, a template instance (a weak comdat function) and a
 * destructor that runs during unwinding.
 */
#include "eu.h"

#include <stdexcept>

static int eu_cleanups;

struct EuGuard {
	int *p;
	~EuGuard()
	{
		__atomic_add_fetch(p, 1, __ATOMIC_RELAXED);
	}
};

template <typename T> __attribute__((noinline)) T eu_twice(T x)
{
	return x + x;
}

class EuBox {
    public:
	int v;
	int get(int k);
};

__attribute__((noinline)) int EuBox::get(int k)
{
	EuGuard g{ &eu_cleanups };

	if (k > 100)
		throw std::runtime_error("too big");
	return eu_twice(v) + k;
}

extern "C" int eu_cxx_get(int v, int k)
{
	EuBox b{ v };

	try {
		return b.get(k);
	} catch (const std::exception &) {
		return -1;
	}
}

extern "C" int eu_cxx_cleanups(void)
{
	return __atomic_load_n(&eu_cleanups, __ATOMIC_RELAXED);
}
