#!/usr/bin/env bash
# The Ansible module rewire.fleet.rewire_patch (issue 16, point 6), run by
# Debian's ansible-core against localhost (-c local) with the collection
# of the source tree (ANSIBLE_COLLECTIONS_PATH=<source>/ansible) and the
# rewire command of this build. Three fleet_target processes: two of one
# build (ansfleet_a, copies of fleet_target) and one of another
# (ansfleet_b, a copy of fleet_target_b, where fleet_fix.so is refused):
#   - ansible-doc renders the module's documentation; the roll-out
#     playbook (rewire.fleet.rollout, the collection's
#     playbooks/rollout.yml) passes --syntax-check;
#   - --check: the task reports changed, the processes stay unpatched
#     (their own output and rewire ls);
#   - state=present (exe=ansfleet_a), with --diff: changed, the diff shows
#     the patch enabled, both processes answer new; again: unchanged;
#   - state=absent: changed, both answer old again;
#   - comm='ansfleet_*' (all three): the task fails and its message names
#     ansfleet_b's pid and why; both ansfleet_a are patched all the same,
#     ansfleet_b is not;
#   - pid=, state=absent by name; no process matches: ok with a warning,
#     or failed with require_match;
#   - the roll-out playbook run against localhost (as a fleet of one host):
#     the patch copied, applied, verified with rewire ls --json; then
#     state=absent.
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
[ "${FLEET_BACKEND:-x86_64}" = x86_64 ] ||
	skip "live patching needs the x86_64 backend"
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
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
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

echo "== ansible-playbook --syntax-check rewire.fleet.rollout"
play_cmd="--syntax-check rewire.fleet.rollout"
ansible-playbook -i localhost, --syntax-check rewire.fleet.rollout \
	>"$tmp/play.out" 2>&1 ||
	fail "rewire.fleet.rollout does not pass --syntax-check"

# The fleet: copies under their own names, so that the selectors pick
# these processes and no other test's.
cp "$target" "$tmp/bin/ansfleet_a"
cp "$target_b" "$tmp/bin/ansfleet_b"
fleet_start 2 "$tmp/bin/ansfleet_a" --lifetime 150
pa1=${fleet_pids[0]} pa2=${fleet_pids[1]}
fleet_start 1 "$tmp/bin/ansfleet_b" --lifetime 150
pb=${fleet_pids[2]}

cat >"$tmp/vars.json" <<JSON
{"rw": "$rw", "patch": "$patch", "ctl_dir": "$REWIRE_CTL_DIR",
 "exe_a": "$tmp/bin/ansfleet_a", "pa1": $pa1, "pa2": $pa2, "pb": $pb}
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
	timeout -k 5 120 ansible-playbook -i localhost, -c local \
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
	local want=$1 t=$2 p
	shift 2
	for p in "$@"; do
		fleet_wait_hb "$p" "$t"
		[ "$(fleet_state "$p")" = "$want" ] ||
			fail "process $p answers $(fleet_state "$p"), not $want"
	done
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

cat >"$tmp/present.yml" <<'YAML'
- hosts: localhost
  gather_facts: false
  environment:
    REWIRE_CTL_DIR: "{{ ctl_dir }}"
  tasks:
    - name: fleet_fix in every ansfleet_a
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        exe: "{{ exe_a }}"
        rewire: "{{ rw }}"
        timeout: 30
      register: r
    - name: each process reported, as the mode says
      assert:
        that:
          - r.processes | length == 2
          - r.processes | map(attribute='pid') | sort == [pa1, pa2] | sort
          - r.processes | map(attribute='result') | unique ==
            [expect]
          - r.counts.matched == 2
          - r.cmd[1] == 'apply'
YAML
cat >"$tmp/absent.yml" <<'YAML'
- hosts: localhost
  gather_facts: false
  environment:
    REWIRE_CTL_DIR: "{{ ctl_dir }}"
  tasks:
    - name: no fleet_fix in the ansfleet_a
      rewire.fleet.rewire_patch:
        name: fleet_fix
        state: absent
        exe: "{{ exe_a }}"
        rewire: "{{ rw }}"
      register: r
    - assert:
        that:
          - r.processes | map(attribute='result') | unique == ['changed']
YAML

echo "== check mode"
t=$(now_ns)
play present --check -e expect=would-change
expect_play 0
recap changed=1 failed=0
answers old "$(now_ns)" "$pa1" "$pa2"
no_patch "$pa1" "$pa2" "$pb"

echo "== state=present, with --diff"
play present --diff -e expect=changed
expect_play 0
recap changed=1 failed=0
grep -q "fleet_fix: enabled" "$tmp/play.out" ||
	fail "the diff does not show fleet_fix enabled"
answers new "$(now_ns)" "$pa1" "$pa2"
answers old "$(now_ns)" "$pb"

echo "== state=present again: unchanged"
play present -e expect=unchanged
expect_play 0
recap changed=0 failed=0

echo "== state=absent"
play absent
expect_play 0
recap changed=1 failed=0
answers old "$(now_ns)" "$pa1" "$pa2"
no_patch "$pa1" "$pa2"

echo "== one process fails: the others are done"
cat >"$tmp/glob.yml" <<'YAML'
- hosts: localhost
  gather_facts: false
  environment:
    REWIRE_CTL_DIR: "{{ ctl_dir }}"
  tasks:
    - name: fleet_fix in every ansfleet_*
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        comm: "ansfleet_*"
        rewire: "{{ rw }}"
YAML
play glob
expect_play 2
recap failed=1
# (A failed task is counted as failed, not changed, in the recap; its
# result says what changed.)
grep -Eq '^fatal: \[localhost\]: FAILED! => \{"changed": true' "$tmp/play.out" ||
	fail "the failed task does not say that the other processes changed"
grep -Eq "^fatal: \[localhost\]: FAILED!.*rewire apply failed in 1 of 3 processes: $pb \(ansfleet_b\): [^\"]*build" "$tmp/play.out" ||
	fail "the failure does not name process $pb and why"
grep -Eq "^fatal: .*\"failed_processes\": \[\"$pb \(ansfleet_b\)" "$tmp/play.out" ||
	fail "failed_processes does not list process $pb"
answers new "$(now_ns)" "$pa1" "$pa2"
answers old "$(now_ns)" "$pb"
no_patch "$pb"

echo "== pid=, by name; then what matches nothing"
cat >"$tmp/misc.yml" <<'YAML'
- hosts: localhost
  gather_facts: false
  environment:
    REWIRE_CTL_DIR: "{{ ctl_dir }}"
  tasks:
    - name: one process by pid
      rewire.fleet.rewire_patch:
        name: fleet_fix
        state: absent
        pid: "{{ pa1 }}"
        rewire: "{{ rw }}"
      register: r
    - assert:
        that:
          - r.changed
          - r.processes | length == 1
          - r.processes[0].pid == pa1
          - r.processes[0].result == 'changed'
    - name: a selector that matches nothing
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        exe: /nonexistent/program
        rewire: "{{ rw }}"
      register: r
    - assert:
        that:
          - not r.changed
          - r.warnings | length > 0
    - name: the same with require_match
      rewire.fleet.rewire_patch:
        patch: "{{ patch }}"
        exe: /nonexistent/program
        require_match: true
        rewire: "{{ rw }}"
      register: r
      ignore_errors: true
    - assert:
        that:
          - r.failed
YAML
play misc
expect_play 0
recap changed=1 failed=0
answers old "$(now_ns)" "$pa1"
answers new "$(now_ns)" "$pa2"

echo "== rewire.fleet.rollout against localhost, then state=absent"
rollout=(-e fleet=localhost -e "exe=$tmp/bin/ansfleet_a" -e "patch=$patch"
	-e "remote_dir=$tmp/remote" -e soak=0 -e persist=false
	-e ansible_become=false -e "rewire=$rw")
# (The modules that -c local runs inherit REWIRE_CTL_DIR from here.)
play rewire.fleet.rollout "${rollout[@]}"
expect_play 0
recap failed=0
[ -f "$tmp/remote/fleet_fix.so" ] || fail "the roll-out did not copy the patch"
grep -q "Each process runs it" "$tmp/play.out" ||
	fail "the roll-out did not verify"
answers new "$(now_ns)" "$pa1" "$pa2"
play rewire.fleet.rollout "${rollout[@]}" -e state=absent
expect_play 0
recap changed=1 failed=0
answers old "$(now_ns)" "$pa1" "$pa2"
echo PASS
