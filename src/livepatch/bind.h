/* SPDX-License-Identifier: MIT */
/*
 * bind.h - a patch's binding to the build it was made for.
 *
 * A patch may carry a non-allocated section ".rewire.bind" (it is read
 * from the file, before the patch is mapped, like .note.rewire). The
 * loader refuses the patch when a bound object is not loaded, when its
 * NT_GNU_BUILD_ID differs, or when a bound function's size or hash
 * differs (the last two also hold for objects built without a build-id).
 * `rewire build-patch` writes it; `rewire bind-patch PATCH.so --object
 * FILE` adds it to a hand-written patch (rewire_add_patch(... BIND
 * <target>) runs that after the link).
 *
 * The section is text, UTF-8, one record per line ('\n'), fields separated
 * by one '\t'; in fields, '%', '\t', '\n' and '\r' are written %25, %09,
 * %0A and %0D (and any "%XX" is decoded). Records:
 *
 *	rewire-bind<TAB>1
 *	object<TAB>OBJECT<TAB>BUILDID
 *	func<TAB>OBJECT<TAB>NAME<TAB>SYMPOS<TAB>SIZE<TAB>HASH
 *
 * The first line comes first and exactly once. OBJECT is named as in
 * struct rw_patch_func ("" for the main program, otherwise a base name or
 * a path); BUILDID is lower-case hex, or "-" for an object without one;
 * SYMPOS and SIZE are decimal; HASH is rw__func_hash() in 16 lower-case
 * hex digits. Each func's OBJECT must have an object line before it.
 * Unknown record types are an error (a newer format), so that a check is
 * never skipped silently.
 */
#ifndef REWIRE_LP_BIND_H
#define REWIRE_LP_BIND_H

#include <stddef.h>
#include <stdint.h>

#define RW__BIND_SECTION ".rewire.bind"
#define RW__BIND_VERSION 1

/*
 * rw__func_hash - FNV-1a (64 bits) of a function's bytes as the object's
 * file holds them (st_size bytes at st_value), except the five bytes of
 * its patchable entry (at offset 0, or 4 after an endbr64), which rewire
 * and rewire-entries rewrite. Both the builder and the loader read the
 * file, never memory: rewire changes bytes inside functions at run time
 * (static keys, tracepoints, static calls). On aarch64 the entry is one
 * 4-byte NOP at offset 0, or 4 after a BTI c (or BTI jc): the same five
 * bytes from there cover it (one byte more than needed, alike on both
 * sides). No x86-64 entry starts with a BTI's bytes (5f 24 03 d5 is pop
 * %rdi, and $3, %al, then an invalid opcode), so x86-64 hashes are as
 * before.
 */
static inline uint64_t rw__func_hash(const uint8_t *code, size_t size)
{
	static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
	uint64_t h = 0xcbf29ce484222325ull;
	size_t skip = 0;

	if (size >= 4 && code[0] == endbr64[0] && code[1] == endbr64[1] &&
	    code[2] == endbr64[2] && code[3] == endbr64[3])
		skip = 4;
	/* bti c (d503245f) or bti jc (d50324df), little-endian */
	if (size >= 4 && (code[0] == 0x5f || code[0] == 0xdf) &&
	    code[1] == 0x24 && code[2] == 0x03 && code[3] == 0xd5)
		skip = 4;
	for (size_t i = 0; i < size; i++) {
		if (i >= skip && i < skip + 5)
			continue;
		h ^= code[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#endif /* REWIRE_LP_BIND_H */
