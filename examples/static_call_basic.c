/* SPDX-License-Identifier: MIT */
/*
 * static_call_basic - pick an implementation at run time, call it directly.
 *
 * rw_static_call(greet)(...) compiles to a direct call to the trampoline of
 * `greet`, which is a direct jmp to the current target: no function
 * pointer is loaded and no indirect branch is taken. rw_static_call_update()
 * rewrites the jmp while other threads may be calling, and returns once
 * every thread calls the new target. Targets of the wrong type do not
 * compile.
 */
#include <rewire/rewire.h>

#include <stdio.h>
#include <stdlib.h>

static int greet_en(const char *name)
{
	return printf("  hello, %s\n", name);
}

static int greet_fr(const char *name)
{
	return printf("  bonjour, %s\n", name);
}

/* A static call of greet_en's type, first pointing at greet_en. */
RW_DEFINE_STATIC_CALL(greet, greet_en);

static void check(int err, const char *what)
{
	if (err) {
		fprintf(stderr, "static_call_basic: %s: %s\n", what,
			rw_strerror(err));
		exit(1);
	}
}

int main(void)
{
	rw_static_call(greet)("world"); /* greet_en */

	check(rw_static_call_update(greet, greet_fr), "update to greet_fr");
	rw_static_call(greet)("monde"); /* greet_fr */

	/* The target as last set, with its type. */
	if (rw_static_call_query(greet) != greet_fr) {
		fprintf(stderr, "static_call_basic: query mismatch\n");
		return 1;
	}

	/* RW_STATIC_CALL_RET0: every call returns 0 and does nothing. */
	check(rw_static_call_update(greet, RW_STATIC_CALL_RET0),
	      "update to RET0");
	if (rw_static_call(greet)("nobody") != 0) {
		fprintf(stderr, "static_call_basic: RET0 returned non-zero\n");
		return 1;
	}

	check(rw_static_call_update(greet, greet_en), "update to greet_en");
	rw_static_call(greet)("again");
	printf("ok\n");
	return 0;
}
