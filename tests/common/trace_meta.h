/* SPDX-License-Identifier: MIT */
/*
 * For programs that run a `rewire trace` session in-process (the ring
 * tests, rw-bench-trace): the descriptions of the session's tracepoints
 * that the control server sends with TRACE_START's reply, in the form the
 * reader (tools/rewire/trace_reader.h) takes. Include after "ctl/trace.h",
 * "trace_reader.h" and <rewire/tracepoint.h>.
 */
#ifndef REWIRE_TEST_TRACE_META_H
#define REWIRE_TEST_TRACE_META_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Fills up to @cap entries of @m; returns the number of tracepoints of the
 * session (more than @cap: the rest were left out). */
static inline size_t rw_test_trace_meta(const struct rw__trace *t,
					struct rw_trace_meta *m, size_t cap)
{
	size_t n = rw__trace_count(t);

	for (size_t i = 0; i < n && i < cap; i++) {
		const struct rw_tracepoint *tp = rw__trace_tp(t, i);

		memset(&m[i], 0, sizeof(m[i]));
		m[i].id = (uint32_t)i;
		snprintf(m[i].name, sizeof(m[i].name), "%s", tp->name);
		m[i].nargs = tp->nargs;
		for (unsigned k = 0; k < tp->nargs; k++) {
			snprintf(m[i].fields[k].name,
				 sizeof(m[i].fields[k].name), "%s",
				 tp->fields[k].name);
			snprintf(m[i].fields[k].ctype,
				 sizeof(m[i].fields[k].ctype), "%s",
				 tp->fields[k].type);
			m[i].fields[k].kind = (int)tp->fields[k].kind;
		}
	}
	return n;
}

#endif /* REWIRE_TEST_TRACE_META_H */
