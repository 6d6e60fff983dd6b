/* SPDX-License-Identifier: MIT */
/* libftb_plain.so: built without patchable entries (test_ftrace_badinput). */
#ifndef FTB_PLAIN_H
#define FTB_PLAIN_H

int ftb_plain_fn(int x);

#endif /* FTB_PLAIN_H */
