#!/usr/bin/env bash
# The rewire command against a running cli_target (tests/integration/cli/):
# usage errors (exit 2), help and version, unreachable processes (exit 3:
# unknown PID, a thread id, no control socket, stale socket), ps (text,
# JSON, --clean), ls (every section, filters, JSON), key and call (output,
# the target's behaviour changes, JSON, unknown names and refused targets:
# exit 1), and the three ways to start the control server: REWIRE_CTL=1,
# rw_ctl_start(), `rewire run` (and its errors: 127, librewire not found).
# shellcheck source=cli/common.sh
source "$(dirname "$0")/cli/common.sh"

step "usage errors and help"
rwrun
expect_rc 2 "no arguments"
expect_err "usage: rewire" "no arguments"
rwrun frobnicate
expect_rc 2 "unknown subcommand"
expect_err "unknown subcommand 'frobnicate'" "unknown subcommand"
rwrun ls
expect_rc 2 "ls without PID"
expect_err "missing PID" "ls without PID"
rwrun ls notapid
expect_rc 2 "ls notapid"
rwrun ls 1 --bogus
expect_rc 2 "unknown option"
expect_err "unknown option '--bogus'" "unknown option"
rwrun key 1 somekey maybe
expect_rc 2 "key value"
expect_err "not on or off" "key value"
rwrun call 1 onlyname
expect_rc 2 "call without target"
rwrun trace 1
expect_rc 2 "trace without tracepoint"
rwrun patch 1
expect_rc 2 "patch without file"
rwrun patch 1 x.so --timeout soon
expect_rc 2 "patch --timeout soon"
rwrun run
expect_rc 2 "run without command"
rwrun help nosuch
expect_rc 2 "help nosuch"
rwrun --version
expect_rc 0 "--version"
expect_out "^rewire [0-9]+\.[0-9]+\.[0-9]+ \(wire protocol [0-9]+\)" "--version"
rwrun --help
expect_rc 0 "--help"
expect_out "Exit codes:" "--help"
for sub in ps ls key call trace patch unpatch force run help; do
	rwrun help "$sub"
	expect_rc 0 "help $sub"
	expect_out "^usage: rewire $sub" "help $sub"
	if [ "$sub" != help ]; then
		rwrun "$sub" --help
		expect_rc 0 "$sub --help"
		expect_out "^usage: rewire $sub" "$sub --help"
		expect_out "Example" "$sub --help has examples"
	fi
done

step "unreachable processes (exit 3)"
dead=$(dead_pid)
rwrun ls "$dead"
expect_rc 3 "ls of an unknown PID"
expect_err "no such process: $dead" "ls of an unknown PID"
rwrun --json key "$dead" k on
expect_rc 3 "--json key of an unknown PID"
expect_json "d['error']['exit'], d['error']['errname']" "3 ESRCH"
sleep 3600 &  # killed at exit (bg_pids); outlives the slowest run
plain=$!
bg_pids+=("$plain")
rwrun ls "$plain"
expect_rc 3 "ls of a process without control socket"
expect_err "has no control socket" "no control socket"
expect_err "rewire run" "no control socket: the hint"

step "a target started with REWIRE_CTL=1"
start_target
pid1=$tpid
[ "$(last_value verbose)" = 0 ] || fail "verbose is not 0 at the start"
[ "$(last_value value)" = 11 ] || fail "value is not 11 at the start"

# A thread id is not a process id.
tid=
for t in /proc/"$pid1"/task/*; do
	t=${t##*/}
	if [ "$t" != "$pid1" ]; then
		tid=$t
		break
	fi
done
rwrun ls "$tid"
expect_rc 3 "ls of a thread id"
expect_err "is a thread of process $pid1" "ls of a thread id"

step "ps"
rwrun ps
expect_rc 0 "ps"
expect_out "^PID +NSPID +USER +STATUS +COMM +CONTAINER +PATCHES +TRACES +KEYS +VERSION +PROGRAM$" "ps header"
expect_out "^$pid1 +- +[^ ]+ +ok +cli-target +- +- +- +- +[0-9.]+ +[^ ]*cli_target$" "ps lists the target"
rwrun ps --json
expect_rc 0 "ps --json"
expect_json "[p['status'] for p in d['processes'] if p['pid'] == $pid1]" "['ok']"
expect_json "[p['program'].endswith('cli_target') for p in d['processes'] if p['pid'] == $pid1]" "[True]"

# The generic backend patches no code: its keys have no sites.
nsites='[1-9][0-9]*'
minsites=1
if [ "$backend" = generic ]; then
	nsites='[0-9]+'
	minsites=0
fi

step "ls"
rwrun ls "$pid1"
expect_rc 0 "ls"
for section in KEYS "STATIC CALLS" TRACEPOINTS PATCHES THREADS; do
	expect_out "^$section\$" "ls section $section"
done
expect_out "^NAME +STATE +COUNT +DEFAULT +SITES +OBJECT" "ls KEYS header"
expect_out "^cli_verbose +off +0 +off +$nsites " "ls: cli_verbose"
expect_out "^cli_fast +on +1 +on +$nsites " "ls: cli_fast"
expect_out "^cli_value +value_one +[^ ]*value_two" "ls: cli_value and its candidates"
expect_out "^cli_tick +0 +int n, const char \*who " "ls: cli_tick"
expect_out "^cli_sample +0 +unsigned long seq, double ratio, (bool|_Bool) odd" "ls: cli_sample"
expect_out "cli-worker-0" "ls: threads"
expect_out "cli-holder" "ls: threads"
if grep -Eq "^cli_tick_|rw__tp" <<<"$out"; then
	fail "ls lists a tracepoint's own key or call"
fi
rwrun ls "$pid1" --keys --calls
expect_rc 0 "ls --keys --calls"
expect_out "^KEYS" "ls --keys"
expect_out "^STATIC CALLS" "ls --calls"
if grep -Eq "^(TRACEPOINTS|PATCHES|THREADS)$" <<<"$out"; then
	fail "ls --keys --calls shows other sections"
fi
rwrun ls "$pid1" --json
expect_rc 0 "ls --json"
expect_json "d['pid'] == $pid1 and sorted(d) == sorted(['pid', 'program', 'cmdline', 'version', 'keys', 'calls', 'tracepoints', 'patches', 'threads'])" True
expect_json "[(k['enabled'], k['initial'], k['count']) for k in d['keys'] if k['name'] == 'cli_verbose']" "[(False, False, 0)]"
expect_json "[(c['target'], 'value_two' in c['candidates']) for c in d['calls'] if c['name'] == 'cli_value']" "[('value_one', True)]"
expect_json "[[f['name'] for f in t['fields']] for t in d['tracepoints'] if t['name'] == 'cli_sample']" "[['seq', 'ratio', 'odd']]"
expect_json "len([t for t in d['threads'] if t['name'].startswith('cli-worker-')])" 3
rwrun ls "$pid1" --threads --json
expect_json "sorted(d)" "['cmdline', 'pid', 'program', 'threads', 'version']"

step "key"
rwrun key "$pid1" cli_verbose on
expect_rc 0 "key on"
expect_out "^cli_verbose: off -> on \($nsites sites?\)$" "key on"
wait_value verbose 1
rwrun ls "$pid1" --keys
expect_out "^cli_verbose +on +1 " "ls after key on"
rwrun --json key "$pid1" cli_verbose off
expect_rc 0 "key off --json"
expect_json "(d['key'], d['old'], d['enabled'], d['sites'] >= $minsites)" "('cli_verbose', True, False, True)"
wait_value verbose 0
rwrun key "$pid1" cli_fast off
expect_rc 0 "key cli_fast off"
expect_out "^cli_fast: on -> off" "key cli_fast off"
wait_value fast 0
rwrun key "$pid1" cli_fast on
expect_rc 0 "key cli_fast on"
wait_value fast 1
rwrun key "$pid1" no_such_key on
expect_rc 1 "unknown key"
expect_err "key no_such_key: .*\((ENOENT|RW_ERR_SYMBOL)\)" "unknown key"
rwrun --json key "$pid1" no_such_key on
expect_rc 1 "unknown key --json"
expect_json "d['error']['exit']" 1

step "call"
rwrun call "$pid1" cli_value value_two
expect_rc 0 "call value_two"
expect_out "^cli_value: value_one -> value_two$" "call value_two"
wait_value value 12
rwrun call "$pid1" cli_value value_three
expect_rc 1 "call to an unregistered target"
expect_err "value_one" "the refusal lists the allowed targets"
expect_err "value_two" "the refusal lists the allowed targets"
[ "$(last_value value)" = 12 ] || fail "a refused call changed the target"
rwrun --json call "$pid1" cli_value value_one
expect_rc 0 "call value_one --json"
expect_json "(d['call'], d['old'], d['target'])" "('cli_value', 'value_two', 'value_one')"
wait_value value 11
rwrun call "$pid1" no_such_call value_one
expect_rc 1 "unknown static call"
expect_err "no_such_call" "unknown static call"

step "stale sockets"
kill_target "$pid1"
rwrun ls "$pid1"
expect_rc 3 "ls of a killed target"
expect_err "no such process|exited" "ls of a killed target"
if [ -S "$REWIRE_CTL_DIR/$pid1.sock" ]; then
	# The socket of a process that is gone is not listed, only counted.
	rwrun ps
	expect_rc 0 "ps with a stale socket"
	if grep -Eq "^$pid1 " <<<"$out"; then
		fail "ps lists the socket of a process that is gone"
	fi
	expect_err "1 socket of exited processes ignored" "ps with a stale socket"
	rwrun ps --clean
	expect_rc 0 "ps --clean"
	expect_err "removed stale socket .*/$pid1.sock" "ps --clean"
	[ ! -e "$REWIRE_CTL_DIR/$pid1.sock" ] || fail "ps --clean left the socket"
fi
# A live process with a socket nobody listens on.
if [ "$have_python" -eq 1 ]; then
	python3 -c "import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.close()" "$REWIRE_CTL_DIR/$plain.sock"
	rwrun ls "$plain"
	expect_rc 3 "ls with a stale socket"
	expect_err "stale control socket" "ls with a stale socket"
	rwrun ps --json
	expect_json "[p['status'] for p in d['processes'] if p['pid'] == $plain]" "['stale']"
	rwrun ps --clean --json
	expect_json "[p.endswith('/$plain.sock') for p in d['removed']]" "[True]"
	[ ! -e "$REWIRE_CTL_DIR/$plain.sock" ] || fail "ps --clean left the socket"
fi

step "a target that calls rw_ctl_start()"
start_target --ctl-start
rwrun ls "$tpid" --keys
expect_rc 0 "ls of a target that called rw_ctl_start()"
expect_out "^cli_verbose " "ls of a target that called rw_ctl_start()"
kill_target "$tpid"

step "rewire run"
rwrun run -- /nonexistent/command
expect_rc 127 "run of a missing command"
expect_err "command not found" "run of a missing command"
REWIRE_LIB=/nonexistent/librewire.so rwrun run -- true
expect_rc 1 "run with a missing REWIRE_LIB"
expect_err "librewire not found" "run with a missing REWIRE_LIB"
# A sanitized librewire cannot be preloaded into an unsanitized sh.
if [ -z "${REWIRE_SANITIZE:-}" ]; then
	# shellcheck disable=SC2016
	rwrun run -- sh -c 'echo "$REWIRE_CTL|$LD_PRELOAD"'
	expect_rc 0 "run sh"
	expect_out "^1\|/[^ ]*librewire\.so[^ ]*$" "run sets REWIRE_CTL and LD_PRELOAD"
	# shellcheck disable=SC2016
	LD_PRELOAD=libc.so.6 rwrun run -- sh -c 'echo "$LD_PRELOAD"'
	expect_out "librewire\.so[^:]*:libc\.so\.6$" "run keeps LD_PRELOAD"
fi
ntarget=$((ntarget + 1))
tlog=$tmp/target.$ntarget.out
"$rw" run -- "$target" --lifetime 900 >"$tlog" 2>"$tmp/target.$ntarget.err" &
tpid=$!
bg_pids+=("$tpid")
wait_socket "$tpid"
wait_log "$tlog" '^ready'
tr '\0' '\n' <"/proc/$tpid/environ" >"$tmp/environ"
grep -q '^REWIRE_CTL=1$' "$tmp/environ" || fail "rewire run: no REWIRE_CTL=1"
grep -Eq '^LD_PRELOAD=/[^:]*librewire\.so' "$tmp/environ" ||
	fail "rewire run: librewire is not first in LD_PRELOAD"
rwrun ls "$tpid" --calls
expect_rc 0 "ls of a target started by rewire run"
expect_out "^cli_value +value_one" "ls of a target started by rewire run"
rwrun ps
expect_out "^$tpid +- +[^ ]+ +ok " "ps lists the target started by rewire run"
kill_target "$tpid"

echo "PASS"
