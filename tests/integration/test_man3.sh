#!/usr/bin/env bash
# test_man3: the API reference (man3 pages generated from the headers'
# comments by scripts/gen-man3.py into BUILD/doc/man3; doc/CMakeLists.txt).
#
# 1. Every API symbol that librewire.so exports (nm -D: rw_*, not the rw__
#    entry points of inline code and macros) and every public macro (each
#    #define rw_* / RW_* of include/rewire/*.h and config.h.in, not rw__ /
#    RW__, minus the plumbing below) has a page NAME.3. The lists come from
#    the library and the headers, not from the generator.
# 2. Every page renders with groff -man -ww without a warning (also at 80
#    columns, as lintian checks); real pages have NAME, SYNOPSIS with the
#    #include, DESCRIPTION and SEE ALSO, and rewire(3) lists each of them.
# 3. After `cmake --install --component man3` into a prefix under the build
#    dir, `MANPATH=PREFIX/share/man man 3 rw_static_call_update` shows the
#    page, and a name documented with others (a .so link) shows its page.
# 4. The check of 1 catches a missing comment: the generator, run on a copy
#    of the headers without rw_static_call_update's comment, makes no page
#    for it, and the check then fails naming it.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"

cmake_bin=${REWIRE_CMAKE:-cmake}
lib=$REWIRE_BUILD_DIR/librewire.so
man3=$REWIRE_BUILD_DIR/doc/man3
inc=$REWIRE_SOURCE_DIR/include/rewire
gen=$REWIRE_SOURCE_DIR/scripts/gen-man3.py
fail() {
	echo "FAIL: $*"
	exit 1
}
skip() {
	echo "SKIP: $*"
	exit 77
}
for tool in nm groff man python3; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
[ -f "$lib" ] || skip "$lib is not built"
[ -d "$man3" ] || fail "$man3 is not built (the man3 target, doc/CMakeLists.txt)"

# Macros the headers define for their own use, with no page:
#   RW_EXPORT, RW_EXTERN_C_BEGIN, RW_EXTERN_C_END  declaration plumbing
#   RW_TSAN                   set when the includer is built with TSan
#   RW_TRACEPOINT_TEST_DELAY  a hook of rewire's own torture tests
excluded="RW_EXPORT RW_EXTERN_C_BEGIN RW_EXTERN_C_END RW_TSAN RW_TRACEPOINT_TEST_DELAY"

tmp=$REWIRE_BUILD_DIR/test_man3
rm -rf "$tmp"
mkdir -p "$tmp"

nm -D --defined-only "$lib" | awk '{ print $3 }' | sed 's/@.*//' |
	grep '^rw_' | grep -v '^rw__' | sort -u >"$tmp/symbols"
grep -hE '^[[:space:]]*#[[:space:]]*define[[:space:]]+(rw_|RW_)' \
	"$inc"/*.h "$inc"/config.h.in |
	sed -E 's/^[[:space:]]*#[[:space:]]*define[[:space:]]+([A-Za-z0-9_]+).*/\1/' |
	grep -v '^rw__\|^RW__' | grep -vxF -f <(tr ' ' '\n' <<<"$excluded") |
	sort -u >"$tmp/macros"
[ "$(wc -l <"$tmp/symbols")" -gt 50 ] || fail "too few symbols in $lib"
[ "$(wc -l <"$tmp/macros")" -gt 30 ] || fail "too few macros in $inc"
grep -qx rw_static_call_update "$tmp/macros" ||
	fail "the macro list lacks rw_static_call_update"

# missing_pages DIR: the names of symbols and macros without DIR/NAME.3.
missing_pages() {
	local name
	sort -u "$tmp/symbols" "$tmp/macros" | while read -r name; do
		[ -f "$1/$name.3" ] || echo "$name"
	done
}

# 1. Coverage.
missing_pages "$man3" >"$tmp/missing"
if [ -s "$tmp/missing" ]; then
	sed 's/^/  no page: /' "$tmp/missing"
	fail "$(wc -l <"$tmp/missing") API names have no man3 page in $man3"
fi
echo "pages: $(wc -l <"$tmp/symbols") symbols, $(wc -l <"$tmp/macros") macros, $(ls "$man3" | wc -l) files"

# 2. Rendering, sections, overview. groff resolves ".so man3/X.3" from the
# directory above man3.
# One groff run for all the pages (its warnings name the file and line):
# as groff formats by default, and as man does on an 80-column terminal,
# which is how lintian checks man pages (man --warnings, MANWIDTH=80).
cd "$man3/.."
for opts in "" "-Tutf8 -rLL=80n -rLT=80n"; do
	# shellcheck disable=SC2086
	groff -man -ww -z $opts man3/*.3 2>"$tmp/warn" ||
		fail "groff${opts:+ $opts} fails: $(cat "$tmp/warn")"
	if [ -s "$tmp/warn" ]; then
		cat "$tmp/warn"
		fail "groff${opts:+ $opts} warns about $(wc -l <"$tmp/warn") lines of the pages"
	fi
done
# A few processes for all the pages, not a few per page: CI machines are
# loaded, and forks are what costs.
: >"$tmp/real"
for page in man3/*.3; do
	read -r first <"$page"
	case $first in
	".so "*)
		[ -f "${first#.so }" ] || fail "$page links to a missing ${first#.so }"
		;;
	*) echo "$page" >>"$tmp/real" ;;
	esac
done
mapfile -t real <"$tmp/real"
for sec in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
	lacking=$(grep -Lx "\.SH $sec" "${real[@]}" || true)
	[ -z "$lacking" ] || fail "no $sec section in: $lacking"
done
lacking=$(grep -L '^\.B #include <rewire/[a-z_]*\.h>$' "${real[@]}" |
	grep -vx man3/rewire.3 || true)
[ -z "$lacking" ] || fail "no #include in the SYNOPSIS of: $lacking"
grep -o '\\fB[A-Za-z0-9_]*\\fR(3)' man3/rewire.3 |
	sed 's/^\\fB//; s/\\fR(3)$//' | sort -u >"$tmp/listed"
printf '%s\n' "${real[@]}" | sed 's|man3/||; s|\.3$||' | grep -vx rewire |
	sort -u >"$tmp/pages"
unlisted=$(comm -23 "$tmp/pages" "$tmp/listed")
[ -z "$unlisted" ] || fail "rewire(3) does not list: $unlisted"
grep -q RETURN "man3/rw_static_call_update.3" ||
	fail "rw_static_call_update(3) has no RETURN VALUE"

# 3. Installed, found by man.
prefix=$tmp/prefix
"$cmake_bin" --install "$REWIRE_BUILD_DIR" --prefix "$prefix" \
	--component man3 >"$tmp/install.log" ||
	fail "cmake --install: $(cat "$tmp/install.log")"
mandir=$(find "$prefix" -type d -name man3 -path '*/man/man3' | head -1)
[ -n "$mandir" ] || fail "no man/man3 directory under $prefix"
export MANPATH=${mandir%/man3} MANWIDTH=80 MAN_DISABLE_SECCOMP=1
man 3 rw_static_call_update >"$tmp/man.out" 2>"$tmp/man.err" ||
	fail "man 3 rw_static_call_update: $(cat "$tmp/man.err")"
for want in "rw_static_call_update" "#include <rewire/static_call.h>" \
	"RETURN VALUE" "rewire(3)"; do
	grep -qF -- "$want" "$tmp/man.out" ||
		fail "man 3 rw_static_call_update does not show '$want'"
done
man 3 rw_static_key_disable 2>"$tmp/man.err" | grep rw_static_key_enable >/dev/null ||
	fail "man 3 rw_static_key_disable does not show its shared page"
man 3 rewire 2>"$tmp/man.err" | grep rw_text_poke_batch >/dev/null ||
	fail "man 3 rewire does not list rw_text_poke_batch"

# 4. A missing comment is caught.
mkdir -p "$tmp/neg/rewire"
cp "$inc"/*.h "$inc"/config.h.in "$tmp/neg/rewire/"
python3 - "$tmp/neg/rewire/static_call.h" <<'PY'
import re, sys
path = sys.argv[1]
s = open(path).read()
n = len(s)
s = re.sub(r"/\*\n \* rw_static_call_update\(name, f\) - .*?\*/\n", "", s,
           flags=re.S)
assert len(s) < n, "rw_static_call_update's comment not found"
open(path, "w").write(s)
PY
python3 "$gen" --outdir "$tmp/neg/man3" "$tmp/neg/rewire"/*.h \
	"$tmp/neg/rewire/config.h.in" 2>"$tmp/neg/gen.err" >/dev/null ||
	fail "the generator fails on the headers without one comment"
grep -q 'rw_static_call_update has no comment' "$tmp/neg/gen.err" ||
	fail "the generator does not report the missing comment"
missing_pages "$tmp/neg/man3" >"$tmp/neg/missing"
[ "$(cat "$tmp/neg/missing")" = rw_static_call_update ] ||
	fail "without its comment, the check should miss exactly rw_static_call_update, not: $(cat "$tmp/neg/missing")"
echo "negative check: a header without rw_static_call_update's comment leaves it without a page, and the check says so"

rm -rf "$tmp"
echo "PASS"
