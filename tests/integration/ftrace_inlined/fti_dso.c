/* SPDX-License-Identifier: MIT */
/*
 * test_ftrace_inlined: a library built as Debian builds it (-O2, hardening
 * flags, patchable entries) in which GCC inlines static functions:
 *   fti_full()  small, called four times from three functions: inlined
 *               into all of them, no code of its own;
 *   fti_once()  called once: inlined into its caller, no code of its own;
 *   fti_part()  inlined into fti_a() and fti_b(), and kept out of line
 *               because its address is taken (fti_part_ptr).
 * Each body writes a volatile counter, so that every inlined copy keeps
 * instructions (and a DWARF entry) of its own. Built as fti_dbg.so (-g,
 * its DWARF moved to a separate file named by .gnu_debuglink),
 * fti_inobj.so (-g) and fti_nodbg.so (-g0).
 */
int fti_a(int x);
int fti_b(int x);
int fti_c(int x);
extern int (*volatile fti_part_ptr)(int);

static volatile unsigned calls;

static int fti_full(int x)
{
	calls = calls + 1;
	return x * 5 + 1;
}

static int fti_once(int x)
{
	int s = 0;

	for (int i = 0; i < x; i++) {
		calls = calls + 1;
		s += i * x;
	}
	return s;
}

static int fti_part(int x)
{
	calls = calls + 1;
	return x * 3 - 2;
}

int (*volatile fti_part_ptr)(int) = fti_part;

int fti_a(int x)
{
	return fti_full(x) + fti_part(x);
}

int fti_b(int x)
{
	return fti_full(x + 1) * 2 + fti_part(x + 2) + fti_once(x);
}

int fti_c(int x)
{
	return fti_full(x) - fti_full(x * 3);
}
