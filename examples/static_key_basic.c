/* SPDX-License-Identifier: MIT */
/*
 * static_key_basic - a branch that costs a 5-byte NOP while it is off.
 *
 * The key `verbose` starts off, so the site in handle() is a NOP and the
 * log call is never reached. rw_static_key_enable() rewrites the site into
 * a jmp to the logging block, in every thread, and returns once every
 * thread runs the new code. Keys are also reference counts: _inc and _dec
 * let several users share one key.
 */
#include <rewire/rewire.h>

#include <stdio.h>
#include <stdlib.h>

/* A key that is off at build time: its sites are NOPs. */
RW_DEFINE_STATIC_KEY_FALSE(verbose);

static int handled;

__attribute__((noinline)) static void handle(int request)
{
	/* Pass the key by name, not by pointer. */
	if (rw_static_branch_unlikely(verbose))
		printf("  handling request %d\n", request);
	handled++;
}

static void check(int err, const char *what)
{
	if (err) {
		fprintf(stderr, "static_key_basic: %s: %s\n", what,
			rw_strerror(err));
		exit(1);
	}
}

int main(void)
{
	printf("verbose has %ld site(s), enabled: %d\n",
	       rw_static_key_sites(&verbose), rw_static_key_enabled(&verbose));

	handle(1); /* prints nothing: the site is a NOP */

	check(rw_static_key_enable(&verbose), "enable");
	handle(2); /* prints: the site is now a jmp */

	check(rw_static_key_disable(&verbose), "disable");
	handle(3); /* silent again */

	/* Reference counting: the key is on while anyone holds it. */
	check(rw_static_key_inc(&verbose), "inc"); /* 0 -> 1: sites rewritten */
	check(rw_static_key_inc(&verbose), "inc"); /* 1 -> 2: one CAS */
	check(rw_static_key_dec(&verbose), "dec"); /* 2 -> 1: still on */
	printf("count %d, enabled: %d\n", rw_static_key_count(&verbose),
	       rw_static_key_enabled(&verbose));
	handle(4);				   /* prints */
	check(rw_static_key_dec(&verbose), "dec"); /* 1 -> 0: sites rewritten */
	handle(5);				   /* silent */

	if (handled != 5 || rw_static_key_enabled(&verbose)) {
		fprintf(stderr, "static_key_basic: unexpected state\n");
		return 1;
	}
	printf("ok\n");
	return 0;
}
