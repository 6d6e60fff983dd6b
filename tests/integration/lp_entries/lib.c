/* SPDX-License-Identifier: MIT */
/*
 * test_lp_entries: one patchable function of a shared library, built twice
 * (test_lp_entries.cmake): liblpe_keep.so keeps GCC's five 1-byte NOPs
 * (LPE_FN = lpe_keep_fn), liblpe_fix.so has its entry rewritten by
 * rewire-entries (LPE_FN = lpe_fix_fn). Returns x + 1000.
 */
int LPE_FN(int x);

__attribute__((noinline, noipa)) int LPE_FN(int x)
{
	return x + 1000;
}
