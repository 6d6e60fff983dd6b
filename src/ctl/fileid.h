/* SPDX-License-Identifier: MIT */
/*
 * Private: the identity of a patch file, as the control server reports it
 * (FILE_ID in PATCH groups, wire.h) and as the rewire command computes it
 * for a local file to tell "the same patch" from "another build of it"
 * (`rewire apply`). Shared by librewire and the rewire command, which
 * compiles fileid.c into itself. Never installed.
 *
 * The identity, first that applies:
 *   1. the GNU build-id of the file (an NT_GNU_BUILD_ID note named "GNU",
 *      in a SHT_NOTE section or, without section headers, in a PT_NOTE
 *      segment), in lowercase hex: "5f1c...";
 *   2. "size:N-fnv:HHHHHHHHHHHHHHHH": N the size of the file in bytes, H
 *      the FNV-1a 64-bit hash of all its bytes (offset basis
 *      0xcbf29ce484222325, prime 0x100000001b3), 16 lowercase hex digits.
 * A build-id is a hash of the linked contents (ld --build-id, the
 * default of Debian's gcc), so two builds of a patch from other sources
 * differ; the second form covers files linked without one.
 */
#ifndef REWIRE_CTL_FILEID_H
#define REWIRE_CTL_FILEID_H

#include <stddef.h>

/* Room for either form: a build-id of up to 64 bytes, or the second form
 * with any 64-bit size. */
#define RW_FILE_ID_MAX 132

/*
 * rw_file_id - the identity of the file open on @fd (read with pread and
 * libelf; the file offset is not used or changed) into @out.
 * Returns 0; -EINVAL when @size < RW_FILE_ID_MAX; -EIO when the file
 * changed size while it was read; or the negative errno of fstat/pread.
 */
int rw_file_id(int fd, char *out, size_t size);

#endif /* REWIRE_CTL_FILEID_H */
