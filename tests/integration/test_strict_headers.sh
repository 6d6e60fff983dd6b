#!/usr/bin/env bash
# Every public header compiles in a program built with a strict language
# standard, not only with GNU extensions: -std=c11 and -std=c17 (where the
# keywords asm and typeof do not exist), with -pedantic-errors on top, and
# C++ (-std=c++11 to c++20), each header on its own and the umbrella, with
# -Wall -Wextra -Werror. The translation units also use the macros (a
# static key and its branches, a static call, a tracepoint and its probes)
# so that the macro bodies are compiled, not only the declarations.
#
# The headers keep to GNU C's reserved spellings (__asm__, __typeof__,
# __attribute__, __extension__ on statement expressions), which every
# standard mode accepts. The macros still need GNU C (statement
# expressions, asm goto, __builtin_types_compatible_p): they are marked
# __extension__ so that -pedantic-errors accepts them too.
set -euo pipefail
cc=${REWIRE_CC:-cc}
cxx=${REWIRE_CXX:-}
if [ -z "$cxx" ]; then
	case $(basename "$cc") in
	*clang*) cxx=${cc/clang/clang++} ;;
	*gcc*) cxx=${cc/gcc/g++} ;;
	*) cxx=c++ ;;
	esac
fi
inc=(-I"$REWIRE_SOURCE_DIR/include" -I"$REWIRE_BUILD_DIR/include")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

headers=()
for h in "$REWIRE_SOURCE_DIR"/include/rewire/*.h; do
	headers+=("rewire/$(basename "$h")")
done
headers+=(rewire/config.h)

# The uses of the macros, for a TU that includes rewire/rewire.h (or the
# header that defines them).
key_use='RW_DEFINE_STATIC_KEY_FALSE(strict_off);
RW_DEFINE_STATIC_KEY_TRUE(strict_on);
extern int strict_slow(int);
int strict_key(int n);
int strict_key(int n)
{
	int acc = 0;
	for (int i = 0; i < n; i++) {
		if (rw_static_branch_unlikely(strict_off))
			acc += strict_slow(i);
		if (!rw_static_branch_likely(strict_on))
			acc -= strict_slow(i);
	}
	return acc + rw_static_key_enable(&strict_off) +
	       rw_static_key_dec(&strict_on) +
	       (int)rw_static_key_enabled(&strict_off);
}'
call_use='static int strict_f(int x) { return x + 1; }
static int strict_g(int x) { return x - 1; }
RW_DEFINE_STATIC_CALL(strict_sc, strict_f);
RW_STATIC_CALL_TARGET(strict_sc, strict_g);
int strict_call(int x);
int strict_call(int x)
{
	int r = rw_static_call(strict_sc)(x);
	r += rw_static_call_update(strict_sc, strict_g);
	return r + (rw_static_call_query(strict_sc) == strict_g);
}'
tp_use='RW_DECLARE_TRACEPOINT(strict_ev, (int, status), (const char *, path));
RW_DEFINE_TRACEPOINT(strict_ev, (int, status), (const char *, path));
static void strict_probe(void *d, int s, const char *p)
{
	(void)d;
	(void)s;
	(void)p;
}
int strict_tp(int s);
int strict_tp(int s)
{
	static int data;
	int r = rw_tracepoint_probe_register(strict_ev, strict_probe, &data, 0);
	if (rw_trace_strict_ev_enabled())
		r++;
	rw_trace_strict_ev(s, "/");
	r += rw_tracepoint_probe_unregister(strict_ev, strict_probe, &data);
	rw_rcu_read_lock();
	rw_rcu_read_unlock();
	return r;
}'

fails=0
compile() { # label driver std extra-flags... -- source-text
	local label=$1 drv=$2 std=$3 ext src log
	shift 3
	local flags=()
	while [ "$1" != -- ]; do
		flags+=("$1")
		shift
	done
	shift
	case $drv in
	"$cxx") ext=cc ;;
	*) ext=c ;;
	esac
	src="$tmp/$label.$ext"
	log="$tmp/$label.log"
	printf '%s\n' "$@" >"$src"
	if "$drv" "-std=$std" -Wall -Wextra -Werror "${flags[@]}" "${inc[@]}" \
		-c "$src" -o "$tmp/$label.o" >"$log" 2>&1; then
		echo "ok: $label"
	else
		echo "FAIL: $label"
		sed -n '1,30s/^/	/p' "$log"
		fails=$((fails + 1))
	fi
}

uses() { # header [c++] -> the macro uses that the header provides
	# Tracepoint definitions classify their argument types with C11's
	# _Generic: C only. A C++ file includes the header and fires or
	# probes tracepoints defined in C files through their functions.
	# Clang's C++ front end resolves the labels of two asm goto sites in
	# one function as if __label__ did not scope them: static branches
	# are checked in C++ with GCC only.
	local tp=$tp_use key=$key_use
	[ "${2:-}" = c++ ] && tp=
	[ "${2:-}" = c++ ] && [ -n "$clang" ] && key=
	case $1 in
	rewire/static_key.h) printf '%s\n' "$key" ;;
	rewire/static_call.h) printf '%s\n' "$call_use" ;;
	rewire/tracepoint.h | rewire/rewire.h)
		printf '%s\n' "$key" "$call_use" "$tp"
		;;
	esac
}

# Clang (not GCC) reports the GNU comma paste of the tracepoint macros
# (", ##__VA_ARGS__") under -pedantic: a program that wants both says so.
clang=
"$cc" --version 2>/dev/null | grep -q clang && clang=1
ped=-pedantic-errors
[ -n "$clang" ] && ped="$ped -Wno-gnu-zero-variadic-macro-arguments"
c_modes=("c11" "c17" "c11 $ped" "c17 $ped")
# liburcu's generic architecture header (used on aarch64, not on x86-64)
# calls clock_gettime(CLOCK_MONOTONIC), which a strict standard's <time.h>
# does not declare: a program that includes rewire/rcu.h there (directly
# or through rewire/provider.h, rewire/rewire.h ...) in a strict mode
# asks for POSIX, as rewire/rcu.h says. Only those headers get it.
urcu_posix() { # header -> 0 when it brings liburcu's generic arch header
	local deps
	# Read whole (no grep -q in a pipe: under pipefail, the compiler
	# killed by SIGPIPE after an early match would fail the pipe).
	deps=$("$cc" -std=gnu11 "${inc[@]}" -E -H -x c - \
		<<<"#include <$1>" 2>&1 >/dev/null) || true
	grep -q 'urcu/arch/generic\.h' <<<"$deps"
}
for h in "${headers[@]}"; do
	body=$(uses "$h")
	posix=
	urcu_posix "$h" && posix=-D_POSIX_C_SOURCE=200809L
	for m in "${c_modes[@]}"; do
		read -r std extra <<<"$m"
		label="$(basename "$h" .h)-$std${extra:+-pedantic}"
		# shellcheck disable=SC2086
		compile "$label" "$cc" "$std" $extra $posix -- \
			"#include <$h>" "int strict_tu;" "$body"
	done
done

if command -v "$cxx" >/dev/null 2>&1; then
	for h in "${headers[@]}"; do
		for std in c++11 c++14 c++17 c++20; do
			compile "$(basename "$h" .h)-$std" "$cxx" "$std" -- \
				"#include <$h>" "$(uses "$h" c++)"
		done
	done
else
	echo "note: no C++ compiler ($cxx): C++ modes not checked"
fi

if [ "$fails" -ne 0 ]; then
	echo "FAIL: $fails strict compile(s) failed"
	exit 1
fi
echo "strict headers: every header compiles in every mode"
