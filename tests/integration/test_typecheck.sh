#!/usr/bin/env bash
# The type checks are real: a static call updated with a function of
# another type, and a static branch on something that is not a key, do not
# compile; the well-typed versions of the same code do. A check that let
# the bad code through would make this test fail.
set -euo pipefail
cc=${REWIRE_CC:-cc}
inc=(-I"$REWIRE_SOURCE_DIR/include" -I"$REWIRE_BUILD_DIR/include")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

compile() { # name expect(ok|fail) body...
	local name=$1 expect=$2 src="$tmp/$1.c" log="$tmp/$1.log"
	shift 2
	printf '%s\n' "#include <rewire/rewire.h>" "$@" >"$src"
	if "$cc" -std=gnu17 -D_GNU_SOURCE "${inc[@]}" -c "$src" -o "$tmp/$name.o" \
		>"$log" 2>&1; then
		got=ok
	else
		got=fail
	fi
	if [ "$got" != "$expect" ]; then
		echo "FAIL: $name: expected $expect, got $got"
		cat "$log"
		exit 1
	fi
	echo "ok: $name ($expect)"
}

common='static int f(int x) { return x; }
static long g(long x) { return x; }
static void v(void) {}
RW_DEFINE_STATIC_CALL(sc, f);
RW_DEFINE_STATIC_KEY_FALSE(key);
int not_a_key;'

compile update_same_type ok "$common" 'int t(void) { return rw_static_call_update(sc, f); }'
compile update_null ok "$common" 'int t(void) { return rw_static_call_update(sc, NULL); }'
compile update_ret0 ok "$common" 'int t(void) { return rw_static_call_update(sc, RW_STATIC_CALL_RET0); }'
compile update_other_type fail "$common" 'int t(void) { return rw_static_call_update(sc, g); }'
compile update_void_fn fail "$common" 'int t(void) { return rw_static_call_update(sc, v); }'
grep -q "does not match static call sc" "$tmp/update_other_type.log" ||
	{ echo "FAIL: no clear message for a mistyped update"; cat "$tmp/update_other_type.log"; exit 1; }
compile target_same_type ok "$common" 'RW_STATIC_CALL_TARGET(sc, f);'
compile target_other_type fail "$common" 'RW_STATIC_CALL_TARGET(sc, g);'
compile target_void_fn fail "$common" 'RW_STATIC_CALL_TARGET(sc, v);'
compile target_two ok "$common" 'static int f2(int x) { return -x; }
RW_STATIC_CALL_TARGET(sc, f); RW_STATIC_CALL_TARGET(sc, f2);'
grep -q "g does not have the type of static call sc" "$tmp/target_other_type.log" ||
	{ echo "FAIL: no clear message for a mistyped call target"; cat "$tmp/target_other_type.log"; exit 1; }
compile branch_on_key ok "$common" 'int t(void) { return rw_static_branch_unlikely(key); }'
compile branch_on_int fail "$common" 'int t(void) { return rw_static_branch_unlikely(not_a_key); }'
compile enable_key ok "$common" 'int t(void) { return rw_static_key_enable(&key); }'
compile enable_int fail "$common" 'int t(void) { return rw_static_key_enable(&not_a_key); }'

tp='RW_DECLARE_TRACEPOINT(ev, (int, status), (const char *, path));
RW_DEFINE_TRACEPOINT(ev, (int, status), (const char *, path));
static void good(void *d, int s, const char *p) { (void)d; (void)s; (void)p; }
static void bad_args(void *d, long s, const char *p) { (void)d; (void)s; (void)p; }
static void no_data(int s, const char *p) { (void)s; (void)p; }
static int d;'
compile tp_probe_ok ok "$tp" 'int t(void) { return rw_tracepoint_probe_register(ev, good, &d, 10) + rw_tracepoint_probe_unregister(ev, good, &d); }'
compile tp_fire_ok ok "$tp" 'void t(void) { rw_trace_ev(200, "/"); }'
compile tp_probe_wrong_arg fail "$tp" 'int t(void) { return rw_tracepoint_probe_register(ev, bad_args, &d, 10); }'
compile tp_probe_no_data fail "$tp" 'int t(void) { return rw_tracepoint_probe_register(ev, no_data, &d, 10); }'
compile tp_unregister_wrong fail "$tp" 'int t(void) { return rw_tracepoint_probe_unregister(ev, bad_args, &d); }'
grep -q "does not match tracepoint ev" "$tmp/tp_probe_wrong_arg.log" ||
	{ echo "FAIL: no clear message for a mistyped probe"; cat "$tmp/tp_probe_wrong_arg.log"; exit 1; }
compile tp_fire_too_few fail "$tp" 'void t(void) { rw_trace_ev(200); }'
compile tp_fire_wrong_type fail "$tp" 'struct s { int a; }; void t(void) { struct s x = { 1 }; rw_trace_ev(x, "/"); }'
compile tp_nine_args fail 'RW_DECLARE_TRACEPOINT(nine, (int, a), (int, b), (int, c), (int, d), (int, e), (int, f), (int, g), (int, h), (int, i));'
echo "typecheck: all cases behaved"
