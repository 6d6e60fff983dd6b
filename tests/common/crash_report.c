/* SPDX-License-Identifier: MIT */
/*
 * Linked into every torture test (tests/CMakeLists.txt): the crash report
 * of crash_report.h from the process's start, before main().
 */
#include "crash_report.h"

__attribute__((constructor)) static void rw_test_crash_report_init(void)
{
	rw_test_crash_report();
}
