// SPDX-License-Identifier: MIT
/*
 * meter.cc - bptxx's probes into C++ code (see meter.h).
 */
#include "meter.h"

namespace bpt
{

long Meter::read(long x) const
{
	return x > 1000 ? 0 : base_ + 1;
}

/* Out-of-line copies, as a library would export them. */
template long tagged<long>(long);
template int tagged<int>(int);

} // namespace bpt

static const bpt::Meter meter(11000);

extern "C" long cxx_method(long x)
{
	return meter.read(x);
}

extern "C" long cxx_tpl_long(long x)
{
	return 12000 + bpt::tagged<long>(x > 1000 ? 1 : 0);
}

extern "C" long cxx_tpl_int(long x)
{
	return 13000 + bpt::tagged<int>(x > 1000 ? 2 : 0);
}
