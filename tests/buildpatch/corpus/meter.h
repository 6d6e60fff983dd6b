// SPDX-License-Identifier: MIT
/*
 * meter.h - bptxx's C++ code the corpus's diffs change: a method
 * (cases/cxx_method.diff) and a function template (cases/cxx_template.diff).
 */
#ifndef METER_H
#define METER_H

namespace bpt
{

class Meter {
    public:
	explicit Meter(long base)
		: base_(base)
	{
	}
	long read(long x) const;

    private:
	long base_;
};

/* A version tag on top of @v. */
template <typename T> T tagged(T v)
{
	return v * 10 + 1;
}

} // namespace bpt

extern "C" {
long cxx_method(long x);
long cxx_tpl_long(long x);
long cxx_tpl_int(long x);
}

#endif
