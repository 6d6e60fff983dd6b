/* SPDX-License-Identifier: MIT */
/*
 * Part of test_sigtrap_entry, compiled as strict C (-std=c11, no
 * _GNU_SOURCE; see test_sigtrap_entry.cmake): glibc's <signal.h> then maps
 * signal() to __sysv_signal, which the test_sigtrap_entry_nm test checks.
 */
#undef _GNU_SOURCE
#include <signal.h>

void (*strict_signal(int sig, void (*handler)(int)))(int);

void (*strict_signal(int sig, void (*handler)(int)))(int)
{
	return signal(sig, handler);
}
