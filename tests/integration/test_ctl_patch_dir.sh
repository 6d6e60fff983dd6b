#!/usr/bin/env bash
# Patches that survive a restart (issue 16): examples/kv's rw-kvserver
# started with a patch directory (REWIRE_PATCH_DIR, `rewire run
# --patch-dir`) answers its very first request with the fix of the patch
# bound to it, applied before main(); everything else in the directory is
# skipped with a message and the program runs:
# - a corrupt .so, a patch bound to another build of the server, an
#   unbound patch: skipped (each named, with why), the next one applies; a
#   hidden file and a file that is not *.so are not looked at;
# - the server's HELLO names the directory, LS shows the patch FROM_DIR
#   with the file's build-id as FILE_ID; `rewire unpatch` takes it off;
# - a directory with only skipped patches: the program serves unpatched;
# - a group-writable directory, one of another user (as root), a missing
#   one: refused with a message, nothing applied, the program runs.
# Before, REWIRE_PATCH_DIR did nothing: the first request came back with
# the bug.
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

case $backend in
x86_64 | aarch64) ;;
*) skip "live patching needs a patching backend (x86_64, aarch64)" ;;
esac
if [ -z "${KV_SERVER:-}" ] || [ ! -x "$KV_SERVER" ]; then
	skip "the kv example is not built"
fi
if [ "$have_python" -eq 0 ]; then
	skip "python3 is needed for the kv client"
fi
for f in "$KV_FIX" "$PD_FIX_OTHER" "$PD_FIX_UNBOUND" "$PD_QUERY"; do
	[ -e "$f" ] || fail "$f not built"
done
nkv=0

# start_kv DIR [rewire run]: the server with DIR as its patch directory;
# kpid, kerr (its stderr), kport.
start_kv() {
	local dir=$1 via=${2:-env} portf i
	nkv=$((nkv + 1))
	portf=$tmp/kv.$nkv.port
	kerr=$tmp/target.kv.$nkv.err
	if [ "$via" = run ]; then
		"$rw" run --patch-dir "$dir" -- "$KV_SERVER" --port 0 \
			--threads 2 --port-file "$portf" \
			>"$tmp/kv.$nkv.out" 2>"$kerr" &
	else
		REWIRE_CTL=1 REWIRE_PATCH_DIR=$dir "$KV_SERVER" --port 0 \
			--threads 2 --port-file "$portf" \
			>"$tmp/kv.$nkv.out" 2>"$kerr" &
	fi
	kpid=$!
	bg_pids+=("$kpid")
	for ((i = 0; i < 400; i++)); do
		if [ -s "$portf" ]; then
			kport=$(cat "$portf")
			wait_socket "$kpid"
			return 0
		fi
		kill -0 "$kpid" 2>/dev/null || fail "rw-kvserver exited: $(cat "$kerr")"
		sleep 0.05
	done
	fail "rw-kvserver wrote no port file in 20 s"
}

# The first request's result: fixed or broken.
first() {
	python3 "$PD_SRC/kv_first.py" "$kport" || fail "kv client failed"
}

expect_first() {
	local got
	got=$(first)
	[ "$got" = "$1" ] || fail "$2: the first request came back $got, not $1 (stderr: $(cat "$kerr"))"
}

expect_kerr() {
	grep -Eq -- "$1" "$kerr" || fail "$2: no line /$1/ in the server's stderr: $(cat "$kerr")"
}

no_kerr() {
	if grep -Eq -- "$1" "$kerr"; then
		fail "$2: unexpected line /$1/ in the server's stderr: $(cat "$kerr")"
	fi
}

query() {
	"$PD_QUERY" "$kpid" >"$tmp/q" 2>&1 || fail "ctl_query: $(cat "$tmp/q")"
	cat "$tmp/q"
}

mkpd() {
	mkdir -p "$1"
	chmod 755 "$1"
}

fix_id=$(readelf -n "$KV_FIX" | awk '/Build ID:/ { print $3; exit }')
[ -n "$fix_id" ] || fail "fix_value.so has no build-id"

step "a directory with a corrupt patch, one of another build, an unbound one, then the fix"
d1=$tmp/pd1
mkpd "$d1"
echo "not a patch" >"$d1/00-corrupt.so"
cp "$PD_FIX_OTHER" "$d1/10-other.so"
cp "$PD_FIX_UNBOUND" "$d1/15-unbound.so"
cp "$KV_FIX" "$d1/20-fix.so"
echo "junk" >"$d1/.30-tmp.so"
cp "$PD_FIX_UNBOUND" "$d1/40-notes.txt"
chmod 644 "$d1"/*
start_kv "$d1"
expect_first fixed "bound patch among bad ones"
pfx="^rewire: \[$kpid\] patch dir $d1: "
expect_kerr "${pfx}00-corrupt\.so: skipped: not an ELF file" "corrupt .so"
expect_kerr "${pfx}10-other\.so: skipped: .*build-id 0123456789abcdef" "patch of another build"
expect_kerr "${pfx}15-unbound\.so: skipped: refused: not bound to a build" "unbound patch"
no_kerr "20-fix|30-tmp|40-notes" "the good patch, the hidden file, the .txt"
[ "$(grep -c "patch dir" "$kerr")" = 3 ] || fail "not three reports: $(cat "$kerr")"
q=$(query)
echo "$q"
grep -qx "patch_dir $d1" <<<"$q" || fail "HELLO has no PATCH_DIR $d1: $q"
grep -qx "patch fix_value 2 1 $fix_id $d1/20-fix.so" <<<"$q" ||
	fail "LS: fix_value is not enabled from the directory with FILE_ID $fix_id: $q"
[ "$(grep -c '^patch ' <<<"$q")" = 1 ] || fail "LS: not one patch: $q"
rwrun unpatch "$kpid" fix_value
expect_rc 0 "unpatch of a patch from the directory"
expect_first broken "after unpatch"
kill_target "$kpid"

step "only patches that are not for this build: the program serves unpatched"
d2=$tmp/pd2
mkpd "$d2"
cp "$PD_FIX_OTHER" "$d2/10-other.so"
cp "$PD_FIX_UNBOUND" "$d2/15-unbound.so"
chmod 644 "$d2"/*
start_kv "$d2"
expect_first broken "nothing applicable"
expect_kerr "^rewire: \[$kpid\] patch dir $d2: 10-other\.so: skipped" "other build"
expect_kerr "^rewire: \[$kpid\] patch dir $d2: 15-unbound\.so: skipped" "unbound"
q=$(query)
if grep -q '^patch ' <<<"$q"; then
	fail "a patch was loaded: $q"
fi
kill_target "$kpid"

step "rewire run --patch-dir"
d5=$tmp/pd5
mkpd "$d5"
cp "$KV_FIX" "$d5/fix.so"
chmod 644 "$d5/fix.so"
start_kv "$d5" run
expect_first fixed "rewire run --patch-dir"
q=$(query)
grep -qx "patch_dir $d5" <<<"$q" || fail "run: no PATCH_DIR $d5: $q"
grep -q "^patch fix_value 2 1 $fix_id " <<<"$q" || fail "run: $q"
[ ! -s "$kerr" ] || fail "run: the server reported: $(cat "$kerr")"
kill_target "$kpid"
rwrun run --patch-dir "$tmp/missing" -- true
expect_rc 1 "run --patch-dir of a missing directory"
expect_err "run: --patch-dir $tmp/missing: No such file or directory" "run --patch-dir missing"

step "a group-writable directory is refused"
d3=$tmp/pd3
mkpd "$d3"
cp "$KV_FIX" "$d3/20-fix.so"
chmod 644 "$d3/20-fix.so"
chmod 775 "$d3"
start_kv "$d3"
expect_first broken "group-writable directory"
expect_kerr "^rewire: \[$kpid\] patch dir $d3: refused: writable by its group \(mode 0775\); no patch applied" "group-writable"
kill_target "$kpid"

if [ "$(id -u)" = 0 ]; then
	step "a directory of another user is refused"
	d4=$tmp/pd4
	mkpd "$d4"
	cp "$KV_FIX" "$d4/20-fix.so"
	chmod 644 "$d4/20-fix.so"
	chown 65534 "$d4"
	start_kv "$d4"
	expect_first broken "another user's directory"
	expect_kerr "^rewire: \[$kpid\] patch dir $d4: refused: owned by uid 65534, not by uid 0 or root" "other owner"
	kill_target "$kpid"
else
	echo "(not root: the directory of another user is not tried)"
fi

step "a missing directory"
start_kv "$tmp/nowhere"
expect_first broken "missing directory"
expect_kerr "^rewire: \[$kpid\] patch dir $tmp/nowhere: cannot open it: No such file or directory" "missing"
kill_target "$kpid"
echo PASS
