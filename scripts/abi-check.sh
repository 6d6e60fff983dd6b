#!/usr/bin/env bash
# Check librewire.so's ABI against the committed baseline of the last
# release, abi/<SONAME>.abi, with libabigail (Debian's abigail-tools).
# The policy is doc/ABI.md.
#
#   scripts/abi-check.sh [--build-dir DIR]            check (default build/ci)
#   scripts/abi-check.sh [--build-dir DIR] --update   regenerate the baseline
#   scripts/abi-check.sh [--build-dir DIR] --update --force
#                  regenerate it even over an incompatible change under the
#                  same SONAME (only before the release is tagged)
#   scripts/abi-check.sh [--build-dir DIR] --self-test
#                  check the check: the deliberately broken copies of the
#                  library that the build makes (tests/integration/
#                  test_abi.cmake) must fail it, the compatible one pass
#
# The check fails when, compared with the baseline of the built library's
# SONAME:
#   - a function or variable was removed or changed, or a type reachable
#     from one changed (abidiff's "ABI change" or "incompatible change");
#   - an rw_ symbol was added in a version node the baseline already has
#     (a release's additions get a new node, newer than all of the
#     baseline's: src/librewire.map);
#   - there is no baseline for the SONAME (a SONAME bump that was not
#     announced: --update makes the baseline), or the SONAME is not the
#     first one (librewire.so.0) and CHANGELOG.md does not name it.
# Additions alone pass; they are reported.
#
# Exit status: 0 pass, 1 fail, 77 skipped (no abidw/abidiff, a sanitizer
# or generic-backend build, a library without debug information).
# --abi-dir DIR and --changelog FILE replace abi/ and CHANGELOG.md (the
# self-test uses them).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build/ci
abi_dir=$src/abi
changelog=$src/CHANGELOG.md
mode=check
force=0
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir)
		build=$(cd "$2" && pwd)
		shift
		;;
	--abi-dir)
		abi_dir=$2
		shift
		;;
	--changelog)
		changelog=$2
		shift
		;;
	--update) mode=update ;;
	--force) force=1 ;;
	--self-test) mode=selftest ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "abi-check: unknown argument $1 (--help)" >&2
		exit 2
		;;
	esac
	shift
done

skip() {
	echo "SKIP: $*"
	exit 77
}
for t in abidw abidiff readelf; do
	command -v "$t" >/dev/null 2>&1 ||
		skip "$t is not installed (Debian: abigail-tools, binutils)"
done
[ -f "$build/CMakeCache.txt" ] || {
	echo "abi-check: $build is not a build directory (--build-dir)" >&2
	exit 2
}
if grep -Eq '^REWIRE_SANITIZE:STRING=.+' "$build/CMakeCache.txt"; then
	skip "sanitizer build: its instrumented library is not the released ABI"
fi
config=$build/include/rewire/config.h
# The headers of the tree the build was configured from: abidw knows a
# type as public by the path its DWARF gives, which is that tree's.
headers=$(sed -n 's/^rewire_SOURCE_DIR:STATIC=//p' "$build/CMakeCache.txt")
headers=${headers:-$src}/include/rewire
grep -q '^#define RW_BACKEND_X86_64 1' "$config" ||
	skip "generic-backend build: the baseline is the x86_64 backend's (it exports the interposers)"

work=$build/abi
mkdir -p "$work"

soname_of() {
	readelf -d "$1" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p'
}

# The ABI of a library as libabigail sees it: the exported symbols with
# their versions, the functions and variables behind them, and the types
# reachable from these that the public headers define. No source
# locations or build directory and hashed type ids, so that the baseline
# does not change with the tree's path or with unrelated declarations.
dump() {
	readelf -S "$1" | grep '\.debug_info' >/dev/null ||
		skip "$1 has no debug information (build with -g: the ci preset is RelWithDebInfo)"
	abidw --headers-dir "$headers" --header-file "$config" \
		--drop-private-types --no-corpus-path --no-comp-dir-path \
		--no-show-locs --type-id-style hash --drop-undefined-syms \
		"$1" >"$2"
}

# "name version" of each rw_ symbol of an ABI dump.
symbols() {
	grep -o "<elf-symbol name='rw_[^']*'\( version='[^']*'\)\{0,1\}" "$1" |
		sed -e "s/<elf-symbol name='\([^']*\)'\( version='\([^']*\)'\)\{0,1\}/\1 \3/" |
		sort -u
}

# check LIB: compare LIB with the baseline of its SONAME. Prints what it
# finds; returns 0 (pass) or 1 (fail).
check() {
	local lib=$1 soname baseline rc nodes newest name ver bad=0
	soname=$(soname_of "$lib")
	[ -n "$soname" ] || {
		echo "FAIL: $lib has no SONAME"
		return 1
	}
	baseline=$abi_dir/$soname.abi
	if [ ! -f "$baseline" ]; then
		echo "FAIL: no ABI baseline for $soname ($baseline)."
		if compgen -G "$abi_dir/*.abi" >/dev/null; then
			echo "  The SONAME changed (baselines: $(cd "$abi_dir" && echo *.abi))."
		fi
		echo "  An incompatible change is announced by bumping the SONAME,"
		echo "  regenerating the baseline (scripts/abi-check.sh --update) and"
		echo "  naming the new SONAME in CHANGELOG.md (doc/ABI.md)."
		return 1
	fi
	if [ "$soname" != librewire.so.0 ] &&
		! grep -qF -- "$soname" "$changelog" 2>/dev/null; then
		echo "FAIL: $soname is not announced: $changelog does not name it (doc/ABI.md)"
		return 1
	fi
	dump "$lib" "$work/current.abi"

	# Everything but additions.
	rc=0
	abidiff --no-added-syms "$baseline" "$work/current.abi" \
		>"$work/abidiff.txt" 2>&1 || rc=$?
	if [ $((rc & 3)) -ne 0 ]; then
		cat "$work/abidiff.txt"
		echo "FAIL: abidiff could not compare (status $rc)"
		return 1
	fi
	if [ $((rc & 12)) -ne 0 ]; then
		cat "$work/abidiff.txt"
		echo "FAIL: the ABI of $soname changed incompatibly against $baseline."
		echo "  Fix it, or announce it: bump SOVERSION (CMakeLists.txt), run"
		echo "  scripts/abi-check.sh --update, name the new SONAME in CHANGELOG.md"
		echo "  (doc/ABI.md)."
		return 1
	fi

	# Additions: reported; an added rw_ symbol must be in a node newer
	# than every node of the baseline.
	rc=0
	abidiff "$baseline" "$work/current.abi" >"$work/additions.txt" 2>&1 ||
		rc=$?
	symbols "$baseline" >"$work/baseline.syms"
	symbols "$work/current.abi" >"$work/current.syms"
	nodes=$(awk '$2 != "" { print $2 }' "$work/baseline.syms" | sort -u)
	newest=$(echo "$nodes" | sort -V | tail -n 1)
	while read -r name ver; do
		grep -q "^$name " "$work/baseline.syms" && continue
		if [ -z "$ver" ] || ! [[ $ver =~ ^REWIRE_[0-9]+\.[0-9]+$ ]]; then
			echo "FAIL: added symbol $name is in no REWIRE_x.y node"
			bad=1
		elif [ -n "$newest" ] &&
			[ "$(printf '%s\n%s\n' "$ver" "$newest" | sort -V | tail -n 1)" != "$ver" ] ||
			grep -qxF -- "$ver" <<<"$nodes"; then
			echo "FAIL: added symbol $name is in $ver, not in a node newer than"
			echo "  the baseline's ($newest): additions go in a new node"
			echo "  (src/librewire.map, doc/ABI.md)"
			bad=1
		fi
	done <"$work/current.syms"
	if [ $((rc & 4)) -ne 0 ]; then
		echo "Compatible additions against $baseline (not in the baseline until the next release runs --update):"
		sed 's/^/  /' "$work/additions.txt"
	fi
	[ "$bad" = 0 ] || return 1
	echo "ABI of $soname: compatible with $baseline"
	return 0
}

# update LIB: write the baseline of LIB's SONAME.
update() {
	local lib=$1 soname baseline old
	soname=$(soname_of "$lib")
	baseline=$abi_dir/$soname.abi
	if [ -f "$baseline" ] && [ "$force" = 0 ]; then
		if ! check "$lib"; then
			echo "abi-check: refusing to absorb this into $baseline: under the"
			echo "  same SONAME the ABI may only grow. Bump SOVERSION (an announced"
			echo "  break), or, before the release is tagged, use --update --force."
			return 1
		fi
	fi
	mkdir -p "$abi_dir"
	dump "$lib" "$baseline.tmp"
	mv "$baseline.tmp" "$baseline"
	# One baseline: the last release's. An older SONAME's stays in git.
	for old in "$abi_dir"/librewire.so.*.abi; do
		[ -e "$old" ] && [ "$old" != "$baseline" ] && rm -v -- "$old"
	done
	echo "abi-check: wrote $baseline ($(grep -c '<elf-symbol ' "$baseline") symbols)"
	if [ "$soname" != librewire.so.0 ] && ! grep -qF -- "$soname" "$changelog" 2>/dev/null; then
		echo "abi-check: now name $soname in CHANGELOG.md (the announcement)"
	fi
}

# expect WANT NAME: run check on mutant NAME; WANT is pass or fail, and
# the output must match the regex in $pattern.
expect() {
	local want=$1 name=$2 lib out got
	lib=$build/tests/abi_mutants/$name/librewire.so
	[ -e "$lib" ] || {
		echo "FAIL: mutant $lib is not built (tests/integration/test_abi.cmake)"
		return 1
	}
	got=pass
	out=$(check "$(readlink -f "$lib")" 2>&1) || got=fail
	if [ "$got" != "$want" ] || ! grep -Eq -- "$pattern" <<<"$out"; then
		echo "$out" | sed 's/^/  | /'
		echo "FAIL: self-test $name: the check should $want matching /$pattern/ (it did: $got)"
		return 1
	fi
	echo "self-test $name: $got as expected ($(grep -Eo -- "$pattern" <<<"$out" | head -n 1))"
}

selftest() {
	local tmp real_abi=$abi_dir real_changelog=$changelog fails=0
	tmp=$(mktemp -d)
	trap "rm -rf '$tmp'" EXIT
	pattern="rw_text_stats.*sub-type changes|type size changed"
	expect fail struct || fails=1
	pattern="1 Removed function.*|rw_text_get_stats"
	expect fail removed || fails=1
	pattern="rw_abi_mutant_added@@REWIRE_999\.0"
	expect pass added || fails=1
	pattern="added symbol rw_abi_mutant_added is in REWIRE_0\.1"
	expect fail added_old || fails=1
	cp -r "$real_abi" "$tmp/abi"
	printf '# Changelog\n' >"$tmp/CHANGELOG.md"
	abi_dir=$tmp/abi changelog=$tmp/CHANGELOG.md
	# --update refuses to absorb a break under the same SONAME.
	if update "$(readlink -f "$build/tests/abi_mutants/struct/librewire.so")" \
		>"$tmp/update.out" 2>&1; then
		echo "FAIL: self-test: --update absorbed an incompatible change under librewire.so.0"
		fails=1
	elif ! cmp -s "$real_abi/librewire.so.0.abi" "$tmp/abi/librewire.so.0.abi"; then
		echo "FAIL: self-test: a refused --update changed the baseline"
		fails=1
	else
		echo "self-test update: refused as expected"
	fi
	# A SONAME bump with a break: not announced until the baseline is
	# regenerated and CHANGELOG.md names the SONAME.
	pattern="no ABI baseline for librewire\.so\.1"
	expect fail soname || fails=1
	update "$(readlink -f "$build/tests/abi_mutants/soname/librewire.so")" \
		>"$tmp/update.out" 2>&1 || {
		cat "$tmp/update.out"
		echo "FAIL: self-test: --update for a new SONAME failed"
		fails=1
	}
	if [ -f "$tmp/abi/librewire.so.0.abi" ]; then
		echo "FAIL: self-test: --update for librewire.so.1 left the old baseline"
		fails=1
	fi
	pattern="librewire\.so\.1 is not announced"
	expect fail soname || fails=1
	printf '# Changelog\n## [1.0.0]\n- Breaking: librewire.so.1.\n' \
		>"$tmp/CHANGELOG.md"
	pattern="compatible with .*librewire\.so\.1\.abi"
	expect pass soname || fails=1
	abi_dir=$real_abi changelog=$real_changelog
	return $fails
}

lib=$build/librewire.so
[ -e "$lib" ] || {
	echo "abi-check: $lib is not built" >&2
	exit 2
}
lib=$(readlink -f "$lib")
case $mode in
check) check "$lib" ;;
update) update "$lib" ;;
selftest) selftest ;;
esac
