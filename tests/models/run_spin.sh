#!/usr/bin/env bash
# Check one Promela model with Spin: generate the verifier (spin -a), build
# it (gcc), run it, and compare the verdict with the expected one.
#
#   tests/models/run_spin.sh MODEL.pml [expect-pass|expect-fail] [ARG...]
#
# ARG:
#   -DNAME, -DNAME=V, -UNAME  passed to spin's preprocessor (variants:
#                             -DNAIVE selects a model's naive variant)
#   --pan=FLAG                extra run-time flag for pan (e.g. --pan=-f)
#   --cc=FLAG                 extra compile flag for pan.c (e.g. --cc=-O2,
#                             --cc=-DNP)
#
# A model may carry its own arguments in its header comment, one line per
# set, applied to every run of it (normal and naive):
#
#    * run_spin: --pan=-f
#
# Verdict. The model passes when pan reports no error (assertion, invalid
# end state, acceptance cycle against an ltl claim) and the search was
# complete (no "max search depth too small", no memory exhaustion). A model
# with ltl claims is checked once per claim (pan -a -N claim); a model
# without any is checked for safety only (-DSAFETY). expect-pass exits 0
# when the model passes; expect-fail exits 0 only when Spin finds an error
# (a naive variant that Spin must refute), and a truncated search that
# found nothing counts as a failure of the test there too.
#
# Output: the states explored and the time of each run; on an unexpected
# verdict, the error trail (spin -t -p, trimmed). Exit 0 as expected,
# 1 unexpected, 2 usage, 77 when spin or a C compiler is missing.
#
# Limits, sized for 2 cores and 24 GiB shared with other work:
# REWIRE_SPIN_DEPTH (pan -m, default 1000000 steps), REWIRE_SPIN_MEMLIM
# (MiB, default 4096), REWIRE_SPIN_HASH (pan -w, default 22).
set -uo pipefail

usage()
{
	echo "usage: $0 MODEL.pml [expect-pass|expect-fail] [-DX...] [--pan=F] [--cc=F]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
model=$1
shift
expect="expect-pass"
if [ $# -ge 1 ]; then
	case $1 in
	expect-pass | expect-fail)
		expect=$1
		shift
		;;
	esac
fi
[ -f "$model" ] || {
	echo "run_spin: $model: no such file" >&2
	exit 2
}

spin_bin=${SPIN:-spin}
cc_bin=${CC:-gcc}
if ! command -v "$spin_bin" >/dev/null 2>&1; then
	echo "run_spin: spin not found (Debian package 'spin'); skipping" >&2
	exit 77
fi
if ! command -v "$cc_bin" >/dev/null 2>&1; then
	echo "run_spin: C compiler '$cc_bin' not found; skipping" >&2
	exit 77
fi

depth=${REWIRE_SPIN_DEPTH:-1000000}
memlim=${REWIRE_SPIN_MEMLIM:-4096}
hash=${REWIRE_SPIN_HASH:-22}

# The model's own arguments first, then the command line's.
args=()
while IFS= read -r line; do
	# shellcheck disable=SC2206 # word splitting wanted
	args+=($line)
done < <(sed -n 's/^[[:space:]]*\*[[:space:]]*run_spin:[[:space:]]*//p' "$model")
args+=("$@")

spin_defs=()
pan_flags=()
cc_flags=()
for a in "${args[@]}"; do
	case $a in
	-D* | -U*) spin_defs+=("$a") ;;
	--pan=*) pan_flags+=("${a#--pan=}") ;;
	--cc=*) cc_flags+=("${a#--cc=}") ;;
	*)
		echo "run_spin: unknown argument '$a'" >&2
		usage
		;;
	esac
done

model_abs=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
name=$(basename "$model" .pml)
work=$(mktemp -d "${TMPDIR:-/tmp}/rw_spin_${name}.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
# spin -t wants the model next to the trail, under the name it was
# generated from.
cp "$model_abs" "$name.pml"

label="$name${spin_defs[*]:+ ${spin_defs[*]}}"
t_start=$(date +%s.%N)
elapsed()
{
	awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'
}
echo "run_spin: $label ($expect)"

if ! "$spin_bin" "${spin_defs[@]}" -a "$name.pml" >spin.out 2>&1; then
	cat spin.out
	echo "run_spin: $label: spin -a failed (syntax error?)" >&2
	exit 1
fi

claims=()
while IFS= read -r c; do
	claims+=("$c")
done < <(sed -n 's/^[[:space:]]*ltl[[:space:]]\+\([A-Za-z_][A-Za-z_0-9]*\).*/\1/p' "$name.pml")

# -O0 by default: for models of up to a million states compiling pan.c
# at -O2 takes longer (5x on a loaded 2-core machine) than it saves; a
# big model asks for "run_spin: --cc=-O2" in its header.
base_cc=(-O0 -w "-DMEMLIM=$memlim" -DCOLLAPSE)
[ ${#claims[@]} -eq 0 ] && base_cc+=(-DSAFETY)
if ! "$cc_bin" "${base_cc[@]}" "${cc_flags[@]}" -o pan pan.c >cc.out 2>&1; then
	cat cc.out
	echo "run_spin: $label: compiling pan.c failed" >&2
	exit 1
fi

# One pan run; sets found (1 when pan reported an error) and trunc (1 when
# the search was incomplete).
found=0
trunc=0
run_pan()
{
	local what=$1
	shift
	local t0 t1 out errs states
	t0=$(date +%s.%N)
	./pan "-m$depth" "-w$hash" "${pan_flags[@]}" "$@" >pan.out 2>&1
	t1=$(date +%s.%N)
	out=$(cat pan.out)
	errs=$(sed -n 's/.*errors: \([0-9]\+\).*/\1/p' pan.out | tail -1)
	states=$(sed -n 's/^[[:space:]]*\([0-9.e+]\+\) states, stored.*/\1/p' pan.out | tail -1)
	printf 'run_spin: %s%s: %s states, errors %s, %.2f s\n' "$label" \
		"$what" "${states:-?}" "${errs:-?}" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
	if [ -z "$errs" ]; then
		echo "$out"
		echo "run_spin: $label$what: pan gave no verdict" >&2
		trunc=1
		return
	fi
	if [ "$errs" -gt 0 ]; then
		found=1
		grep -m1 -E 'pan:[0-9]+:|assertion violated|invalid end state|acceptance cycle|non-progress' pan.out |
			sed 's/^/run_spin:   /'
	fi
	if grep -q -E 'max search depth too small|out of memory|reached -DMEMLIM' pan.out; then
		trunc=1
		grep -E 'max search depth too small|out of memory|reached -DMEMLIM' pan.out |
			sed 's/^/run_spin:   /'
	fi
}

print_trail()
{
	local trail n
	trail=$(find . -maxdepth 1 -name "*.trail" | head -1)
	if [ -z "$trail" ]; then
		echo "run_spin: no trail"
		return
	fi
	echo "run_spin: trail (spin -t -p; its first 40 and last 360 lines):"
	"$spin_bin" "${spin_defs[@]}" -t -p -k "$trail" "$name.pml" \
		>trail.txt 2>&1
	n=$(wc -l <trail.txt)
	if [ "$n" -le 400 ]; then
		cat trail.txt
	else
		head -n 40 trail.txt
		echo "... ($((n - 400)) lines left out) ..."
		tail -n 360 trail.txt
	fi
}

if [ ${#claims[@]} -eq 0 ]; then
	run_pan ""
	[ $found -eq 1 ] && [ "$expect" = expect-pass ] && print_trail
else
	for c in "${claims[@]}"; do
		rm -f ./*.trail
		run_pan " [ltl $c]" -a -N "$c"
		if [ $found -eq 1 ]; then
			[ "$expect" = expect-pass ] && print_trail
			break
		fi
	done
fi

if [ "$expect" = expect-pass ]; then
	if [ $found -eq 0 ] && [ $trunc -eq 0 ]; then
		echo "run_spin: $label: passes, as expected ($(elapsed) in all)"
		exit 0
	fi
	if [ $found -eq 0 ]; then
		echo "run_spin: $label: UNEXPECTED: search incomplete (raise REWIRE_SPIN_DEPTH / REWIRE_SPIN_MEMLIM / REWIRE_SPIN_HASH)" >&2
	else
		echo "run_spin: $label: UNEXPECTED error found by spin" >&2
	fi
	exit 1
fi
if [ $found -eq 1 ]; then
	echo "run_spin: $label: refuted by spin, as expected ($(elapsed) in all)"
	exit 0
fi
[ $trunc -eq 1 ] && echo "run_spin: $label: search incomplete, no error found"
echo "run_spin: $label: UNEXPECTED: spin found no error in a variant it must refute" >&2
exit 1
