/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 validation for the rewire command's two JSON writers: json.c (the
 * subcommands' output) and trace_reader.c (the events of `rewire trace`,
 * also compiled into tests and benchmarks on its own, hence a header and
 * not a function of json.c). Both turn a byte that does not start a valid
 * sequence into \ufffd.
 */
#ifndef REWIRE_TOOL_UTF8_H
#define REWIRE_TOOL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Length of the valid UTF-8 sequence at @s (at most @n bytes, n >= 1), or
 * 0: a continuation byte, 0xc0/0xc1 or 0xf5..0xff first, a truncated
 * sequence, an overlong form, a surrogate or a code point above U+10FFFF.
 */
static inline size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

#endif /* REWIRE_TOOL_UTF8_H */
