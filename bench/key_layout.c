/* SPDX-License-Identifier: MIT */
/*
 * The static key loops of key_loops.h at the compiler's default loop
 * alignment: what a program built without special flags gets, where a
 * 5-byte NOP may push a tight loop across a fetch block boundary.
 */
#include "bench.h"

#define KEY_LOOP(name) bench_loop_##name##_default
#include "key_loops.h"
