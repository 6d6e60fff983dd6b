# shellcheck shell=bash disable=SC2034
# Sourced by tests/integration/test_fleet_*.sh and bench/fleet_apply.sh:
# starting a fleet of fleet_target processes (tests/fleet/fleet_target.c)
# under a private control directory, and the oracle that reads, from each
# process's own output, when its behaviour changed.
#
#   fleet_start N EXE [ARGS]  start N processes of EXE with REWIRE_CTL=1;
#                             appends their pids to fleet_pids (output in
#                             $tmp/fleet.PID.out) and waits until each has
#                             its control socket and printed "ready"
#   fleet_stop                kill them all
#   now_ns                    CLOCK_REALTIME in ns (the programs' clock)
#   fleet_wait_hb T [PID...]  wait up to 30 s (times REWIRE_TEST_TIME_SCALE,
#                             as every wait here) until both threads of each
#                             process (default: all of fleet_pids) printed
#                             a heartbeat that started after T
#   fleet_check "B0 B1 ..." [PID...]
#                             the oracle: the answers were old before B0,
#                             old or new in [B0, B1] (while `rewire apply`
#                             ran), new in (B1, B2), either in [B2, B3],
#                             old after B3, and so on; fails naming the
#                             first line that breaks it
#   fleet_state WANT [PID...] the last heartbeat of each one's main thread
#                             answered WANT (old or new)
#
# The sourcing file sets tmp (a scratch directory) and fail.
fleet_pids=()

fleet_start() {
	local n=$1 exe=$2 i p
	shift 2
	local started=()
	for ((i = 0; i < n; i++)); do
		# The program's output goes to a file named after its pid:
		# the shell's, which exec gives to the program.
		REWIRE_CTL=1 FLEET_DIR=$tmp bash -c \
			'exec "$@" >"$FLEET_DIR/fleet.$$.out" 2>&1' fleet \
			"$exe" "$@" &
		p=$!
		started+=("$p")
		fleet_pids+=("$p")
	done
	for p in "${started[@]}"; do
		fleet_wait_ready "$p"
	done
}

fleet_wait_ready() {
	local p=$1 i secs=$((30 * ${REWIRE_TEST_TIME_SCALE:-1}))
	for ((i = 0; i < secs * 20; i++)); do
		if [ -S "$REWIRE_CTL_DIR/$p.sock" ] &&
			grep -q '^ready' "$tmp/fleet.$p.out" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$p" 2>/dev/null; then
			tail -5 "$tmp/fleet.$p.out" 2>/dev/null
			fail "fleet process $p exited before it was ready"
		fi
		sleep 0.05
	done
	fail "fleet process $p not ready after $secs s"
}

fleet_stop() {
	local p
	{
		for p in "${fleet_pids[@]}"; do
			kill -9 "$p" || true
			wait "$p" || true
		done
	} 2>/dev/null
	fleet_pids=()
}

now_ns() {
	date +%s%N
}

# The files of the pids given (default: every process of the fleet).
fleet_files() {
	local p
	for p in "$@"; do
		echo "$tmp/fleet.$p.out"
	done
}

fleet_wait_hb() {
	local t=$1 secs=$((30 * ${REWIRE_TEST_TIME_SCALE:-1})) i p
	shift
	[ $# -gt 0 ] || set -- "${fleet_pids[@]}"
	for ((i = 0; i < secs * 20; i++)); do
		# One pass over every file: each must have a heartbeat of
		# both threads that started after t.
		if awk -v t="$t" '
			FNR == 1 { nf++ }
			/^hb / {
				split($2, a, "="); split($4, b, "=")
				if (b[2] + 0 > t + 0) seen[FILENAME, a[2]] = 1
			}
			END {
				n = 0
				for (k in seen) n++
				exit !(n == 2 * nf)
			}
		' $(fleet_files "$@"); then
			return 0
		fi
		for p in "$@"; do
			kill -0 "$p" 2>/dev/null ||
				fail "fleet process $p exited (waiting for heartbeats)"
		done
		sleep 0.05
	done
	fail "no heartbeat of both threads of every process after $t within $secs s"
}

# fleet_check "B0 B1 ..." [PID...]
fleet_check() {
	local bounds=$1 bad
	shift
	[ $# -gt 0 ] || set -- "${fleet_pids[@]}"
	bad=$(awk -v bounds="$bounds" '
		BEGIN { n = split(bounds, b, " ") }
		$1 == "change" || $1 == "hb" {
			v = ""; before = 0; after = 0
			for (i = 2; i <= NF; i++) {
				split($i, kv, "=")
				if (kv[1] == "v") v = kv[2]
				else if (kv[1] == "before") before = kv[2] + 0
				else if (kv[1] == "after") after = kv[2] + 0
			}
			if (v != "old" && v != "new") {
				print FILENAME ":" FNR ": " $0
				exit
			}
			# The pure intervals (-inf, b1), (b2, b3), (b4, b5) ...
			# hold old, new, old ...; a call that lies entirely in
			# one must have got its answer; [b1, b2], [b3, b4] ...
			# (while rewire apply ran) allow either.
			for (k = 0; k <= n; k += 2) {
				lo = k == 0 ? -1 : b[k] + 0
				hi = k == n ? -1 : b[k + 1] + 0
				want = (k / 2) % 2 == 0 ? "old" : "new"
				if (before > lo && (hi < 0 || after < hi) &&
				    v != want) {
					print FILENAME ":" FNR ": " $0 \
					      " (expected " want ")"
					exit
				}
			}
		}
	' $(fleet_files "$@"))
	[ -z "$bad" ] ||
		fail "a process's behaviour changed outside rewire apply: $bad (phase bounds: $bounds)"
}

# fleet_state WANT [PID...]: the last heartbeat of each process's main
# thread answers WANT.
fleet_state() {
	local want=$1 bad
	shift
	[ $# -gt 0 ] || set -- "${fleet_pids[@]}"
	bad=$(awk -v want="$want" '
		$1 == "hb" && $2 == "thr=main" { split($3, a, "="); v[FILENAME] = a[2] }
		END { for (f in v) if (v[f] != want) { print f ": " v[f]; exit } }
	' $(fleet_files "$@"))
	[ -z "$bad" ] || fail "a process does not answer $want: $bad"
}

# fleet_isolate SCRIPT ARGS...: runs the calling script again in a new pid
# namespace with its own /proc (as root, with util-linux's unshare), so
# that `rewire apply --all` selects only the processes it starts, not those
# of tests running beside it. Sets fleet_isolated to 1 there, to 0 when it
# cannot (the caller then selects its processes with --exe instead).
fleet_isolate() {
	if [ -n "${FLEET_ISOLATED:-}" ]; then
		fleet_isolated=$FLEET_ISOLATED
		return 0
	fi
	if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 &&
		unshare --pid --fork --mount-proc true 2>/dev/null; then
		FLEET_ISOLATED=1 exec unshare --pid --fork --mount-proc \
			--kill-child bash "$@"
	fi
	fleet_isolated=0
}
