/* SPDX-License-Identifier: MIT */
/* liblpf_lib.so: linked to test_lp_fork_dlclose, patchable (lpf.h). */
#include "lpf.h"

#include <unistd.h>

_Atomic int lpf_f_inside;

__attribute__((noipa)) int lpf_f(int fd)
{
	char c;

	if (fd >= 0) {
		lpf_f_inside++;
		/* Not a tail call: the frame stays until read() returns. */
		if (read(fd, &c, 1) != 1)
			return -1;
	}
	return LPF_F_OLD;
}

__attribute__((noipa)) int lpf_h(void)
{
	return LPF_H_OLD;
}
