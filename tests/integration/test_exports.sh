#!/usr/bin/env bash
# What librewire exports (doc/ABI.md): the dynamic symbol table of
# librewire.so holds exactly the rw_ symbols, each in a REWIRE_x.y version
# node and declared in a public header, plus the interposers of
# abi/interposers.txt, unversioned (all of them on the patching backend;
# on the generic one, only function tracing's); nothing else. The static archive's global
# symbols are rw_ or interposers too (no unprefixed name can collide with a
# program's). And the interposers do interpose: a program whose references
# are glibc's versioned ones (signal@GLIBC_2.2.5) reaches rewire's
# definitions when librewire is preloaded, as `rewire run` does.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"

fail() {
	echo "FAIL: $*"
	exit 1
}
for t in readelf nm; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "SKIP: $t (binutils) is not installed"
		exit 77
	}
done
lib=$REWIRE_BUILD_DIR/librewire.so
archive=$REWIRE_BUILD_DIR/librewire.a
list=$REWIRE_SOURCE_DIR/abi/interposers.txt
[ -e "$lib" ] || fail "$lib is not built"
[ -f "$list" ] || fail "$list is missing"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

grep -v -e '^#' -e '^[[:space:]]*$' "$list" | sort >"$tmp/interposers"
[ -s "$tmp/interposers" ] || fail "$list lists no interposer"
if [ -n "$(sort "$tmp/interposers" | uniq -d)" ]; then
	fail "$list lists a name twice: $(uniq -d "$tmp/interposers" | tr '\n' ' ')"
fi
x86=0
grep -q '^#define RW_BACKEND_X86_64 1' \
	"$REWIRE_BUILD_DIR/include/rewire/config.h" && x86=1
# ASan's ODR indicators (__odr_asan.<variable>): made by the compiler for
# each global variable in a sanitizer build, not by the code.
instrumentation() {
	[ -n "${REWIRE_SANITIZE:-}" ] && [[ $1 == __odr_asan[._]* ]]
}
cat "$REWIRE_SOURCE_DIR"/include/rewire/*.h \
	"$REWIRE_BUILD_DIR/include/rewire/config.h" >"$tmp/headers"

# readelf -W --dyn-syms: Num Value Size Type Bind Vis Ndx Name[@[@]VER].
# Defined global and weak symbols only.
readelf -W --dyn-syms "$lib" |
	awk '$5 == "GLOBAL" || $5 == "WEAK" { if ($7 != "UND") print $7, $8 }' \
		>"$tmp/dynsyms"
[ -s "$tmp/dynsyms" ] || fail "readelf found no defined dynamic symbol in $lib"

: >"$tmp/exported_interposers"
errors=0
nodes=0
while read -r ndx sym; do
	name=${sym%%@*}
	ver=
	case $sym in
	*@@*) ver=${sym#*@@} ;;
	*@*) ver=${sym#*@} ;;
	esac
	# The version nodes' own definitions: ABS symbols named after the
	# node (readelf prints them without the @@node of their own).
	if [ "$ndx" = ABS ] && { [ -z "$ver" ] || [ "$name" = "$ver" ]; }; then
		[[ $name =~ ^REWIRE_[0-9]+\.[0-9]+$ ]] || {
			echo "unexpected version node $name (nodes are REWIRE_<major>.<minor>)"
			errors=$((errors + 1))
		}
		nodes=$((nodes + 1))
		continue
	fi
	instrumentation "$name" && continue
	case $name in
	rw_*)
		if ! [[ $sym =~ ^rw_[A-Za-z0-9_]+@@REWIRE_[0-9]+\.[0-9]+$ ]]; then
			echo "$sym: an rw_ symbol not in a REWIRE_x.y node as its default version (src/librewire.map)"
			errors=$((errors + 1))
		fi
		if ! grep -qw -- "$name" "$tmp/headers"; then
			echo "$name: exported but declared in no public header (a leak: give it hidden visibility, or declare it in include/rewire/)"
			errors=$((errors + 1))
		fi
		;;
	*)
		if ! grep -qxF -- "$name" "$tmp/interposers"; then
			echo "$sym: exported, but neither rw_ nor in abi/interposers.txt (a leak)"
			errors=$((errors + 1))
		elif [ -n "$ver" ] && [ "$ver" != Base ]; then
			echo "$sym: an interposer in a version node; it must stay unversioned to take the place of libc's or libgcc's"
			errors=$((errors + 1))
		fi
		echo "$name" >>"$tmp/exported_interposers"
		;;
	esac
done <"$tmp/dynsyms"
[ "$nodes" -gt 0 ] || {
	echo "librewire.so defines no REWIRE_ version node (is src/librewire.map linked?)"
	errors=$((errors + 1))
}
if [ "$x86" = 1 ]; then
	sort -u "$tmp/exported_interposers" -o "$tmp/exported_interposers"
	missing=$(comm -23 "$tmp/interposers" "$tmp/exported_interposers")
	if [ -n "$missing" ]; then
		echo "listed in abi/interposers.txt but not exported: $(echo "$missing" | tr '\n' ' ')"
		errors=$((errors + 1))
	fi
fi
echo "librewire.so: $(grep -c ' rw_' "$tmp/dynsyms") rw_ symbols in $nodes node(s), $(wc -l <"$tmp/exported_interposers") interposers"

# The static archive: every defined global symbol is rw_ or an interposer.
if [ -f "$archive" ]; then
	nm -g --defined-only "$archive" 2>/dev/null |
		awk 'NF == 3 { print $3 }' | sort -u >"$tmp/static"
	[ -s "$tmp/static" ] || fail "nm found no global symbol in $archive"
	while read -r name; do
		case $name in
		rw_*) continue ;;
		esac
		instrumentation "$name" && continue
		grep -qxF -- "$name" "$tmp/interposers" && continue
		echo "librewire.a defines the global symbol $name: neither rw_ nor an interposer (it would collide with a program's own)"
		errors=$((errors + 1))
	done <"$tmp/static"
	echo "librewire.a: $(wc -l <"$tmp/static") global symbols, rw_ or interposers"
else
	echo "note: $archive not built, its symbols not checked"
fi
[ "$errors" = 0 ] || fail "$errors problem(s) in the exported symbols"

# Interposition through glibc's versioned references. Only the patching
# backend interposes; the sanitizer runtimes must come first in a preload.
if [ "$x86" = 0 ] || [ -n "${REWIRE_SANITIZE:-}" ]; then
	echo "interposition not checked: generic backend or sanitizer build"
	echo "PASS"
	exit 0
fi
cc=${REWIRE_CC:-cc}
cat >"$tmp/prog.c" <<'EOF'
#include <signal.h>
#include <stdio.h>

static void handler(int sig)
{
	(void)sig;
}

/* Blocks SIGTRAP; prints 1 if it is blocked (libc), 0 if not (rewire). */
int main(void)
{
	sigset_t s, cur;

	if (signal(SIGUSR1, handler) == SIG_ERR)
		return 2;
	sigemptyset(&s);
	sigaddset(&s, SIGTRAP);
	if (sigprocmask(SIG_BLOCK, &s, NULL) ||
	    sigprocmask(SIG_BLOCK, NULL, &cur))
		return 2;
	printf("%d\n", sigismember(&cur, SIGTRAP));
	return 0;
}
EOF
"$cc" -O2 -o "$tmp/prog" "$tmp/prog.c" || fail "cannot build the probe"
refs=$(readelf -W --dyn-syms "$tmp/prog")
for f in signal sigprocmask; do
	grep -Eq " $f@GLIBC_[0-9.]+" <<<"$refs" ||
		fail "the probe's reference to $f is not glibc-versioned: $(grep -w "$f" <<<"$refs")"
done
[ "$("$tmp/prog")" = 1 ] || fail "without rewire, the probe does not block SIGTRAP"
LD_PRELOAD=$(readlink -f "$lib") LD_DEBUG=bindings LD_DEBUG_OUTPUT=$tmp/ld \
	"$tmp/prog" >"$tmp/out" || fail "the probe fails with librewire preloaded"
cat "$tmp"/ld.* >"$tmp/bindings"
for f in signal sigprocmask; do
	grep -Eq "binding file $tmp/prog \[0\] to .*librewire\.so[^ ]* \[0\]: normal symbol \`$f' \[GLIBC_" \
		"$tmp/bindings" || {
		grep -E "binding file $tmp/prog .*\`$f'" "$tmp/bindings" || true
		fail "$f@GLIBC does not bind to librewire's unversioned $f"
	}
done
[ "$(cat "$tmp/out")" = 0 ] ||
	fail "with librewire preloaded, sigprocmask still blocks SIGTRAP: the interposer is not reached"
echo "signal@GLIBC and sigprocmask@GLIBC bind to librewire's interposers"

# libstdc++'s reference to _Unwind_RaiseException@GCC_3.0, likewise.
cxx=${REWIRE_CXX:-$(dirname "$(command -v "$cc")")/c++}
command -v "$cxx" >/dev/null 2>&1 || cxx=$(command -v c++ || true)
if [ -z "$cxx" ]; then
	echo "no C++ compiler: the libgcc interposers' binding not checked"
	echo "PASS"
	exit 0
fi
cat >"$tmp/throw.cc" <<'EOF'
int main()
{
	try {
		throw 42;
	} catch (int v) {
		return v == 42 ? 0 : 1;
	}
}
EOF
"$cxx" -O2 -o "$tmp/throw" "$tmp/throw.cc" || fail "cannot build the C++ probe"
rm -f "$tmp"/ld.*
LD_PRELOAD=$(readlink -f "$lib") LD_DEBUG=bindings LD_DEBUG_OUTPUT=$tmp/ld \
	"$tmp/throw" || fail "the C++ probe fails with librewire preloaded"
cat "$tmp"/ld.* >"$tmp/bindings"
grep -Eq "to .*librewire\.so[^ ]* \[0\]: normal symbol \`_Unwind_RaiseException' \[GCC_" \
	"$tmp/bindings" || {
	grep -E "\`_Unwind_RaiseException'" "$tmp/bindings" || true
	fail "_Unwind_RaiseException@GCC does not bind to librewire's interposer"
}
echo "_Unwind_RaiseException@GCC_3.0 binds to librewire's interposer"
echo "PASS"
