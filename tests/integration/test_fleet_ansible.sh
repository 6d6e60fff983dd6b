#!/usr/bin/env bash
# The Ansible module rewire.fleet.rewire_patch (issue 16, point 6), run by
# Debian's ansible-core against localhost (-c local) with the collection
# of the source tree (ANSIBLE_COLLECTIONS_PATH=<source>/ansible) and the
# rewire command of this build. Three fleet_target processes: two of one
# build (ansfleet_a, copies of fleet_target) and one of another
# (ansfleet_b, a copy of fleet_target_b, where fleet_fix.so is refused):
#   - ansible-doc renders the module's documentation;
#   - one playbook, run with --diff, of the module's tasks:
#     check mode (the task's check_mode, what --check sets): would-change,
#     nothing loaded (rewire ls); state=present (exe=ansfleet_a): changed,
#     the diff shows the patch enabled; the same task again: unchanged;
#     state=absent by name for one pid, then for the exe: changed (the
#     other process unchanged); a selector that matches nothing: ok with a
#     warning, or failed with require_match; comm='ansfleet_*' (all
#     three): the task fails and its message names ansfleet_b's pid and
#     why, both ansfleet_a are patched all the same, ansfleet_b is not;
#     the times around each task, so that each process's own output shows
#     that it answered new exactly while the patch was applied;
#   - the roll-out playbook (rewire.fleet.rollout, the collection's
#     playbooks/rollout.yml) run against localhost as a fleet of one host:
#     the patch copied, applied, persisted into the processes' patch
#     directory, verified with rewire ls --json; a process started then
#     answers new from its first call.
# Two ansible-playbook runs (each costs seconds on a loaded machine).
# Skipped (77) without ansible-playbook.
set -euo pipefail
: "${REWIRE_BUILD_DIR:?set by CTest}"
: "${REWIRE_SOURCE_DIR:?set by CTest}"

rw=${REWIRE_TOOL:-$REWIRE_BUILD_DIR/tools/rewire}
target=${FLEET_TARGET:-$REWIRE_BUILD_DIR/tests/fleet/fleet_target}
target_b=${FLEET_TARGET_B:-$REWIRE_BUILD_DIR/tests/fleet/fleet_target_b}
patch=${FLEET_PATCH:-$REWIRE_BUILD_DIR/tests/fleet/fleet_fix.so}

skip() {
	echo "SKIP: $*"
	exit 77
}
command -v ansible-playbook >/dev/null 2>&1 ||
	skip "ansible-playbook not installed (Debian: apt-get install ansible-core)"
[ "${FLEET_BACKEND:-x86_64}" != generic ] ||
	skip "live patching needs a code-patching backend (x86_64 or aarch64)"
[ -x "$rw" ] || skip "$rw not built"
[ -x "$target" ] && [ -x "$target_b" ] && [ -f "$patch" ] ||
	skip "the fleet programs are not built"
python=$(command -v python3 || true)
[ -n "$python" ] || skip "python3 is needed to read rewire's --json"

tmp=$(mktemp -d /tmp/rwans.XXXXXX)
export REWIRE_CTL_DIR=$tmp/ctl
unset REWIRE_CTL REWIRE_LIB
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

fail() {
	echo "FAIL: $*"
	fail_report 20
	if [ -f "$tmp/play.out" ]; then
		echo "--- last ansible-playbook ($play_cmd):"
		tail -60 "$tmp/play.out"
	fi
	exit 1
}
# shellcheck source=../common/rwrun.sh
source "$(dirname "$0")/../common/rwrun.sh"
# shellcheck source=../fleet/fleet.sh
source "$(dirname "$0")/../fleet/fleet.sh"
trap 'fleet_stop; rm -rf "$tmp"' EXIT

# Ansible's own files (its temporary directories, ~/.ansible) in $tmp, no
# ansible.cfg of the machine's, the collection of the source tree.
mkdir -p "$tmp/home" "$tmp/bin"
export HOME=$tmp/home
export ANSIBLE_CONFIG=$tmp/ansible.cfg
: >"$ANSIBLE_CONFIG"
export ANSIBLE_COLLECTIONS_PATH=$REWIRE_SOURCE_DIR/ansible
export ANSIBLE_LOCAL_TEMP=$tmp/home/.ansible/tmp
export ANSIBLE_REMOTE_TEMP=$tmp/home/.ansible/tmp
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PIPELINING=1
export ANSIBLE_DEPRECATION_WARNINGS=0
# Debian's ansible-core runs on Debian's python3, not another one first in
# PATH.
if [ -x /usr/bin/python3 ]; then
	export ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
else
	export ANSIBLE_PYTHON_INTERPRETER=auto_silent
fi
cd "$tmp"

echo "== ansible-doc rewire.fleet.rewire_patch"
doc=$(ansible-doc rewire.fleet.rewire_patch 2>&1) ||
	{ echo "$doc"; fail "ansible-doc failed"; }
for w in "REWIRE.FLEET.REWIRE_PATCH" "OPTIONS" "- build_id" "- require_match" \
	"EXAMPLES:" "RETURN VALUES:" "- processes" "check_mode:"; do
	grep -qF -- "$w" <<<"$doc" ||
		{ echo "$doc"; fail "ansible-doc does not show '$w'"; }
done

# The fleet: copies under their own names, so that the selectors pick
# these processes and no other test's.
cp "$target" "$tmp/bin/ansfleet_a"
cp "$target_b" "$tmp/bin/ansfleet_b"
# The ansfleet_a have a patch directory (the roll-out persists into it).
mkdir -m 755 "$tmp/pd"
REWIRE_PATCH_DIR=$tmp/pd fleet_start 2 "$tmp/bin/ansfleet_a" --lifetime 600
pa1=${fleet_pids[0]} pa2=${fleet_pids[1]}
fleet_start 1 "$tmp/bin/ansfleet_b" --lifetime 600
pb=${fleet_pids[2]}

# rewire apply's bound (the module's timeout) and each playbook's: a
# sanitizer build's transitions can take 10 s and more each (the main
# thread sleeps under a frame the outside unwinder cannot follow;
# test_fleet_apply.sh).
apply_timeout=30 play_timeout=120
if [ -n "${REWIRE_SANITIZE:-}" ]; then
	apply_timeout=140 play_timeout=400
fi
cat >"$tmp/vars.json" <<JSON
{"rw": "$rw", "patch": "$patch", "ctl_dir": "$REWIRE_CTL_DIR",
 "exe_a": "$tmp/bin/ansfleet_a", "pa1": $pa1, "pa2": $pa2, "pb": $pb,
 "apply_timeout": $apply_timeout}
JSON

# play NAME [ansible-playbook options]: runs $tmp/NAME.yml (or the
# collection's playbook NAME when it has dots); its output in
# $tmp/play.out, its exit code in prc.
play() {
	local name=$1 book
	shift
	book=$tmp/$name.yml
	[[ "$name" != *.* ]] || book=$name
	play_cmd="$* $book"
	set +e
	timeout -k 5 "$play_timeout" ansible-playbook -i localhost, -c local \
		-e "@$tmp/vars.json" "$@" "$book" >"$tmp/play.out" 2>&1
	prc=$?
	set -e
	[ "$prc" -ne 124 ] || fail "ansible-playbook $play_cmd did not finish"
}
# recap K=V...: the PLAY RECAP line of localhost has these counts.
recap() {
	local kv
	for kv in "$@"; do
		grep -Eq "^localhost +:.* $kv( |$)" "$tmp/play.out" ||
			fail "ansible-playbook $play_cmd: recap is not $kv: $(grep -E '^localhost +:' "$tmp/play.out")"
	done
}
expect_play() {
	[ "$prc" -eq "$1" ] ||
		fail "ansible-playbook $play_cmd: exit code $prc, expected $1"
}
# Both ansfleet_a (and ansfleet_b) answer WANT in a heartbeat started
# after T.
answers() {
	local want=$1 t=$2
	shift 2
	fleet_wait_hb "$t" "$@"
	fleet_state "$want" "$@"
}
no_patch() {
	local p
	for p in "$@"; do
		rwrun ls "$p" --patches --json
		expect_rc 0 "ls $p"
		[ "$("$python" -c 'import json, sys; print(len(json.load(sys.stdin)["patches"]))' <<<"$out")" = 0 ] ||
			fail "process $p has a patch loaded: $out"
	done
}

echo "== one playbook: check mode, present, again, absent, failure"
cat >"$tmp/state.yml" <<'YAML'
- hosts: localhost
  gather_facts: false
  environment:
    REWIRE_CTL_DIR: "{{ ctl_dir }}"
  vars:
    now: "{{ lookup('pipe', 'date +%s%N') }}"
  tasks:
    - name: check mode
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        exe: "{{ exe_a }}"
        rewire: "{{ rw }}"
      check_mode: true
      register: r0
    - name: what the processes run after check mode
      command:
        argv: ["{{ rw }}", ls, --exe, "{{ exe_a }}", --patches, --json]
      register: ls0
      changed_when: false
    - set_fact: {t0: "{{ now }}"}
    - name: present
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        exe: "{{ exe_a }}"
        rewire: "{{ rw }}"
        timeout: "{{ apply_timeout }}"
      register: r1
    - set_fact: {t1: "{{ now }}"}
    - name: present again
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        exe: "{{ exe_a }}"
        rewire: "{{ rw }}"
        timeout: "{{ apply_timeout }}"
      register: r2
    - set_fact: {t2: "{{ now }}"}
    - name: absent, one process by pid
      rewire.fleet.rewire_patch:
        name: fleet_fix
        state: absent
        pid: "{{ pa1 }}"
        rewire: "{{ rw }}"
        timeout: "{{ apply_timeout }}"
      register: r3
    - set_fact: {t3: "{{ now }}"}
    - name: absent, by exe
      rewire.fleet.rewire_patch:
        name: fleet_fix
        state: absent
        exe: "{{ exe_a }}"
        rewire: "{{ rw }}"
        timeout: "{{ apply_timeout }}"
      register: r4
    - set_fact: {t4: "{{ now }}"}
    - name: a selector that matches nothing
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        exe: /nonexistent/program
        rewire: "{{ rw }}"
        timeout: "{{ apply_timeout }}"
      register: r5
    - name: the same with require_match
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        exe: /nonexistent/program
        require_match: true
        rewire: "{{ rw }}"
        timeout: "{{ apply_timeout }}"
      register: r6
      ignore_errors: true
    - set_fact: {t5: "{{ now }}"}
    - name: every ansfleet_*, one of which refuses the patch
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        comm: "ansfleet_*"
        rewire: "{{ rw }}"
        timeout: "{{ apply_timeout }}"
      register: r7
      ignore_errors: true
    - set_fact: {t6: "{{ now }}"}
    - name: absent again, for the roll-out
      rewire.fleet.rewire_patch:
        name: fleet_fix
        state: absent
        comm: "ansfleet_*"
        rewire: "{{ rw }}"
        timeout: "{{ apply_timeout }}"
      register: r8
    - set_fact: {t7: "{{ now }}"}
    - copy:
        dest: "{{ times }}"
        content: "{{ t0 }} {{ t1 }} {{ t2 }} {{ t3 }} {{ t4 }} {{ t5 }} {{ t6 }} {{ t7 }}\n"
      changed_when: false
      diff: false
    - assert:
        that:
          - r0.changed
          - r0.processes | rejectattr('result', 'equalto', 'skipped') | map(attribute='result') | unique == ['would-change']
          - r0.cmd[-2:] == ['--check', '--json']
          - (ls0.stdout | from_json).processes | rejectattr('result', 'equalto', 'skipped')
            | map(attribute='output') | map(attribute='patches') | map('length') | list == [0, 0]
          - r1.changed
          - r1.processes | rejectattr('result', 'equalto', 'skipped') | list | length == 2
          - r1.processes | rejectattr('result', 'equalto', 'skipped') | map(attribute='pid') | sort == [pa1, pa2] | sort
          - r1.processes | rejectattr('result', 'equalto', 'skipped') | map(attribute='result') | unique == ['changed']
          - r1.counts.matched == 2
          - r1.diff | length == 2
          - not r2.changed
          - r2.processes | rejectattr('result', 'equalto', 'skipped') | map(attribute='result') | unique == ['unchanged']
          - r3.changed
          - r3.processes | length == 1
          - r3.processes[0].pid == pa1
          - r3.processes[0].result == 'changed'
          - r4.changed
          - r4.processes | selectattr('pid', 'equalto', pa1)
            | map(attribute='result') | list == ['unchanged']
          - r4.processes | selectattr('pid', 'equalto', pa2)
            | map(attribute='result') | list == ['changed']
          - not r5.changed
          - r5.warnings | length > 0
          - r6.failed
          - "'no rewire-enabled process matches' in r6.msg"
          - r7.failed
          - r7.changed
          - r7.failed_processes | length == 1
          - r7.processes | selectattr('result', 'equalto', 'changed')
            | map(attribute='pid') | sort == [pa1, pa2] | sort
          - r8.processes | selectattr('result', 'equalto', 'changed')
            | map(attribute='pid') | sort == [pa1, pa2] | sort
          - r8.processes | selectattr('result', 'equalto', 'unchanged')
            | map(attribute='pid') | list == [pb]
YAML
play state --diff -e "times=$tmp/times"
expect_play 0
recap changed=6 failed=0 ignored=2
grep -q "^+fleet_fix: enabled" "$tmp/play.out" ||
	fail "the diff does not show fleet_fix enabled"
grep -Eq "^fatal: \[localhost\]: FAILED!.*rewire apply failed in 1 of 3 processes: $pb \(ansfleet_b\): [^\"]*build" "$tmp/play.out" ||
	fail "the failure does not name process $pb and why"
grep -Eq "^fatal: .*\"failed_processes\": \[\"$pb \(ansfleet_b\)" "$tmp/play.out" ||
	fail "failed_processes does not list process $pb"
read -r t0 t1 t2 t3 t4 t5 t6 t7 <"$tmp/times"
answers old "$(now_ns)" "$pa1" "$pa2" "$pb"
no_patch "$pa1" "$pa2" "$pb"

echo "== rewire.fleet.rollout against localhost"
# As a fleet of one host, as root without become; the modules that -c
# local runs inherit REWIRE_CTL_DIR from here.
t8=$(now_ns)
play rewire.fleet.rollout -e fleet=localhost -e "exe=$tmp/bin/ansfleet_a" \
	-e "patch=$patch" -e "remote_dir=$tmp/remote" -e soak=0 \
	-e ansible_become=false -e "rewire=$rw"
t9=$(now_ns)
expect_play 0
recap changed=3 failed=0
[ -f "$tmp/remote/fleet_fix.so" ] || fail "the roll-out did not copy the patch"
grep -q "TASK \[Each process runs it" "$tmp/play.out" &&
	grep -q "^ok: \[localhost\] => (item=$pa1)" "$tmp/play.out" &&
	grep -q "^ok: \[localhost\] => (item=$pa2)" "$tmp/play.out" ||
	fail "the roll-out did not verify both processes"
answers new "$(now_ns)" "$pa1" "$pa2"
answers old "$(now_ns)" "$pb"
# persist (the playbook's default): in the patch directory, so that a
# process started now answers new from its first call.
[ -f "$tmp/pd/fleet_fix.so" ] ||
	fail "the roll-out did not persist the patch: $(ls -l "$tmp/pd")"
REWIRE_PATCH_DIR=$tmp/pd fleet_start 1 "$tmp/bin/ansfleet_a" --lifetime 600
pa3=${fleet_pids[3]}
first=$(grep -m1 '^change thr=main' "$tmp/fleet.$pa3.out" || true)
[[ "$first" == *" v=new "* ]] ||
	fail "a process started after the roll-out does not start patched: $(head -3 "$tmp/fleet.$pa3.out")"

echo "== each process's own output"
# Each process answered new exactly while the patch was applied: from the
# end of the first present to the start of its absent task (check mode
# before, and the second present, changed nothing), then between the task
# that failed in ansfleet_b only and the last absent one (the two bounds
# t6: no time passes between them here, a flip each), and after the
# roll-out.
fleet_check "$t0 $t1 $t2 $t3 $t5 $t6 $t6 $t7 $t8 $t9" "$pa1"
fleet_check "$t0 $t1 $t3 $t4 $t5 $t6 $t6 $t7 $t8 $t9" "$pa2"
fleet_check "" "$pb"
fleet_check "$t9 $t9" "$pa3"
for p in "$pa1" "$pa2"; do
	grep -q "^hb thr=main v=new" "$tmp/fleet.$p.out" ||
		fail "process $p never answered new"
done
echo PASS
