#!/usr/bin/env bash
# Mutation tests of the safety-critical code: each mutant is one plausible
# bug (a step of the int3 protocol dropped, a wrong emulation, memory freed
# before a grace period, ...). For each, the relevant tests of the ci
# preset are built and run against the mutated code; a mutant is killed
# when one of them fails. Prints "killed N of M" and exits 1 if any mutant
# survived (2 if a mutant no longer applies: the code it names changed).
#
#   ./scripts/mutate.sh            every mutant
#   ./scripts/mutate.sh NAME...    only these
#   ./scripts/mutate.sh --list     list the mutants
#
# REWIRE_MUTATE_JOBS=N builds with N jobs (2); REWIRE_MUTATE_TIMEOUT=S
# stops the tests of a mutant after S seconds (60; that kills the mutant);
# REWIRE_MUTATE_KEEP=1 keeps the copy and its logs.
#
# The working tree is never modified: its files (tracked and untracked,
# not ignored) are copied to a temporary directory, configured once with
# the ci preset, and each mutant edits the copy and restores the file
# afterwards. Interrupting the script removes the copy. Each mutant names
# the exact text it replaces, which must occur exactly once in its file,
# so that unrelated edits elsewhere in the file do not break it.
#
# Not run by CI (about 2 minutes with a warm ccache); see doc/TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- The mutants ---------------------------------------------------------
# mutant NAME FILE TESTS OLD NEW: replace OLD (exactly one occurrence) by
# NEW in FILE; TESTS is a space-separated list of test targets to run.
names=() files=() tests=() olds=() news=()
mutant() {
	names+=("$1") files+=("$2") tests+=("$3") olds+=("$4") news+=("$5")
}

proto="test_poke_protocol test_text_poke"
mutant sync-after-int3 src/text_poke.c "$proto" \
	$'	}\n	sync_cores();\n\n	/* Between 2 and 3' \
	$'	}\n\n	/* Between 2 and 3'
mutant sync-after-tails src/text_poke.c "$proto" \
	$'	if (wrote)\n		sync_cores();\n\n	/* Step 4' \
	$'	(void)wrote;\n\n	/* Step 4'
mutant sync-after-heads src/text_poke.c "$proto" \
	$'	sync_cores();\n	rw__stat_add(batches, 1);' \
	$'	rw__stat_add(batches, 1);'
mutant heads-before-tails src/text_poke.c "$proto" \
	'err = write_step(pokes, n, STEP_TAIL, &wrote);' \
	'err = write_step(pokes, n, STEP_HEAD, &wrote);'
mutant rollback-no-sync src/text_poke.c "$proto" \
	$'	(void)write_step(pokes, n, STEP_UNHEAD, &wrote);\n	sync_cores();' \
	$'	(void)write_step(pokes, n, STEP_UNHEAD, &wrote);'
mutant no-overlap-check src/text_poke.c "$proto" \
	'pokes[i].addr + pokes[i].len > pokes[i + 1].addr' \
	'pokes[i].addr + pokes[i].len > pokes[i + 1].addr + 64'
mutant no-old-bytes-check src/text_poke.c "$proto" \
	'if (memcmp(at, pokes[i].old, pokes[i].len)) {' \
	'if (0 && memcmp(at, pokes[i].old, pokes[i].len)) {'
mutant exec-only-readable src/text.c "$proto" \
	"if (perms[0] != 'r' || perms[2] != 'x')" \
	"if (perms[2] != 'x')"
mutant call-pushes-site src/arch/x86_64/arch.c "$proto" \
	'*sp = site + insn->len;' \
	'*sp = site;'
mutant nop-no-advance src/arch/x86_64/arch.c "$proto" \
	$'	case RW_TEXT_NOP:\n		g[REG_RIP] = (greg_t)(site + insn->len);' \
	$'	case RW_TEXT_NOP:\n		g[REG_RIP] = (greg_t)(site + 1);'
mutant jmp-as-nop src/arch/x86_64/arch.c "$proto" \
	$'	case RW_TEXT_JMP:\n		g[REG_RIP] = (greg_t)insn->target;' \
	$'	case RW_TEXT_JMP:\n		g[REG_RIP] = (greg_t)(site + insn->len);'
mutant ret-no-pop src/arch/x86_64/arch.c "$proto" \
	'g[REG_RSP] = (greg_t)(sp + 1);' \
	'g[REG_RSP] = (greg_t)sp;'
mutant trap-not-ours src/text_poke.c "$proto" \
	$'			rw__arch_emulate(uc, addr, &p->insn);' \
	$'			rw__arch_set_ip(uc, addr + 1);'

grace="test_tp_grace test_tracepoint"
mutant array-freed-at-once src/tracepoint.c "$grace" \
	'rw_rcu_call(&f->rcu, funcs_free);' \
	'funcs_free(&f->rcu);'
mutant stub-freed-at-once src/tracepoint.c "$grace" \
	'rw_rcu_call(&st->rcu, stub_free);' \
	'stub_free(&st->rcu);'
mutant stub-slot-freed-at-once src/tracepoint.c "$grace" \
	$'	if (st)\n		rw_rcu_call(&st->rcu, stub_free);' \
	$'	if (st) {\n		rw__arch_bound_stub_free(st->code);\n		st->code = NULL;\n		rw_rcu_call(&st->rcu, stub_free);\n	}'
mutant rcu-call-at-once src/rcu.c "test_tp_grace test_rcu" \
	'	urcu_bp_call_rcu(&head->urcu, call_trampoline);' \
	'	call_trampoline(&head->urcu);'

mutant key-last-dec-keeps-sites src/static_key.c "test_static_key" \
	'if (__atomic_fetch_sub(&key->enabled, 1, __ATOMIC_ACQ_REL) != 1)' \
	'if (__atomic_fetch_sub(&key->enabled, 1, __ATOMIC_ACQ_REL) != 0)'

mutant stop-no-gather src/threads.c "test_stop_threads test_threads" \
	'		if (ret || !fresh)' \
	'		if (1)'
mutant each-thread-no-wait src/threads.c "test_threads" \
	$'	if (!ret)\n		ret = wait_answers(&c, &cs.answered, &cs.want, deadline);' \
	$'	(void)deadline;'

mutant lp-new-thread-old-state src/livepatch/core.c \
	"test_lp_fork_dlclose torture_lp_churn" \
	$'	e = atomic_load(&active_epoch);\n	atomic_store(&thread_gen, e);' \
	$'	e = atomic_load(&active_epoch);\n	(void)e;'

ft_graph="test_ftrace_graph_unwind torture_ftrace"
mutant ftrace-cont-ignores-patch src/entry.c \
	"test_ftc_patch test_ftc_transition" \
	$'					      ch[i].patch ? ch[i].patch\n							  : ch[i].e->sled + 5,' \
	$'					      ch[i].e->sled + 5,'
mutant ftrace-stack-check-blind src/entry.c \
	"test_ftrace_unwind test_ftc_transition" \
	'return fn ? fn(tid, slot) : 0;' \
	'return 0 && fn ? fn(tid, slot) : 0;'
mutant ftrace-sibling-dropped src/ftrace.c "$ft_graph" \
	'if (t->slot == slot ? *(const uintptr_t *)slot == tramp' \
	'if (t->slot == slot ? 0'
mutant ftrace-return-without-entry src/ftrace.c "$ft_graph" \
	'if (t->probe.ret && t->attach_gen <= e.gen)' \
	'if (t->probe.ret)'

case "${1:-}" in
--list)
	for i in "${!names[@]}"; do
		printf '%-28s %-26s %s\n' "${names[i]}" "${files[i]}" "${tests[i]}"
	done
	exit 0
	;;
-h | --help)
	sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
want=("$@")
# A name that is not a mutant is a mistake, not an empty run.
for w in "${want[@]}"; do
	if [[ " ${names[*]} " != *" $w "* ]]; then
		echo "mutate.sh: no mutant named '$w' (--list lists them)" >&2
		exit 2
	fi
done

# --- The copy ------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/rewire-mutate.XXXXXX")
cleanup() { [[ -n ${REWIRE_MUTATE_KEEP:-} ]] || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
	tar -c --null -T - -f - | tar -x -C "$work"
export CMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER:-ccache}
export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
(cd "$work" && cmake --preset ci >"$work/configure.log" 2>&1) || {
	cat "$work/configure.log"
	exit 2
}
jobs=${REWIRE_MUTATE_JOBS:-2}
limit=${REWIRE_MUTATE_TIMEOUT:-60}

# Replace OLD by NEW in FILE (under $work); fail unless OLD occurs once.
apply() {
	OLD=$2 NEW=$3 perl -0777 -i -pe '
		my ($o, $n) = ($ENV{OLD}, $ENV{NEW});
		my $c = () = /\Q$o\E/g;
		die "found $c times\n" if $c != 1;
		s/\Q$o\E/$n/;' "$work/$1"
}

# Build TESTS and run them: 0 if they all pass, 1 if one fails, 3 if
# they do not build.
run_tests() {
	local re
	# shellcheck disable=SC2086
	cmake --build "$work/build/ci" -j"$jobs" --target $1 \
		>"$work/build.log" 2>&1 || return 3
	re="^($(sed 's/ *$//; s/ /|/g' <<<"$1"))\$"
	# A mutant that makes a test hang is killed after $limit s.
	timeout -k 5 "$limit" ctest --test-dir "$work/build/ci" -R "$re" \
		--output-on-failure >"$work/test.log" 2>&1 || return 1
}

start=$(date +%s)
killed=0 total=0 survivors=() broken=()
# The unmutated tree must pass the tests the mutants use.
all=$(tr ' ' '\n' <<<"${tests[*]}" | sort -u | tr '\n' ' ')
limit=$((limit * 5))
if ! run_tests "$all"; then
	echo "mutate.sh: the tests fail without any mutant:" >&2
	tail -n 30 "$work/build.log" "$work/test.log" >&2
	exit 2
fi
limit=$((limit / 5))
for i in "${!names[@]}"; do
	name=${names[i]} file=${files[i]}
	if ((${#want[@]})) && [[ " ${want[*]} " != *" $name "* ]]; then
		continue
	fi
	total=$((total + 1))
	cp "$work/$file" "$work/.orig"
	if ! err=$(apply "$file" "${olds[i]}" "${news[i]}" 2>&1); then
		printf '%-28s DOES NOT APPLY (%s: %s)\n' "$name" "$file" "$err"
		broken+=("$name")
		continue
	fi
	t0=$(date +%s)
	rc=0
	run_tests "${tests[i]}" || rc=$?
	case $rc in
	0)
		verdict=SURVIVED
		survivors+=("$name")
		;;
	3)
		verdict="NO BUILD"
		broken+=("$name")
		;;
	*)
		verdict=killed
		killed=$((killed + 1))
		;;
	esac
	cp "$work/build.log" "$work/$name.build.log"
	cp "$work/test.log" "$work/$name.test.log" 2>/dev/null || true
	cp "$work/.orig" "$work/$file"
	printf '%-28s %-8s %3ss  (%s)\n' "$name" "$verdict" \
		$(($(date +%s) - t0)) "${tests[i]}"
done
echo "killed $killed of $total mutants in $(($(date +%s) - start)) s"
if ((${#broken[@]})); then
	echo "not applied or not built: ${broken[*]}"
	exit 2
fi
if ((${#survivors[@]})); then
	echo "survived: ${survivors[*]}"
	exit 1
fi
