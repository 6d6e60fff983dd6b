# The tests of `rewire build-patch` at the command level (included from
# tests/CMakeLists.txt). All are bash scripts sourcing lib.sh, label
# integration (and x86only: the live runs need a patching backend;
# test_bp_kv, test_bp_far and test_bp_memcached run on aarch64 too):
#
#   test_bp_corpus        build_corpus.sh: builds the corpus (the fixture
#                         bp_corpus the others require)
#   test_bp_case_<CASE>   test_bp_case.sh CASE, one per
#                         corpus/cases/<CASE>.expect
#   test_bp_oracle        test_bp_oracle.sh: the oracle catches a mix of
#                         old and new (oracle_mix.c, a wrong patch)
#   test_bp_usage         test_bp_usage.sh: options and bad inputs (exit
#                         2 and 1, nothing written)
#   test_bp_refuse        test_bp_refuse.sh: build-id mismatch, a patch for
#                         another program, the same patch twice
#   test_bp_kv            test_bp_kv.sh: the kv server's value bug from
#                         examples/kv/patches/fix_value.diff, patched
#                         under load (and fix_value_diff.so, made by
#                         rewire_build_patch())
#   test_bp_memcached     test_bp_memcached.sh: memcached/version.diff on
#                         Debian's memcached (builds it on the first run;
#                         in the aarch64 VM applies the patch that
#                         memcached_cross_build made on the host)
#   test_bp_far           test_bp_far.sh: a patch reaches the program's
#                         data, functions and libc from afar (far/; on
#                         aarch64: calls through x16, BTI landing pads)
set(rw_bp_dir ${CMAKE_CURRENT_LIST_DIR})
set(rw_bp_env
	"REWIRE_BUILD_DIR=${CMAKE_BINARY_DIR}"
	"REWIRE_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
	"REWIRE_SANITIZE=${REWIRE_SANITIZE}"
	"REWIRE_CC=${CMAKE_C_COMPILER}"
	"REWIRE_CMAKE=${CMAKE_COMMAND}"
	"REWIRE_TOOL=$<TARGET_FILE:rewire-cli>")

function(rw_bp_test name timeout)
	add_test(NAME ${name} COMMAND ${RW_BASH} ${ARGN})
	set_tests_properties(${name} PROPERTIES
		LABELS "integration;x86only"
		TIMEOUT ${timeout}
		SKIP_RETURN_CODE 77
		ENVIRONMENT "${rw_bp_env}")
endfunction()

rw_bp_test(test_bp_corpus 300 ${rw_bp_dir}/build_corpus.sh)
set_tests_properties(test_bp_corpus PROPERTIES FIXTURES_SETUP bp_corpus)

file(GLOB rw_bp_cases CONFIGURE_DEPENDS ${rw_bp_dir}/corpus/cases/*.expect)
foreach(expect IN LISTS rw_bp_cases)
	get_filename_component(case ${expect} NAME_WE)
	rw_bp_test(test_bp_case_${case} 180 ${rw_bp_dir}/test_bp_case.sh ${case})
	set_tests_properties(test_bp_case_${case} PROPERTIES
		FIXTURES_REQUIRED bp_corpus)
endforeach()

rw_bp_test(test_bp_oracle 120 ${rw_bp_dir}/test_bp_oracle.sh)
set_tests_properties(test_bp_oracle PROPERTIES FIXTURES_REQUIRED bp_corpus)

rw_bp_test(test_bp_usage 180 ${rw_bp_dir}/test_bp_usage.sh)
set_tests_properties(test_bp_usage PROPERTIES FIXTURES_REQUIRED bp_corpus)

rw_bp_test(test_bp_refuse 180 ${rw_bp_dir}/test_bp_refuse.sh)
set_tests_properties(test_bp_refuse PROPERTIES FIXTURES_REQUIRED bp_corpus)

# The corpus is x86-64's: built with its entry (-fpatchable-function-entry
# =5), -fcf-protection and its code generation, which the cases' .expect
# files describe (cold parts, clones); the guest has neither make nor bear
# to build it. On aarch64 build-patch is tested by test_bp_emit,
# test_bp_diff, test_bp_far, test_bp_kv, test_bp_memcached and the kv
# demo.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	set(rw_bp_corpus_tests test_bp_corpus test_bp_oracle test_bp_usage
		test_bp_refuse)
	foreach(expect IN LISTS rw_bp_cases)
		get_filename_component(case ${expect} NAME_WE)
		list(APPEND rw_bp_corpus_tests test_bp_case_${case})
	endforeach()
	set_property(TEST ${rw_bp_corpus_tests} APPEND PROPERTY LABELS
		not_aarch64)
endif()

# 400 s: in the aarch64 VM build-patch compiles kvserver.c emulated.
rw_bp_test(test_bp_kv 400 ${rw_bp_dir}/test_bp_kv.sh)

# Compiles far.c at run time (emulated in the aarch64 VM).
rw_bp_test(test_bp_far 300 ${rw_bp_dir}/test_bp_far.sh)

# Compiles memcached on its first run (shared with test_memcached_ftrace,
# tests/integration/memcached_build.sh), hence the longer timeout.
rw_bp_test(test_bp_memcached 900 ${rw_bp_dir}/test_bp_memcached.sh)
