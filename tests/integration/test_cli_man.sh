#!/usr/bin/env bash
# The rewire command's documentation: doc/rewire.1 renders (man -l, else
# groff; skipped when neither is installed) without a groff warning, and it
# and `rewire --help` both name every subcommand; every option that a
# subcommand's --help lists is in the man page; the man page has the exit
# codes, the environment variables and the security section.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"

rw=${REWIRE_TOOL:-$REWIRE_BUILD_DIR/tools/rewire}
page=$REWIRE_SOURCE_DIR/doc/rewire.1
fail() {
	echo "FAIL: $*"
	exit 1
}
[ -x "$rw" ] || {
	echo "SKIP: $rw not built"
	exit 77
}
[ -f "$page" ] || fail "$page is missing"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Lint with groff's warnings when it is there; render with man, else groff.
if command -v groff >/dev/null 2>&1; then
	groff -man -ww -z "$page" 2>"$tmp/warn" || fail "groff failed"
	if [ -s "$tmp/warn" ]; then
		cat "$tmp/warn"
		fail "groff warns about $page"
	fi
fi
if command -v man >/dev/null 2>&1 &&
	MANWIDTH=80 man -l "$page" >"$tmp/page.raw" 2>"$tmp/man.err"; then
	:
elif command -v groff >/dev/null 2>&1; then
	groff -man -Tutf8 "$page" >"$tmp/page.raw" 2>"$tmp/man.err" ||
		fail "groff cannot render $page: $(cat "$tmp/man.err")"
else
	echo "SKIP: neither man nor groff is installed"
	exit 77
fi
# Strip overstriking (bold, underline) and map hyphens back to ASCII.
sed -e 's/.\x08//g' -e 's/‐/-/g' -e 's/−/-/g' "$tmp/page.raw" |
	tr -s ' \t' ' ' >"$tmp/page"
[ "$(wc -l <"$tmp/page")" -gt 100 ] || fail "the rendered page is too short"
# Words hyphenated at line ends come back whole for the checks.
tr '\n' ' ' <"$tmp/page" | sed -e 's/- \{1,\}//g' >"$tmp/flat"

"$rw" --help >"$tmp/help"
for sub in ps ls key call trace funccount funclatency patch unpatch force run \
	help snapshot; do
	grep -Eq "^ +$sub( |\$)" "$tmp/help" || fail "rewire --help does not list '$sub'"
	grep -Eq "rewire $sub( |\$)" "$tmp/flat" ||
		fail "the man page does not describe 'rewire $sub'"
	"$rw" help "$sub" >"$tmp/sub" || fail "rewire help $sub"
	# Every long option of the subcommand's help is in the man page.
	while read -r o; do
		grep -q -- "$o" "$tmp/flat" ||
			fail "option $o of 'rewire $sub' is not in the man page"
	done < <(grep -Eo -- '--[a-z][a-z-]+' "$tmp/sub" | sort -u)
done
for code in 0 1 2 3 4 5 126 127 130; do
	# A line of the exit code lists: "  3  ...", "  126, 127  ...".
	grep -Eq "^ +([0-9]+, )*$code(,| |\$)" "$tmp/page" ||
		fail "exit code $code is not in the man page"
	grep -Eq "^ +([0-9]+, )*$code(,| |\$)" "$tmp/help" ||
		fail "exit code $code is not in rewire --help"
done
for word in REWIRE_CTL REWIRE_CTL_DIR REWIRE_LIB LD_PRELOAD SO_PEERCRED 0700 \
	SYNOPSIS "EXIT STATUS" ENVIRONMENT FILES SECURITY EXAMPLES; do
	grep -q -- "$word" "$tmp/flat" || fail "the man page does not mention $word"
done
echo "PASS"
