#!/usr/bin/env bash
# A live patch from a diff for a real server that nobody wrote for rewire:
# Debian's memcached, built by its own build system (./configure && make
# under bear: compile_commands.json) with Debian's flags plus
# -fpatchable-function-entry=5 (tests/integration/memcached_build.sh,
# shared with test_memcached_ftrace). memcached/version.diff changes the
# VERSION reply, a static function that GCC inlines into the .part clone
# of process_command_ascii: the hard case. `rewire build-patch` makes the
# patch; memcached runs as Debian runs it (-u nobody, 4 worker threads)
# under `rewire run`, three clients store and read keys and check every
# reply, a fourth asks VERSION in a loop; `rewire patch` applies the
# patch and `rewire unpatch` takes it back under that load. Pass: no
# failed or wrong reply; VERSION gives the old reply before, only the new
# one once `rewire patch` returned, only the old again once `rewire
# unpatch` returned, and no connection goes back during a transition.
# Skips (77) when the source package cannot be fetched, in sanitizer
# builds, on the generic backend and when not root. On aarch64 in the VM
# it applies the patch that memcached_cross_build made on the host.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../integration/memcached_build.sh
source "$REWIRE_SOURCE_DIR/tests/integration/memcached_build.sh"

live_ok || skip "needs a code-patching backend (x86_64, aarch64) and a build without sanitizer"
[ "$(id -u)" -eq 0 ] || skip "needs root (memcached -u nobody)"
command -v python3 >/dev/null || skip "python3 is missing"

top=$REWIRE_BUILD_DIR/thirdparty/memcached
so=$tmp/mc_version.so
if [ -n "${REWIRE_AARCH64_VM:-}" ]; then
	# The emulated machine: memcached and mc_version.so were made on the
	# host before it booted (tests/integration/memcached_cross_build.sh,
	# which checked build-patch's report against version.expect), as
	# test_bp_kv applies the build's fix_value_diff.so there.
	[ -f "$top/mc_version.so" ] ||
		skip "no mc_version.so from memcached_cross_build (it needs bear and user-mode qemu on the host)"
	memcached_build "$top"
	step "rewire build-patch: memcached_cross_build's mc_version.so (aarch64 VM)"
	cp "$top/mc_version.so" "$so"
else
	memcached_build "$top" --compile-commands
	step "rewire build-patch -d memcached/version.diff"
	RW_TIMEOUT=300 rwrun build-patch --json -c "$mc_build" -s "$mc_src" \
		-d "$bp_src/memcached/version.diff" --object "$mc" -o "$so"
	python3 "$bp_src/check_report.py" "$bp_src/memcached/version.expect" \
		"$tmp/out" "$rc" "$so" ||
		fail "the report is not what memcached/version.expect says"
fi
ver=$("$mc" -V | awk '{ print $2 }')
echo "memcached $ver"
chmod 755 "$tmp"

step "memcached -u nobody -t 4 under rewire run, with clients"
memcached_start "$tmp/mc.log" bp_pids

# The phase: how many of the markers patching, patched, unpatching,
# unpatched exist (the script creates them in that order).
phase() {
	local n=0 m
	for m in patching patched unpatching unpatched; do
		[ -e "$tmp/$m" ] && n=$((n + 1))
	done
	echo "$n"
}

# Asks VERSION in a loop. Phase 0 and 4: the old reply; 2: the new one;
# 1 (3): once the new (old) reply came, never the other again.
vclient() {
	local line side b a got=-1 tphase=-1 want nold=0 nnew=0
	exec 3<>"/dev/tcp/127.0.0.1/$mc_port"
	while [ ! -e "$tmp/stop" ]; do
		b=$(phase)
		printf 'version\r\n' >&3
		read -r -t 5 line <&3 || { echo "no reply to version"; exit 1; }
		a=$(phase)
		case $line in
		"VERSION $ver"$'\r') side=0 nold=$((nold + 1)) ;;
		"VERSION $ver-rewire-fix"$'\r') side=1 nnew=$((nnew + 1)) ;;
		*) echo "bad version reply: $line"; exit 1 ;;
		esac
		[ "$a" = "$b" ] || continue
		case $b in
		0 | 4) [ "$side" = 0 ] || { echo "new reply in phase $b"; exit 1; } ;;
		2) [ "$side" = 1 ] || { echo "old reply after the patch"; exit 1; } ;;
		*)
			[ "$tphase" = "$b" ] || { tphase=$b; got=-1; }
			want=$((b == 1))
			if [ "$got" = "$want" ] && [ "$side" != "$want" ]; then
				echo "a thread went back in phase $b"
				exit 1
			fi
			[ "$side" != "$want" ] || got=$want
			;;
		esac
	done
	echo "VERSION: $nold old replies, $nnew new"
	[ "$nnew" -gt 0 ] || { echo "never the new reply"; exit 1; }
}

cpids=()
for c in 1 2 3; do
	memcached_client "$c" "$tmp/stop" >"$tmp/client.$c.log" 2>&1 &
	cpids+=("$!")
	bp_pids+=("$!")
done
vclient >"$tmp/vclient.log" 2>&1 &
cpids+=("$!")
bp_pids+=("$!")
sleep 1
reply() {
	exec 4<>"/dev/tcp/127.0.0.1/$mc_port"
	printf 'version\r\n' >&4
	read -r -t 5 line <&4
	exec 4>&-
	echo "${line%$'\r'}"
}
[ "$(reply)" = "VERSION $ver" ] || fail "VERSION before the patch: $(reply)"

step "rewire patch $mc_pid mc_version.so"
touch "$tmp/patching"
rwrun patch "$mc_pid" "$so" --timeout 60
expect_rc 0 "rewire patch"
echo "  $out"
touch "$tmp/patched"
sleep 1
[ "$(reply)" = "VERSION $ver-rewire-fix" ] ||
	fail "VERSION after the patch: $(reply)"
echo "  VERSION after the patch: $(reply)"

step "rewire unpatch $mc_pid mc_version"
touch "$tmp/unpatching"
rwrun unpatch "$mc_pid" mc_version --timeout 60
expect_rc 0 "rewire unpatch"
touch "$tmp/unpatched"
sleep 1
[ "$(reply)" = "VERSION $ver" ] || fail "VERSION after unpatch: $(reply)"

touch "$tmp/stop"
for c in "${cpids[@]}"; do
	wait "$c" || fail "a client failed: $(cat "$tmp"/client.*.log "$tmp/vclient.log")"
done
cat "$tmp"/client.*.log "$tmp/vclient.log" | sed 's/^/  /'
kill "$mc_pid"
wait "$mc_pid" 2>/dev/null || true
echo PASS
