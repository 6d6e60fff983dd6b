#!/usr/bin/env bash
# rewire funccount and rewire funclatency against ft_target and
# ft_target_cxx (cli_ftrace/: built -O2 with dpkg-buildflags, patchable,
# multithreaded, a known number of calls per phase):
#   - funccount: per-interval reports, totals equal to the calls made,
#     Ctrl-C and --duration, --json
#   - funclatency: a function that sleeps 1 ms lands in [512K, 1M) or
#     [1M, 2M) ns, --per-function, --json
#   - C++: demangled names ('ns::compute(int)', 'ns::compute*', a method)
#   - entries restored afterwards; bad input
# shellcheck source=cli/common.sh disable=SC2119
source "$(dirname "$0")/cli/common.sh"

cxx_target=${FT_TARGET_CXX:-$REWIRE_BUILD_DIR/tests/cli_ftrace/ft_target_cxx}
if [ "$backend" = generic ]; then
	skip "function tracing needs code patching (generic backend)"
fi

entry_of() {
	grep -E "^entry $1=" "$tlog" | tail -n 1 | cut -d= -f2
}

nphase=0
phase() {
	local sig=$1 what
	nphase=$((nphase + 1))
	what=$([ "$sig" = usr1 ] && echo work || echo sleep)
	kill -"${sig^^}" "$tpid"
	wait_log "$tlog" "^$what phase $nphase done"
}

# agg_bg OUT SUBCOMMAND ARGS...: in the background, attached.
agg_bg() {
	local out=$1
	shift
	rw_bg "$out" "$@"
	wait_log "$tmp/bg.err" "(counting the calls of|timing) [0-9]+ function.*\(Ctrl-C to end\)"
	err=$(cat "$tmp/bg.err")
}

agg_end() {
	kill -INT "$bg_pid"
	rw_bg_end
	expect_rc 0 "$1 ended by SIGINT"
}

# total FILE FUNC: FUNC's count in the "Total" report of funccount.
total() {
	awk -v f="$2" '/^Total/ { t = 1; next } t && $1 == f { print $2 }' "$1"
}

start_target
work0=$(entry_of ft_work)

step "funccount: totals equal the calls made"
agg_bg "$tmp/fc1" funccount "$tpid" 'ft_*' --interval 0.2
expect_err "counting the calls of [0-9]+ functions of process $tpid" "start"
phase usr1
phase usr1
sleep 0.5
agg_end funccount
[ "$(total "$tmp/fc1" 'ft_work()')" = 1200 ] ||
	fail "funccount: ft_work $(total "$tmp/fc1" 'ft_work()'), expected 1200"
[ "$(total "$tmp/fc1" 'ft_leaf()')" = 1200 ] || fail "funccount: ft_leaf"
[ "$(total "$tmp/fc1" 'ft_debug_hook()')" = 1200 ] ||
	fail "funccount: ft_debug_hook"
grep -Eq '^[0-9]{2}:[0-9]{2}:[0-9]{2}$' "$tmp/fc1" ||
	fail "funccount printed no interval report"
grep -Eq '^FUNC +COUNT$' "$tmp/fc1" || fail "funccount: no FUNC COUNT header"
# The interval reports add up to the total.
sum=$(awk '/^Total/ { exit } $1 == "ft_work()" { s += $2 } END { print s + 0 }' "$tmp/fc1")
[ "$sum" -eq 1200 ] || fail "funccount: intervals sum to $sum, not 1200"
phase usr1
[ "$(entry_of ft_work)" = "$work0" ] || fail "ft_work not restored"

step "funccount --duration"
rwrun funccount "$tpid" ft_work --duration 0.3 --interval 0.1
expect_rc 0 "funccount --duration"
expect_out "^Total \(0\.[3-9] s\):$" "funccount --duration: the totals"

step "funccount --json"
# Ended by SIGINT once the phase is done, not by --duration: a loaded
# machine could stretch the phase past any duration.
rw_bg "$tmp/fc2" --json funccount "$tpid" ft_work ft_leaf --interval 0.2
wait_log "$tmp/bg.err" "counting the calls of 2 functions.*\(Ctrl-C to end\)"
phase usr1
sleep 0.3
agg_end "funccount --json"
if [ "$have_python" -eq 1 ]; then
	python3 -c "import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines and lines[-1]['total'] is True, lines
assert all(not l['total'] for l in lines[:-1]), lines
tot = {f['function']: f['count'] for f in lines[-1]['functions']}
assert tot == {'ft_work()': 600, 'ft_leaf()': 600}, tot
# The intervals add up to the total (when there was one before the end).
s = sum(f['count'] for l in lines[:-1] for f in l['functions']
        if f['symbol'] == 'ft_work')
assert s == 600 or len(lines) == 1, s
" "$tmp/fc2" || fail "funccount --json"
fi

step "funclatency: a 1 ms sleep"
agg_bg "$tmp/fl1" funclatency "$tpid" ft_sleep_1ms
phase usr2
agg_end funclatency
# In the total: 20 calls, in [512K, 1M) or [1M, 2M) (nanoseconds). A sleep
# is never early, but it can be late on a loaded machine: none below 512K,
# none of a second or more, and some in [512K, 2M).
awk '/^Total/ { t = 1 } t' "$tmp/fl1" >"$tmp/fl1.total"
grep -Eq 'count: 20$' "$tmp/fl1.total" || fail "funclatency: not 20 calls"
n=$(awk '/^\[(512K, 1M|1M, 2M)\)/ { s += $3 } END { print s + 0 }' "$tmp/fl1.total")
[ "$n" -ge 1 ] || fail "funclatency: none of the 20 calls in [512K, 2M)"
if grep -Eq '^\[[0-9]+G, ' "$tmp/fl1.total"; then
	fail "funclatency: a 1 ms sleep took a second or more"
fi
grep -Eq '^\[(512K, 1M|1M, 2M)\) +[0-9]+ \|@+ *\|$' "$tmp/fl1.total" ||
	fail "funclatency: no bar drawn"
if grep -Eq '^\[[0-9]+K?, [0-9]+K?\)' "$tmp/fl1.total"; then
	fail "funclatency: a 1 ms sleep took less than 512 us"
fi

step "funclatency --per-function --json"
rw_bg "$tmp/fl2" --json funclatency "$tpid" 'ft_*' --per-function
wait_log "$tmp/bg.err" "timing [0-9]+ functions.*\(Ctrl-C to end\)"
phase usr1
phase usr2
agg_end "funclatency --per-function --json"
if [ "$have_python" -eq 1 ]; then
	python3 -c "import json, sys
last = [json.loads(l) for l in open(sys.argv[1])][-1]
assert last['total'] is True, last
f = {x['function']: x for x in last['functions']}
assert f['ft_work()']['count'] == 600, f
assert f['ft_leaf()']['count'] == 600, f
s = f['ft_sleep_1ms()']
assert s['count'] == 20, s
assert sum(b['count'] for b in s['hist']) == 20, s
assert all(b['from'] >= 512 * 1024 for b in s['hist']), s
" "$tmp/fl2" || fail "funclatency --per-function --json"
fi

step "bad input"
rwrun funccount "$tpid" 'no_such_fn*'
expect_rc 1 "funccount: nothing matches"
expect_err "no_such_fn" "funccount: the message names the glob"
rwrun funclatency "$tpid" ft_nopatch
expect_rc 1 "funclatency: no patchable entry"
rwrun funccount "$tpid" ft_work --per-function
expect_rc 2 "funccount --per-function"
rwrun funccount "$tpid"
expect_rc 2 "funccount without a glob"
rwrun funccount "$tpid" ft_work --interval 0
expect_rc 2 "funccount --interval 0"
phase usr1
[ "$(entry_of ft_work)" = "$work0" ] || fail "ft_work changed by the errors"

step "C++: demangled names"
target=$cxx_target
[ -x "$target" ] || skip "$target not built"
start_target
cpid=$tpid
agg_bg "$tmp/fc3" funccount "$cpid" 'ns::compute(int)'
expect_err "counting the calls of 1 function of process $cpid: ns::compute\(int\)" "one overload"
kill -USR1 "$cpid"
wait_log "$tlog" "^phase 1 done"
agg_end funccount
[ "$(awk '/^Total/ { t = 1; next } t && $1 == "ns::compute(int)" { print $2 }' "$tmp/fc3")" = 300 ] ||
	fail "ns::compute(int): not 300 calls"
agg_bg "$tmp/fc4" funccount "$cpid" 'ns::compute*' 'ns::Engine::step*'
kill -USR1 "$cpid"
wait_log "$tlog" "^phase 2 done"
agg_end funccount
awk '/^Total/ { t = 1; next } t' "$tmp/fc4" >"$tmp/fc4.total"
grep -Eq '^ns::compute\(int\) +300$' "$tmp/fc4.total" || fail "compute(int)"
grep -Eq '^ns::compute\(double\) +120$' "$tmp/fc4.total" || fail "compute(double)"
grep -Eq '^ns::Engine::step\(long\) +50$' "$tmp/fc4.total" || fail "Engine::step"
rwrun ls "$cpid" --functions 'ns::*'
expect_rc 0 "ls --functions 'ns::*'"
expect_out '^ns::compute\(int\) +traceable' "a demangled name in ls"
expect_out '^ns::Engine::step\(long\) +traceable' "a method in ls"
rwrun funccount "$cpid" 'compute'
expect_rc 1 "a C++ name without its namespace"
expect_err "ns::compute" "the message suggests the names that come close"

echo "PASS"
