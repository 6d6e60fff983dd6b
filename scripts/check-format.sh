#!/usr/bin/env bash
# Check that every C/C++ source follows .clang-format (kernel style).
# Prints the files that need formatting; exit 0 clean, 1 dirty, 77 when
# clang-format is not installed (CTest reports the test as skipped).
#
#   scripts/check-format.sh        check
#   scripts/check-format.sh --fix  reformat in place
set -euo pipefail
cd "$(dirname "$0")/.."

# Directories that hold project sources (third-party code would go
# elsewhere: clang-format 14 has no ignore file).
dirs=(src include tests bench examples tools)

cf=""
for c in clang-format clang-format-14; do
	if command -v "$c" >/dev/null 2>&1; then
		cf=$c
		break
	fi
done
if [ -z "$cf" ]; then
	echo "check-format: clang-format not found; skipping" >&2
	exit 77
fi

existing=()
for d in "${dirs[@]}"; do
	[ -d "$d" ] && existing+=("$d")
done
files=()
if [ ${#existing[@]} -gt 0 ]; then
	while IFS= read -r -d '' f; do
		files+=("$f")
	done < <(find "${existing[@]}" -type f \
		\( -name '*.c' -o -name '*.h' -o -name '*.cc' \) -print0 | sort -z)
fi
if [ ${#files[@]} -eq 0 ]; then
	echo "check-format: no source files"
	exit 0
fi

if [ "${1:-}" = "--fix" ]; then
	"$cf" -i "${files[@]}"
	exit 0
fi

bad=()
for f in "${files[@]}"; do
	if ! "$cf" --dry-run --Werror "$f" >/dev/null 2>&1; then
		bad+=("$f")
	fi
done
if [ ${#bad[@]} -gt 0 ]; then
	echo "check-format: these files do not follow .clang-format:"
	printf '  %s\n' "${bad[@]}"
	echo "fix with: scripts/check-format.sh --fix (or $cf -i FILE)"
	echo "first differences:"
	"$cf" --dry-run "${bad[@]}" 2>&1 | head -40
	exit 1
fi
echo "check-format: ${#files[@]} files ok"
