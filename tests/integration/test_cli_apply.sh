#!/usr/bin/env bash
# rewire apply: the desired patch state of examples/kv's server, made to
# hold idempotently. Oracle: rw-kvload's count of wrong answers (values of
# 200 bytes, all wrong while the bug is live, none once fixed), the
# command's JSON document (python3), and the patch's own record in the
# process (`rewire ls --json`: state, path, transition attempts), which
# shows that a rerun sent nothing that changes state.
#   1. apply: changed (load+enable), the fix takes effect;
#   2. again: unchanged, no action, the patch's attempts unchanged; a
#      patch disabled but loaded: enable only;
#   3. --check --absent: would-change, nothing changed;
#   4. --absent (the file given): changed, the bug is back; again:
#      unchanged;
#   5. another build of the same patch: replaced, fixed; again: unchanged;
#   6. a patch for another program: exit 1, the process as it was; a
#      build of fix_value that fails: exit 1, the old build back;
#   7. --persist without a patch directory: exit 1, nothing changed;
#   8. a patch file the process cannot see (another mount namespace):
#      sent by descriptor, applied (and by `rewire patch` too);
#   9. --persist with one: DIR/fix_value.so written (and nothing else),
#      a restarted server starts patched; --absent --persist removes it;
#  10. --persist for a process in another mount namespace, whose patch
#      directory only it sees: written through /proc/PID/root;
#  11. as root, --persist for another user's process: the copy is owned
#      by that user, and the process starts patched.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"

dir=$REWIRE_BUILD_DIR/examples/kv
server=$dir/rw-kvserver
load=$dir/rw-kvload
patch=$dir/fix_value.so
rewire=$REWIRE_BUILD_DIR/tools/rewire
for f in "$server" "$load" "$patch" "$rewire"; do
	if [ ! -e "$f" ]; then
		echo "SKIP: $f not built (REWIRE_BUILD_EXAMPLES off?)"
		exit 77
	fi
done
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
command -v readelf >/dev/null || { echo "SKIP: no readelf"; exit 77; }
cc=${REWIRE_CC:-cc}
# See test_kv_demo.sh: only ASan's order check is in the way.
if [[ "${REWIRE_SANITIZE:-}" == *address* ]]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
fi

tmp=$(mktemp -d)
port=$tmp/port
udir=
server_pid=
stop_server() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}
cleanup() {
	stop_server
	rm -rf "$tmp" ${udir:+"$udir"}
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in server.out out.json err; do
		if [ -s "$tmp/$f" ]; then
			echo "--- $f"
			cat "$tmp/$f"
		fi
	done
	exit 1
}

# The server under `rewire run` (extra environment in "$@").
start_server() {
	rm -f "$port"
	env "$@" "$rewire" run -- "$server" --port 0 --port-file "$port" \
		--threads 2 >"$tmp/server.out" 2>&1 &
	server_pid=$!
	for _ in $(seq 200); do
		[ -s "$port" ] && "$rewire" ls "$server_pid" >/dev/null 2>&1 &&
			return 0
		kill -0 "$server_pid" 2>/dev/null || fail "the server died"
		sleep 0.05
	done
	fail "the server did not start"
}

# Wrong answers in half a second of load.
wrong() {
	"$load" --port-file "$port" --duration 0.5 --keys 50 \
		--connections 2 --threads 1 --value-sizes 200 \
		--json "$tmp/load.json" </dev/null >/dev/null 2>&1 ||
		fail "kvload failed"
	grep '"label": "total"' "$tmp/load.json" | grep -q '"requests": [1-9]' ||
		fail "no request in the load"
	grep '"label": "total"' "$tmp/load.json" |
		grep -o '"wrong": [0-9]*' | awk '{ print $2 }'
}

# Some wrong answers (the bug is there): half a second of load is enough
# natively; the emulated aarch64 machine serves a few dozen requests in
# it, so up to ten half seconds.
wrong_some() {
	local w
	for _ in $(seq 10); do
		w=$(wrong)
		[ "$w" -gt 0 ] && break
	done
	echo "$w"
}

# rewire apply --json ARGS...: the document in out.json, the exit code in
# $rc.
apply() {
	rc=0
	"$rewire" --json apply "$server_pid" "$@" >"$tmp/out.json" \
		2>"$tmp/err" || rc=$?
}

# A Python expression over the document (d) must hold; more arguments are
# sys.argv[3:]. Checked together by checks_verify (python3 is slow to
# start on a loaded machine): the document is kept.
nchecks=0
check() {
	nchecks=$((nchecks + 1))
	cp "$tmp/out.json" "$tmp/doc.$nchecks"
	printf '%s' "$1" >"$tmp/expr.$nchecks"
	printf '%s' "$2" >"$tmp/msg.$nchecks"
	printf '%s\n' "${@:3}" >"$tmp/args.$nchecks"
}
checks_verify() {
	python3 - "$tmp" "$nchecks" <<'PY' || fail "a check of a document failed"
import json, sys
tmp, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    rd = lambda k: open("%s/%s.%d" % (tmp, k, i)).read()
    d = json.loads(rd("doc"))
    sys.argv = ["check", "doc", "expr"] + rd("args").split("\n")[:-1]
    if not eval("(" + rd("expr") + ")"):
        sys.exit("check %d, %s:\ndocument: %s\nfalse: %s" %
                 (i, rd("msg"), json.dumps(d), rd("expr")))
print("%d checks of the documents passed" % n)
PY
}

# The process's record of patch $1 (`rewire ls --json`: name, path,
# state, ..., attempts in that order), or "absent".
record() {
	"$rewire" --json ls "$server_pid" --patches >"$tmp/ls.json" ||
		fail "rewire ls failed"
	local re="{\"name\":\"$1\",\"path\":\"[^\"]*\",\"state\":\"[a-z]*\""

	grep -o "$re[^]]*\"attempts\":[0-9]*" "$tmp/ls.json" || echo absent
}

# The GNU build-id of a file (the FILE_ID of a file that has one).
build_id() {
	readelf -n "$1" | awk '/Build ID:/ { print $3 }'
}
id=$(build_id "$patch")
[ -n "$id" ] || fail "$patch has no build-id"

start_server
[ "$(wrong_some)" -gt 0 ] || fail "no wrong answer before the patch (bug gone?)"

# 1. Present: load+enable, and the fix takes effect.
apply "$patch"
[ "$rc" -eq 0 ] || fail "apply exited with $rc"
check 'd["changed"] is True and d["check"] is False and d["pid"] > 0' \
	"apply did not say changed"
check '[(a["patch"], a["action"], a["done"]) for a in d["actions"]] ==
	[("fix_value", "load+enable", True)]' "not one load+enable done"
check 'd["before"][0]["state"] == "absent" and
	d["after"][0]["state"] == "enabled" and
	d["before"][0]["file_id"] is None and
	d["after"][0]["file_id"] == sys.argv[3] and
	d["before"][0]["persisted"] is False and d["patch_dir"] is None' \
	"before/after" "$id"
[ "$(wrong)" -eq 0 ] || fail "wrong answers with the patch applied"
rec=$(record fix_value)
[[ "$rec" == *'"state":"enabled"'* ]] || fail "the process has: $rec"

# 2. Again: unchanged, and nothing was sent that changes state.
apply "$patch"
[ "$rc" -eq 0 ] || fail "apply again exited with $rc"
check 'd["changed"] is False and d["actions"] == [] and
	d["before"] == d["after"] and d["after"][0]["state"] == "enabled"' \
	"the rerun was not unchanged"
[ "$(record fix_value)" = "$rec" ] ||
	fail "the rerun touched the patch: $rec -> $(record fix_value)"
out=$("$rewire" apply "$server_pid" "$patch")
[[ "$out" == "$server_pid rw-kvserver unchanged: fix_value enabled" ]] ||
	fail "text: $out"

# Loaded but disabled: only enabled (not loaded again).
"$rewire" unpatch "$server_pid" fix_value --keep-loaded >/dev/null ||
	fail "unpatch --keep-loaded"
[ "$(wrong_some)" -gt 0 ] || fail "the bug is not back after the disable"
apply "$patch"
check '[a["action"] for a in d["actions"]] == ["enable"] and
	d["before"][0]["state"] == "disabled" and
	d["after"][0]["state"] == "enabled"' "a disabled patch was not enabled"
[ "$(wrong)" -eq 0 ] || fail "wrong answers after the enable"
rec=$(record fix_value)

# 3. --check --absent: would change, changes nothing.
apply --absent fix_value --check
[ "$rc" -eq 0 ] || fail "--check exited with $rc"
check 'd["changed"] is True and d["check"] is True and
	[(a["action"], a["done"]) for a in d["actions"]] ==
	[("disable+unload", False)] and d["after"][0]["state"] == "absent"' \
	"--check did not report the change"
[ "$(record fix_value)" = "$rec" ] || fail "--check changed the process"
[ "$(wrong)" -eq 0 ] || fail "--check undid the fix"

# 4. Absent, named by the file: changed, the bug is back; again: unchanged.
apply --absent "$patch"
[ "$rc" -eq 0 ] || fail "--absent exited with $rc"
check 'd["changed"] is True and [a["action"] for a in d["actions"]] ==
	["disable+unload"] and d["before"][0]["state"] == "enabled" and
	d["after"][0]["state"] == "absent"' "--absent"
[ "$(record fix_value)" = absent ] || fail "still loaded after --absent"
[ "$(wrong_some)" -gt 0 ] || fail "the bug is not back after --absent"
apply --absent fix_value
check 'd["changed"] is False and d["actions"] == []' \
	"--absent again was not unchanged"
out=$("$rewire" apply "$server_pid" --absent fix_value --check)
[[ "$out" == "$server_pid rw-kvserver unchanged: fix_value absent" ]] ||
	fail "text: $out"

# 5. Another build of fix_value (other bytes, other build-id): replaced.
printf 'int fix_value_build_marker = 2;\n' >"$tmp/marker.c"
"$cc" -O2 -fPIC -shared -I"$REWIRE_SOURCE_DIR/include" \
	-Wl,--build-id=sha1 -o "$tmp/fix_value.so" \
	"$REWIRE_SOURCE_DIR/examples/kv/patches/fix_value.c" "$tmp/marker.c" ||
	fail "cannot build the other fix_value"
apply "$patch"
check 'd["changed"] is True' "apply after --absent"
apply "$tmp/fix_value.so"
[ "$rc" -eq 0 ] || fail "apply of the other build exited with $rc"
check '[a["action"] for a in d["actions"]] == ["replace"] and
	d["after"][0]["state"] == "enabled" and
	d["before"][0]["file_id"] == sys.argv[3] and
	d["after"][0]["file_id"] == sys.argv[4]' \
	"the other build was not a replace" "$id" "$(build_id "$tmp/fix_value.so")"
other="\"path\":\"$tmp/fix_value.so\",\"state\":\"enabled\""
[[ "$(record fix_value)" == *"$other"* ]] ||
	fail "not the other build that is loaded: $(record fix_value)"
[ "$(wrong)" -eq 0 ] || fail "wrong answers with the other build"
apply "$tmp/fix_value.so"
check 'd["changed"] is False' "the other build again was not unchanged"

# 6. A patch for another program (a function kvserver does not have):
# exit 1 with the error in the document, the process as it was.
cat >"$tmp/other.c" <<'EOF'
#include <rewire/patch.h>
static int other_fixed(void) { return 0; }
RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "function_of_another_program", 0, other_fixed),
};
RW_PATCH(other_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
EOF
"$cc" -O2 -fPIC -shared -I"$REWIRE_SOURCE_DIR/include" -o "$tmp/other.so" \
	"$tmp/other.c" || fail "cannot build the other program's patch"
rec=$(record fix_value)
apply "$tmp/other.so"
[ "$rc" -eq 1 ] || fail "a patch for another program: exit $rc, not 1"
check 'd["exit"] == 1 and "function_of_another_program" in d["error"] and
	d["after"][0]["state"] == "absent"' "the failure's document"
[ "$(record other_fix)" = absent ] || fail "the failed patch stays loaded"
[ "$(record fix_value)" = "$rec" ] || fail "the failure touched fix_value"
[ "$(wrong)" -eq 0 ] || fail "the failure undid the fix"
# A build of fix_value that fails the same way: the replace takes the old
# build out, the new one fails, and the old one is loaded again.
sed 's/RW_PATCH(other_fix,/RW_PATCH(fix_value,/' "$tmp/other.c" \
	>"$tmp/broken.c"
mkdir "$tmp/broken"
"$cc" -O2 -fPIC -shared -I"$REWIRE_SOURCE_DIR/include" \
	-o "$tmp/broken/fix_value.so" "$tmp/broken.c" ||
	fail "cannot build the broken fix_value"
apply "$tmp/broken/fix_value.so"
[ "$rc" -eq 1 ] || fail "a broken build of fix_value: exit $rc, not 1"
check '[a["action"] for a in d["actions"]] == ["replace"] and
	d["changed"] is False and d["after"] == d["before"] and
	d["after"][0]["state"] == "enabled"' \
	"a failed replace did not restore the old build"
grep -q "the previous build .* is enabled again" "$tmp/err" ||
	fail "the restore is not reported"
[ "$(wrong)" -eq 0 ] || fail "the failed replace undid the fix"
rec=$(record fix_value)

# 7. --persist without a patch directory: exit 1, nothing changed.
apply --absent fix_value --persist
[ "$rc" -eq 1 ] || fail "--persist without a patch dir: exit $rc, not 1"
check 'd["changed"] is False and d["actions"] == [] and
	"REWIRE_PATCH_DIR" in d["error"] and d["patch_dir"] is None' \
	"--persist without a patch dir"
[ "$(record fix_value)" = "$rec" ] || fail "--persist failed but changed"
stop_server

# 8. A patch file the process cannot see (its own mount namespace hides
# the directory): apply sends the file itself, by descriptor, as
# `rewire patch` does.
if unshare -m true 2>/dev/null; then
	mkdir "$tmp/hidden"
	cp "$patch" "$tmp/hidden/fix_value.so"
	start_server unshare -m sh -c \
		'mount -t tmpfs none "$0" && exec "$@"' "$tmp/hidden"
	[ ! -e "/proc/$server_pid/root$tmp/hidden/fix_value.so" ] ||
		fail "the server sees the hidden directory"
	apply "$tmp/hidden/fix_value.so"
	[ "$rc" -eq 0 ] || fail "apply of a file the process cannot see: $rc"
	check 'd["changed"] is True' "apply of a hidden file"
	[ "$(wrong)" -eq 0 ] || fail "the hidden file's fix is not applied"
	"$rewire" unpatch "$server_pid" fix_value >/dev/null 2>&1 ||
		fail "unpatch after the hidden apply"
	"$rewire" patch "$server_pid" "$tmp/hidden/fix_value.so" \
		>"$tmp/err" 2>&1 || fail "rewire patch of a hidden file"
	stop_server
else
	echo "note: step 8 skipped (unshare -m not permitted)"
fi

# 9. --persist into the patch directory; a restarted server starts patched.
pdir=$tmp/patches
mkdir -m 0755 "$pdir"
start_server REWIRE_PATCH_DIR="$pdir"
apply "$patch" --persist
[ "$rc" -eq 0 ] || fail "apply --persist exited with $rc"
check '[a["action"] for a in d["actions"]] == ["load+enable", "persist"] and
	d["after"][0]["persisted"] is True and d["patch_dir"] == sys.argv[3]' \
	"apply --persist" "$pdir"
[ "$(ls -A "$pdir")" = fix_value.so ] ||
	fail "the patch dir holds: $(ls -A "$pdir")"
cmp -s "$patch" "$pdir/fix_value.so" || fail "DIR/fix_value.so differs"
[ "$(stat -c %a "$pdir/fix_value.so")" = 644 ] || fail "mode of the copy"
apply "$patch" --persist
check 'd["changed"] is False' "apply --persist again was not unchanged"
stop_server
start_server REWIRE_PATCH_DIR="$pdir"
[[ "$(record fix_value)" == *'"state":"enabled"'* ]] ||
	fail "the restarted server is not patched: $(record fix_value)"
[ "$(wrong)" -eq 0 ] || fail "the restarted server answers wrong"
apply "$patch" --persist
check 'd["changed"] is False' "the restarted server needed changes"
apply --absent fix_value --persist
check '[a["action"] for a in d["actions"]] ==
	["disable+unload", "unpersist"] and d["changed"] is True' \
	"--absent --persist"
[ -z "$(ls -A "$pdir")" ] || fail "left in the patch dir: $(ls -A "$pdir")"
[ "$(wrong_some)" -gt 0 ] || fail "the bug is not back"
stop_server

# 10. --persist into the patch directory of a process in another mount
# namespace: a directory on a tmpfs that only the process sees, reached
# through /proc/PID/root.
if unshare -m true 2>/dev/null; then
	mkdir "$tmp/ns"
	start_server unshare -m sh -c 'mount -t tmpfs -o mode=0755 none "$0" &&
		mkdir -m 0755 "$0/patches" &&
		REWIRE_PATCH_DIR="$0/patches" exec "$@"' "$tmp/ns"
	apply "$patch" --persist
	[ "$rc" -eq 0 ] || fail "apply --persist in a mount namespace: $rc"
	check '[a["action"] for a in d["actions"]] == ["load+enable", "persist"]
		and d["patch_dir"] == sys.argv[3]' \
		"apply --persist in a mount namespace" "$tmp/ns/patches"
	[ ! -e "$tmp/ns/patches" ] || fail "the namespace's tmpfs leaks out"
	cmp -s "$patch" "/proc/$server_pid/root$tmp/ns/patches/fix_value.so" ||
		fail "fix_value.so is not in the process's patch directory"
	apply "$patch" --persist
	check 'd["changed"] is False and d["after"][0]["persisted"] is True' \
		"apply --persist again in a mount namespace"
	stop_server
else
	echo "note: step 10 skipped (unshare -m not permitted)"
fi
# 11. As root, --persist for a process of another user: the copy is that
# user's (the patch directory accepts only its files), and the process,
# restarted, starts patched.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	udir=$(mktemp -d)
	chmod 0755 "$udir"
	mkdir -m 0755 "$udir/patches"
	chown 65534:65534 "$udir" "$udir/patches"
	port=$udir/port
	nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups
		env REWIRE_PATCH_DIR="$udir/patches")
	start_server "${nobody[@]}"
	apply "$patch" --persist
	[ "$rc" -eq 0 ] || fail "apply --persist to another user's process: $rc"
	[ "$(stat -c %u:%a "$udir/patches/fix_value.so")" = 65534:644 ] ||
		fail "the copy is $(stat -c %u:%a "$udir/patches/fix_value.so")"
	stop_server
	start_server "${nobody[@]}"
	[[ "$(record fix_value)" == *'"state":"enabled"'* ]] ||
		fail "another user's process, restarted, is not patched"
	[ "$(wrong)" -eq 0 ] || fail "another user's process answers wrong"
	stop_server
else
	echo "note: step 11 skipped (not root, or no setpriv)"
fi
checks_verify
echo "PASS"
