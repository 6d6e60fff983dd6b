#!/usr/bin/env bash
# rewire apply: the desired patch state of examples/kv's server, made to
# hold idempotently. Oracle: rw-kvload's count of wrong answers (values of
# 200 bytes, all wrong while the bug is live, none once fixed), the
# command's JSON document (python3), and the patch's own record in the
# process (`rewire ls --json`: state, path, transition attempts), which
# shows that a rerun sent nothing that changes state.
#   1. apply: changed (load+enable), the fix takes effect;
#   2. again: unchanged, no action, the patch's attempts unchanged;
#   3. --check --absent: would-change, nothing changed;
#   4. --absent (the file given): changed, the bug is back; again:
#      unchanged;
#   5. another build of the same patch: replaced, fixed; again: unchanged;
#   6. a patch for another program: exit 1, the process as it was;
#   7. --persist without a patch directory: exit 1, nothing changed;
#   8. --persist with one: DIR/fix_value.so written (and nothing else),
#      a restarted server starts patched; --absent --persist removes it.
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
cc=${REWIRE_CC:-cc}
# See test_kv_demo.sh: only ASan's order check is in the way.
if [[ "${REWIRE_SANITIZE:-}" == *address* ]]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
fi

tmp=$(mktemp -d)
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
	rm -rf "$tmp"
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
	rm -f "$tmp/port"
	env "$@" "$rewire" run -- "$server" --port 0 --port-file "$tmp/port" \
		--threads 2 >"$tmp/server.out" 2>&1 &
	server_pid=$!
	for _ in $(seq 200); do
		[ -s "$tmp/port" ] && "$rewire" ls "$server_pid" >/dev/null 2>&1 &&
			return 0
		kill -0 "$server_pid" 2>/dev/null || fail "the server died"
		sleep 0.05
	done
	fail "the server did not start"
}

# Wrong answers in half a second of load.
wrong() {
	"$load" --port-file "$tmp/port" --duration 0.5 --keys 50 \
		--connections 2 --threads 1 --value-sizes 200 \
		--json "$tmp/load.json" </dev/null >/dev/null 2>&1 ||
		fail "kvload failed"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["total"]
assert d["requests"] > 0, d
print(d["wrong"])' "$tmp/load.json"
}

# rewire apply --json ARGS...: the document in out.json, the exit code in
# $rc.
apply() {
	rc=0
	"$rewire" --json apply "$server_pid" "$@" >"$tmp/out.json" \
		2>"$tmp/err" || rc=$?
}

# A Python expression over the document (d) must hold; more arguments are
# sys.argv[3:].
check() {
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
if not eval("(" + sys.argv[2] + ")"):
    sys.exit("document: %s\nfalse: %s" % (json.dumps(d), sys.argv[2]))' \
		"$tmp/out.json" "$1" "${@:3}" || fail "$2"
}

# The process's record of patch $1 as "STATE ATTEMPTS PATH", or "absent".
record() {
	"$rewire" --json ls "$server_pid" --patches >"$tmp/ls.json" ||
		fail "rewire ls failed"
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
p=[p for p in d.get("patches", []) if p["name"] == sys.argv[2]]
print("absent" if not p else "%s %s %s" % (p[0]["state"], p[0]["attempts"],
                                          p[0]["path"]))' \
		"$tmp/ls.json" "$1"
}

start_server
[ "$(wrong)" -gt 0 ] || fail "no wrong answer before the patch (bug gone?)"

# 1. Present: load+enable, and the fix takes effect.
apply "$patch"
[ "$rc" -eq 0 ] || fail "apply exited with $rc"
check 'd["changed"] is True and d["check"] is False and d["pid"] > 0' \
	"apply did not say changed"
check '[(a["patch"], a["action"], a["done"]) for a in d["actions"]] ==
	[("fix_value", "load+enable", True)]' "not one load+enable done"
check 'd["before"][0]["state"] == "absent" and
	d["after"][0]["state"] == "enabled" and
	d["before"][0]["persisted"] is False and d["patch_dir"] is None' \
	"before/after"
[ "$(wrong)" -eq 0 ] || fail "wrong answers with the patch applied"
rec=$(record fix_value)
[[ "$rec" == enabled\ * ]] || fail "the process has: $rec"

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
[ "$(wrong)" -gt 0 ] || fail "the bug is not back after --absent"
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
	(d["before"][0]["file_id"] is None or
	 d["before"][0]["file_id"] != d["after"][0]["file_id"])' \
	"the other build was not a replace"
[[ "$(record fix_value)" == enabled\ *\ "$tmp/fix_value.so" ]] ||
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

# 7. --persist without a patch directory: exit 1, nothing changed.
apply --absent fix_value --persist
[ "$rc" -eq 1 ] || fail "--persist without a patch dir: exit $rc, not 1"
check 'd["changed"] is False and d["actions"] == [] and
	"REWIRE_PATCH_DIR" in d["error"] and d["patch_dir"] is None' \
	"--persist without a patch dir"
[ "$(record fix_value)" = "$rec" ] || fail "--persist failed but changed"
stop_server

# 8. --persist into the patch directory; a restarted server starts patched.
pdir=$tmp/patches
mkdir -m 0755 "$pdir"
start_server REWIRE_PATCH_DIR="$pdir"
apply "$patch" --persist
if [ "$rc" -eq 1 ] && grep -q "has no patch directory" "$tmp/err"; then
	echo "SKIP: this librewire does not report its patch directory" \
		"(REWIRE_PATCH_DIR): steps 1-7 passed"
	exit 77
fi
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
[[ "$(record fix_value)" == enabled\ * ]] ||
	fail "the restarted server is not patched: $(record fix_value)"
[ "$(wrong)" -eq 0 ] || fail "the restarted server answers wrong"
apply "$patch" --persist
check 'd["changed"] is False' "the restarted server needed changes"
apply --absent fix_value --persist
check '[a["action"] for a in d["actions"]] ==
	["disable+unload", "unpersist"] and d["changed"] is True' \
	"--absent --persist"
[ -z "$(ls -A "$pdir")" ] || fail "left in the patch dir: $(ls -A "$pdir")"
[ "$(wrong)" -gt 0 ] || fail "the bug is not back"
echo "PASS"
