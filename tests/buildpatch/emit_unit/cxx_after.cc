// SPDX-License-Identifier: MIT
/*
 * cxx.cc after the fix: eu_twice<int> adds one, EuBox::get adds 500 and
 * catches its own exception (a catch clause: a type table in the patch's
 * LSDA), returning -7; the guard's destructor still runs either way.
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
	return x + x + 1;
}

class EuBox {
    public:
	int v;
	int get(int k);
};

__attribute__((noinline)) int EuBox::get(int k)
{
	EuGuard g{ &eu_cleanups };

	try {
		if (k > 100)
			throw std::runtime_error("too big");
	} catch (const std::exception &) {
		return -7;
	}
	return eu_twice(v) + k + 500;
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
