/* SPDX-License-Identifier: MIT */
/*
 * test_lp_pieces: lpp_refdso.so, dlopen'ed and dlclose'd by the test; the
 * patch lpp_ref calls into it through a reference.
 */
__attribute__((visibility("default"))) int lpp_ref_triple(int x);

int lpp_ref_triple(int x)
{
	return 3 * x;
}
