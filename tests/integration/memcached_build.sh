# shellcheck shell=bash
# Sourced by the tests that run Debian's memcached (test_memcached_ftrace.sh,
# tests/buildpatch/test_bp_memcached.sh): fetches its source package and
# builds it with its own unmodified build system (./configure && make),
# Debian's flags plus -fpatchable-function-entry=5, under `bear` when it is
# installed (so that compile_commands.json records the build). The source
# and the build are kept in TOP, so only the first run compiles; a lock
# keeps two tests from building at once.
#
#   memcached_build TOP [--compile-commands]
#
# Sets mc_src (the source tree), mc_build (the build directory) and mc
# (the binary). --compile-commands: mc_build/compile_commands.json must
# exist (an earlier build without bear is redone under bear). Calls the
# caller's skip (no network, no source package, no libevent, no bear)
# and fail (the build failed).
#
# Cross: where REWIRE_CC compiles for another machine than this one (the
# aarch64 build: aarch64-linux-gnu-gcc on x86-64), memcached is
# configured with --host for that machine, with REWIRE_CC, that
# architecture's libevent (Debian's libevent-dev:arm64 and its libraries,
# fetched with apt-get download and unpacked in TOP: not installed, as it
# would replace the host's libevent-dev) and dpkg-buildflags' flags for it, plus
# -mbranch-protection=standard on aarch64 (BTI and PAC: Debian's default
# from trixie on) and that architecture's patchable entry
# (-fpatchable-function-entry=2). The aarch64 step builds it on the host
# (memcached_cross_build, a host_compile test); in the VM, a binary that
# is there already is used as it is, without the tools that built it.
#
# Then memcached_start runs it under `rewire run` and memcached_client
# checks its replies (below).
memcached_build() {
	local top=$1 want_cc=${2:-} cflags cppflags ldflags
	local apt host="" build_m cross=() entry=5 cf="" arch le d

	mc_src=$top/src/tree
	mc_build=$top/build
	mc=$mc_build/memcached
	# Built already (in the aarch64 VM: on the host, before it booted).
	if [ -x "$mc" ] && [ -z "$want_cc" ]; then
		return 0
	fi
	command -v dpkg-source >/dev/null || skip "dpkg-source (dpkg-dev) is missing"
	if [ -n "${REWIRE_CC:-}" ] && command -v gcc >/dev/null; then
		host=$("$REWIRE_CC" -dumpmachine 2>/dev/null) || host=""
		build_m=$(gcc -dumpmachine)
		[ "$host" != "$build_m" ] || host=""
	fi
	if [ -n "$host" ]; then
		arch=$(dpkg-architecture -t "$host" -qDEB_HOST_ARCH 2>/dev/null) ||
			skip "dpkg-architecture does not know $host"
		dpkg --print-foreign-architectures | grep -qx "$arch" ||
			skip "dpkg has no $arch architecture (scripts/deps.sh --aarch64)"
		cross=(--host="$host" --build="$build_m" CC="$REWIRE_CC")
	else
		pkg-config --exists libevent || skip "libevent-dev is missing"
	fi
	# aarch64: two NOPs, and BTI/PAC (-mbranch-protection=standard).
	case ${host:-$(uname -m)} in
	aarch64*) entry=2 cf=" -mbranch-protection=standard" ;;
	esac
	if [ -n "$want_cc" ] && ! command -v bear >/dev/null; then
		skip "bear is missing (scripts/deps.sh)"
	fi
	mkdir -p "$(dirname "$top")"
	exec 9>"$top.lock"
	flock -w 900 9 || fail "$top.lock: another test builds memcached for too long"

	if [ -x "$mc" ] && [ -n "$want_cc" ] &&
		[ ! -s "$mc_build/compile_commands.json" ]; then
		echo "== rebuilding memcached under bear (compile_commands.json)"
		(cd "$mc_build" && make clean >>"$top/build.log" 2>&1 &&
			bear -- make -j2 memcached >>"$top/build.log" 2>&1) ||
			fail "memcached did not build under bear ($top/build.log)"
	fi
	if [ ! -x "$mc" ]; then
		rm -rf "$top"
		mkdir -p "$top/lists/partial" "$top/src"
		printf 'deb-src http://deb.debian.org/debian bookworm main\n' \
			>"$top/sources.list"
		apt=(apt-get -q -o Dir::Etc::SourceList="$top/sources.list"
		     -o Dir::Etc::SourceParts=/dev/null
		     -o Dir::State::Lists="$top/lists"
		     -o APT::Sandbox::User=root)
		echo "== fetching Debian's memcached source package"
		timeout 180 "${apt[@]}" update >"$top/fetch.log" 2>&1 ||
			skip "Debian's source index is not reachable ($top/fetch.log)"
		(cd "$top/src" && timeout 180 "${apt[@]}" source --download-only \
			memcached >>"$top/fetch.log" 2>&1) ||
			skip "memcached's source package cannot be downloaded"
		(cd "$top/src" && dpkg-source -x ./*.dsc tree >>"$top/fetch.log" 2>&1) ||
			fail "dpkg-source -x failed ($top/fetch.log)"
		if [ -n "$host" ]; then
			# The target's libevent, unpacked aside: Debian's
			# libevent-dev is not co-installable with the
			# host's (installing libevent-dev:arm64 removes
			# libevent-dev).
			le=$top/libevent-$arch
			mkdir -p "$le/debs" "$le/root"
			(cd "$le/debs" && timeout 180 apt-get download -q \
				"libevent-dev:$arch" "libevent-2.1-7:$arch" \
				"libevent-core-2.1-7:$arch") >>"$top/fetch.log" 2>&1 ||
				skip "libevent for $arch cannot be downloaded ($top/fetch.log)"
			for d in "$le"/debs/*.deb; do
				dpkg-deb -x "$d" "$le/root" ||
					fail "dpkg-deb -x $d failed"
			done
			ln -s root/usr/include "$le/include"
			ln -s "root/usr/lib/$host" "$le/lib"
			cross+=(--with-libevent="$le")
		fi
		echo "== building it with its own build system${host:+ (for $host)}"
		local flags=(dpkg-buildflags)
		if [ -n "$host" ]; then
			flags=(env CC="$REWIRE_CC" dpkg-architecture -t "$host" \
				-c dpkg-buildflags)
		fi
		cflags="$("${flags[@]}" --get CFLAGS) -fpatchable-function-entry=$entry$cf"
		cppflags=$("${flags[@]}" --get CPPFLAGS)
		ldflags=$("${flags[@]}" --get LDFLAGS)
		local wrap=()
		if command -v bear >/dev/null; then
			wrap=(bear --)
		fi
		mkdir -p "$mc_build"
		(cd "$mc_build" &&
			CFLAGS="$cflags" CPPFLAGS="$cppflags" LDFLAGS="$ldflags" \
				"$mc_src/configure" --disable-docs "${cross[@]}" \
				>"$top/build.log" 2>&1 &&
			"${wrap[@]}" make -j2 memcached >>"$top/build.log" 2>&1) ||
			fail "memcached did not build ($top/build.log)"
	fi
	exec 9>&-
}

# memcached_start LOG PIDS
#
# Starts $mc as Debian runs it (-u nobody, 4 worker threads) under `rewire
# run` ($rw, the caller's REWIRE_CTL_DIR) on a random port of 127.0.0.1,
# its output in LOG, and returns once it listens. Sets mc_pid and mc_port,
# and adds mc_pid to the caller's array named PIDS (before waiting: the
# caller's exit trap kills it if it never listens).
memcached_start() {
	local log=$1 i
	local -n mc_pids_=$2
	mc_port=$((21000 + RANDOM % 20000))
	# shellcheck disable=SC2154 # rw: the caller's.
	"$rw" run -- "$mc" -u nobody -t 4 -p "$mc_port" -U 0 -l 127.0.0.1 -m 64 \
		>"$log" 2>&1 &
	mc_pid=$!
	mc_pids_+=("$mc_pid")
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$mc_port") 2>/dev/null && break
		sleep 0.1
	done
	(exec 3<>"/dev/tcp/127.0.0.1/$mc_port") 2>/dev/null ||
		fail "memcached did not listen: $(cat "$log")"
}

# memcached_client ID STOP
#
# A client of the memcached on mc_port, for the background: sets and gets
# its own keys (kID-0 to kID-49) and checks every reply until the file STOP
# exists, then prints how many requests it made. Exits 1 at the first
# wrong reply, or none within 5 s.
memcached_client() {
	local id=$1 stop=$2 n=0 line val
	exec 3<>"/dev/tcp/127.0.0.1/$mc_port"
	while [ ! -e "$stop" ]; do
		val="v$id-$n"
		printf 'set k%s-%s 0 0 %s\r\n%s\r\n' "$id" "$((n % 50))" \
			"${#val}" "$val" >&3
		read -r -t 5 line <&3 || { echo "no reply to set"; exit 1; }
		[ "$line" = $'STORED\r' ] || { echo "bad set: $line"; exit 1; }
		printf 'get k%s-%s\r\n' "$id" "$((n % 50))" >&3
		read -r -t 5 line <&3 || { echo "no reply to get"; exit 1; }
		[ "$line" = "VALUE k$id-$((n % 50)) 0 ${#val}"$'\r' ] ||
			{ echo "bad get: $line"; exit 1; }
		read -r -t 5 line <&3
		[ "$line" = "$val"$'\r' ] || { echo "bad value: $line"; exit 1; }
		read -r -t 5 line <&3
		[ "$line" = $'END\r' ] || { echo "bad end: $line"; exit 1; }
		n=$((n + 1))
	done
	echo "$n requests, every reply right"
}
