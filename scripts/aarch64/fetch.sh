#!/usr/bin/env bash
# Fetch what the aarch64 VM boots, once, into the cache
# (REWIRE_AARCH64_CACHE, see lib.sh), in a directory img-<stamp> of its own
# per package set (so that copies of this script of other versions, run at
# the same time, never undo each other's work):
#   kernel/vmlinuz  Debian's arm64 kernel (linux-image-<abi>-arm64, the
#                   version bookworm's linux-image-arm64 depends on)
#   rootfs/         busybox-static and the arm64 run-time packages the
#                   tests need (glibc, libstdc++, liburcu, libunwind,
#                   libelf, libdw, json-c, bash, coreutils..., cmake for
#                   ctest) with their dependency closure, each unpacked
#                   with dpkg-deb (no maintainer scripts run)
#   base.cpio       rootfs/ as an initramfs archive (cpio newc)
# Needs apt with the arm64 architecture added (dpkg --add-architecture
# arm64; apt-get update), dpkg-deb and cpio. Exits 77 with a message when
# the packages cannot be had (no network, no arm64 in apt's lists).
# Idempotent: does nothing when the cache is up to date (apt's lists and
# this script unchanged).
#
#   scripts/aarch64/fetch.sh [--force] [--print]
#     --print  print the image directory (vm.sh boots what it holds)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

force=0 print=0
for a in "$@"; do
	case $a in
	--force) force=1 ;;
	--print) print=1 ;;
	*) echo "fetch.sh: unknown option $a" >&2; exit 2 ;;
	esac
done

for t in apt-get apt-cache dpkg-deb cpio; do
	command -v "$t" >/dev/null || rw_skip "$t not found (scripts/deps.sh installs it)"
done
dpkg --print-foreign-architectures 2>/dev/null | grep -qx arm64 ||
	rw_skip "dpkg has no arm64 architecture (scripts/deps.sh adds it)"

cache=$(rw_aarch64_cache)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# The packages the guest needs besides their dependencies. busybox
# provides init, mount, poweroff and what else the tests call that these
# do not. python3 (the tests check JSON with it), binutils and gcc with
# libc6-dev: tests that compile a program at run time (REWIRE_CC is
# /usr/bin/aarch64-linux-gnu-gcc, which is the native compiler's name on
# arm64 Debian too) or post-process one (RW_NM...) run in the guest as
# on the host; liburcu-dev: rewire's public headers include liburcu's;
# patch: `rewire build-patch` applies a diff with GNU patch (busybox's
# has neither --batch nor -d); libevent: memcached, which the host
# cross-builds for test_memcached_ftrace.
seeds=(busybox-static libc6 libgcc-s1 libstdc++6 liburcu8 libunwind8
	libelf1 libdw1 libjson-c5 bash coreutils grep sed gawk findutils
	diffutils procps util-linux dash cmake python3 binutils gcc libc6-dev
	liburcu-dev patch libevent-2.1-7)
# Dependencies the guest never uses (maintainer-script machinery, perl,
# the sanitizers' run-time libraries): left out of the closure to keep the
# initramfs small.
skip_re='^(perl|perl-base|perl-modules-.*|libperl.*|dpkg|install-info|init-system-helpers|usrmerge|usr-is-merged|debianutils|base-files|tar|readline-common|lib.*-perl|sensible-utils|debconf|libdebconfclient0|mawk|original-awk|libasan[0-9]*|libtsan[0-9]*|libhwasan[0-9]*|liblsan[0-9]*|libubsan[0-9]*|libgprofng[0-9]*|libitm[0-9]*|libgomp[0-9]*)$'

# The cache is rebuilt when apt's package lists (versions) or the
# package set change: checked without asking apt, which takes
# minutes for the closure.
# (layout: bump when the way the root file system is made changes).
layout=2
stamp=$( (echo "$layout ${seeds[*]} $skip_re"
	ls -l --time-style=+%s /var/lib/apt/lists/*_Packages* 2>/dev/null) |
	sha256sum | cut -c1-16)
# One fetch at a time (parallel runs of vm.sh share the cache); the others
# wait, then find it up to date.
exec 9>"$cache/lock"
flock -w 900 9 || rw_skip "the cache $cache stayed locked for 900 s"
img=$cache/img-$stamp
done_() {
	[ "$print" = 0 ] || echo "$img"
	exit 0
}
if [ "$force" = 0 ] && [ -f "$img/base.cpio" ] && [ -f "$img/kernel/vmlinuz" ]; then
	done_
fi

kpkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { sub(":arm64", "", $2); print $2; exit }')
[ -n "$kpkg" ] || rw_skip "no linux-image-arm64:arm64 in apt's lists (apt-get update after dpkg --add-architecture arm64)"

closure=$(apt-cache depends --recurse --no-recommends --no-suggests \
	--no-conflicts --no-breaks --no-replaces --no-enhances \
	"${seeds[@]/%/:arm64}" 2>/dev/null |
	grep -v '^ ' | grep -v '^<' | grep ':arm64$' | sed 's/:arm64$//' |
	grep -Ev "$skip_re" | sort -u) || true
[ -n "$closure" ] || rw_skip "apt-cache cannot resolve the arm64 packages"
# Architecture: all packages that arm64 ones need (named without :arm64).
closure="$closure
cmake-data"
want=$(printf '%s\n' "$kpkg" $closure | sort -u)

rw_log "fetching $(echo "$want" | wc -w) packages into $cache/debs"
mkdir -p "$cache/debs"
dl=()
for p in $want; do
	case $p in
	cmake-data) dl+=("$p") ;;
	*) dl+=("$p:arm64") ;;
	esac
done
# apt-get download fetches into the current directory; the files it has
# already are kept (same name = same version).
(cd "$cache/debs" && apt-get download -q "${dl[@]}" >"$cache/download.log" 2>&1) ||
	rw_skip "apt-get download failed (network or lists?): see $cache/download.log"

# Unpack: only the current version of each package (an older .deb may
# stay in debs/ from a previous fetch).
newest() {
	ls -1 "$cache/debs/$1"_*_"$2".deb 2>/dev/null | sort -V | tail -n1
}
new=$(mktemp -d "$cache/new.XXXXXX")
trap 'rm -rf "$new"' EXIT
mkdir -p "$new/kernel" "$new/rootfs"
kdeb=$(newest "$kpkg" arm64)
[ -n "$kdeb" ] || rw_skip "kernel package $kpkg not downloaded"
dpkg-deb -x "$kdeb" "$new/kernel/pkg"
vmlinuz=$(ls "$new"/kernel/pkg/boot/vmlinuz-* | head -n1)
cp "$vmlinuz" "$new/kernel/vmlinuz"
basename "$vmlinuz" >"$new/kernel/version"
rm -rf "$new/kernel/pkg"

r=$new/rootfs
# Debian bookworm is /usr-merged: /bin, /sbin and /lib are links into /usr
# (packages still ship files under /bin and /lib; tar follows the links).
mkdir -p "$r/usr/bin" "$r/usr/sbin" "$r/usr/lib" "$r/etc" "$r/root" \
	"$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/run" "$r/var/tmp"
ln -s usr/bin "$r/bin"
ln -s usr/sbin "$r/sbin"
ln -s usr/lib "$r/lib"
for p in $closure; do
	case $p in
	cmake-data) deb=$(newest "$p" all) ;;
	*) deb=$(newest "$p" arm64) ;;
	esac
	[ -n "$deb" ] || rw_skip "package $p not downloaded"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -x --keep-directory-symlink -C "$r" \
			--exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' \
			--exclude='./usr/share/locale/*' --exclude='./usr/share/info/*'
done
# /bin/sh is Debian's dash (its link is made by a maintainer script):
# busybox's sh would run its own applets before the real programs.
[ -e "$r/usr/bin/sh" ] || ln -s dash "$r/usr/bin/sh"
# Large files no test uses.
rm -rf "$r"/usr/bin/*lto-dump* "$r"/usr/bin/*ld.gold "$r"/usr/bin/cpack \
	"$r"/usr/lib/aarch64-linux-gnu/gconv "$r"/usr/share/cmake-*/Help
echo "$closure" >"$r/etc/rewire-packages"
# What the guest's programs read at start.
cat >"$r/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PW
cat >"$r/etc/group" <<'GR'
root:x:0:
nogroup:x:65534:
GR
echo 'hosts: files' >"$r/etc/nsswitch.conf"
echo '127.0.0.1 localhost' >"$r/etc/hosts"
echo rewire-aarch64 >"$r/etc/hostname"

(cd "$r" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc --owner=0:0 --quiet) >"$new/base.cpio"
echo "$want" >"$new/packages"

rm -rf "$img"
mv "$new" "$img"
# Images of other package sets, unused for two days.
find "$cache" -maxdepth 1 -name 'img-*' ! -name "img-$stamp" -mtime +2 \
	-exec rm -rf {} + 2>/dev/null || true
trap - EXIT
rw_log "$img: kernel $(cat "$img/kernel/version"), rootfs $(du -sh "$img/rootfs" | cut -f1), base.cpio $(du -sh "$img/base.cpio" | cut -f1)"
done_
