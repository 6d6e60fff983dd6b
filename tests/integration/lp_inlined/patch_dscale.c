/* SPDX-License-Identifier: MIT */
/* test_lp_inlined: a patch of dscale() in lpi_dbg.so, or with LPI_NODBG
 * in lpi_nodbg.so. */
#include <rewire/patch.h>

__attribute__((noinline)) static int dscale_fixed(int x)
{
	return x * 11 + 3;
}

#ifdef LPI_NODBG
RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("lpi_nodbg.so", "dscale", 0, dscale_fixed),
};
RW_PATCH(lpi_dscale_nodbg, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
#else
RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("lpi_dbg.so", "dscale", 0, dscale_fixed),
};
RW_PATCH(lpi_dscale_dbg, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
#endif
