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
memcached_build() {
	local top=$1 want_cc=${2:-} cflags
	local apt

	mc_src=$top/src/tree
	mc_build=$top/build
	mc=$mc_build/memcached
	command -v dpkg-source >/dev/null || skip "dpkg-source (dpkg-dev) is missing"
	pkg-config --exists libevent || skip "libevent-dev is missing"
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
		echo "== building it with its own build system"
		cflags="$(dpkg-buildflags --get CFLAGS) -fpatchable-function-entry=5"
		local wrap=()
		if command -v bear >/dev/null; then
			wrap=(bear --)
		fi
		mkdir -p "$mc_build"
		(cd "$mc_build" &&
			CFLAGS="$cflags" CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" \
				LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
				"$mc_src/configure" --disable-docs \
				>"$top/build.log" 2>&1 &&
			"${wrap[@]}" make -j2 memcached >>"$top/build.log" 2>&1) ||
			fail "memcached did not build ($top/build.log)"
	fi
	exec 9>&-
}
