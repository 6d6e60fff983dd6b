#!/usr/bin/env bash
# 50 rewire-enabled processes on one machine (issue 16, "Tests and
# figures"): fleet_target (tests/fleet/fleet_target.c, built with Debian's
# flags) started 50 times under a private control directory, then
#   rewire apply --all fleet_fix.so            timed; every process changed
#   rewire apply --all fleet_fix.so            again: every one unchanged
#   rewire apply --all --absent fleet_fix      every one changed back
# and each process checked from its own output that the patch took effect
# exactly while applied: no new answer before the first apply started,
# only new answers between its return and the start of --absent (the rerun
# in between changed nothing), only old ones after --absent returned; both
# threads of every process seen on each side.
# As root it runs in a pid namespace of its own (unshare), where --all
# selects only its 50 processes; elsewhere it selects them with --exe (a
# copy of fleet_target in its scratch directory).
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"

rw=${REWIRE_TOOL:-$REWIRE_BUILD_DIR/tools/rewire}
target=${FLEET_TARGET:-$REWIRE_BUILD_DIR/tests/fleet/fleet_target}
patch=${FLEET_PATCH:-$REWIRE_BUILD_DIR/tests/fleet/fleet_fix.so}
n=${FLEET_N:-50}
# Under a sanitizer a transition waits longer for each thread (the stacks
# of threads asleep in ASan's interceptors often cannot be unwound from
# outside, so they switch only when they next run their own check), and
# the whole suite shares two CPUs: fewer processes, and more time for each
# command. The figure of 50 is the ci preset's run.
rwrun_timeout=60
lifetime=120
# rewire apply's own bound (--timeout, 60 s by default) grows with it: on
# one machine every one of the 10 transitions took about 10 s there.
apply_timeout=()
if [ -n "${REWIRE_SANITIZE:-}" ] && [ -z "${FLEET_N:-}" ]; then
	n=10
	rwrun_timeout=150
	apply_timeout=(--timeout 140)
	lifetime=280
	echo "(a sanitizer build: $n processes)"
fi
# In the emulated aarch64 VM (scripts/aarch64/vm.sh) every process runs
# many times slower on the same two CPUs: 4 of them (10 took 47 s for
# one apply there, and the test 140 s of the step's budget). rwrun scales
# its own bound by REWIRE_TEST_TIME_SCALE; apply's stays below it.
if [ -n "${REWIRE_AARCH64_VM:-}" ] && [ -z "${FLEET_N:-}" ]; then
	n=4
	apply_timeout=(--timeout $((50 * ${REWIRE_TEST_TIME_SCALE:-1})))
	lifetime=$((120 * ${REWIRE_TEST_TIME_SCALE:-1}))
	echo "(the emulated aarch64 VM: $n processes)"
fi

skip() {
	echo "SKIP: $*"
	exit 77
}
[ "${FLEET_BACKEND:-x86_64}" != generic ] ||
	skip "live patching needs a code-patching backend (x86_64 or aarch64)"
[ -x "$rw" ] || skip "$rw not built"
[ -x "$target" ] && [ -f "$patch" ] || skip "$target or $patch not built"
python=$(command -v python3 || true)
[ -n "$python" ] || skip "python3 is needed to read rewire's --json"

# shellcheck source=../fleet/fleet.sh
source "$(dirname "$0")/../fleet/fleet.sh"
fleet_isolate "$0" "$@"

tmp=$(mktemp -d /tmp/rwfleet.XXXXXX)
export REWIRE_CTL_DIR=$tmp/ctl
unset REWIRE_CTL REWIRE_LIB
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

fail() {
	echo "FAIL: $*"
	fail_report 20
	exit 1
}
# shellcheck source=../common/rwrun.sh
source "$(dirname "$0")/../common/rwrun.sh"
trap 'fleet_stop; rm -rf "$tmp"' EXIT

if [ "$fleet_isolated" = 1 ]; then
	sel=(--all)
	echo "(in a pid namespace of its own: --all)"
else
	cp "$target" "$tmp/fleet_target"
	target=$tmp/fleet_target
	sel=(--exe "$target")
	echo "(not root or no unshare: --exe $target instead of --all)"
fi

# json EXPR: EXPR evaluated on rewire's JSON document (stdout) as d.
json() {
	"$python" -c "import json, sys
d = json.loads(sys.stdin.read())
print($1)" <<<"$out" || fail "JSON check '$1' on: $out"
}
expect_json() {
	local got
	got=$(json "$1")
	[ "$got" = "$2" ] || fail "JSON: $1 is '$got', expected '$2'"
}
# Every process's result, as "PID:RESULT" sorted by pid. (Without a pid
# namespace of its own, a process of another namespace whose executable
# cannot be read is listed as skipped: not one of ours.)
results() {
	json "' '.join('%d:%s' % (p['pid'], p['result']) for p in sorted(d['processes'], key=lambda p: p['pid']) if p['result'] != 'skipped')"
}
all_are() {
	local p want=""
	for p in $(printf '%s\n' "${fleet_pids[@]}" | sort -n); do
		want+="${want:+ }$p:$1"
	done
	[ "$(results)" = "$want" ] ||
		fail "$2: expected every process $1, got: $(results)"
}
ms_since() {
	echo $((($(now_ns) - $1) / 1000000))
}

echo "== starting $n processes"
t=$(now_ns)
fleet_start "$n" "$target" --lifetime "$lifetime"
echo "started in $(ms_since "$t") ms"

echo "== rewire apply ${sel[*]} $patch"
t0=$(now_ns)
rwrun apply "${apply_timeout[@]}" "${sel[@]}" "$patch" --json
t1=$(now_ns)
expect_rc 0 "apply --all"
echo "applied to $n processes in $(((t1 - t0) / 1000000)) ms"
expect_json "(d['command'], d['matched'], d['ok'], d['failed'], d['changed'])" \
	"('apply', $n, $n, 0, $n)"
all_are changed "apply --all"
expect_json "sorted(set(a['action'] for p in d['processes'] if p['output'] for a in p['output']['actions']))" "['load+enable']"
expect_json "sorted(set(a['state'] for p in d['processes'] if p['output'] for a in p['output']['after'] if a['name'] == 'fleet_fix'))" "['enabled']"
fleet_wait_hb "$t1"
fleet_state new

echo "== rewire apply ${sel[*]} $patch (again)"
t=$(now_ns)
rwrun apply "${apply_timeout[@]}" "${sel[@]}" "$patch" --json
expect_rc 0 "apply --all again"
echo "rerun on $n processes in $(ms_since "$t") ms"
expect_json "(d['matched'], d['failed'], d['changed'])" "($n, 0, 0)"
all_are unchanged "apply --all again"
expect_json "sum(len(p['output']['actions']) for p in d['processes'] if p['output'])" 0
# The text table says so too, one line per process.
rwrun apply "${apply_timeout[@]}" "${sel[@]}" "$patch" --quiet
expect_rc 0 "apply --all again (text)"
[ "$(grep -Ec "^ *[0-9]+ +fleet_target +unchanged" <<<"$out")" -eq "$n" ] ||
	fail "the text table does not list $n processes unchanged: $out"

echo "== rewire apply ${sel[*]} --absent fleet_fix"
t2=$(now_ns)
rwrun apply "${apply_timeout[@]}" "${sel[@]}" --absent fleet_fix --json
t3=$(now_ns)
expect_rc 0 "apply --all --absent"
echo "removed from $n processes in $(((t3 - t2) / 1000000)) ms"
expect_json "(d['matched'], d['failed'], d['changed'])" "($n, 0, $n)"
all_are changed "apply --absent"
expect_json "sorted(set(a['action'] for p in d['processes'] if p['output'] for a in p['output']['actions']))" "['disable+unload']"
fleet_wait_hb "$t3"
fleet_state old

echo "== each process's own output"
fleet_check "$t0 $t1 $t2 $t3"
for p in "${fleet_pids[@]}"; do
	grep -q '^change thr=worker v=new' "$tmp/fleet.$p.out" ||
		fail "process $p: its worker never answered new"
done
rwrun apply "${apply_timeout[@]}" "${sel[@]}" --absent fleet_fix --json
expect_rc 0 "apply --absent again"
all_are unchanged "apply --absent again"
echo PASS
