/* SPDX-License-Identifier: MIT */
/* ftb_unloaded.so: patchable, built next to test_ftrace_badinput and never
 * loaded by it. */
int ftb_unloaded_fn(int x);

int ftb_unloaded_fn(int x)
{
	return x + 1;
}
