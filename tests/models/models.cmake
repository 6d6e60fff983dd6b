# Promela models of rewire's protocols, checked with Spin (label "model").
# Glob-driven like the rest of tests/: every src/**/*.pml is one CTest test
# model_<stem> that must pass (tests/models/run_spin.sh MODEL expect-pass),
# and every naive variant its header declares is one more test that passes
# only when Spin refutes the variant (expect-fail):
#
#    * run_spin-naive: NAIVE_TAIL
#    * run_spin-naive: stale_table -DNAIVE -DNAIVE_TABLE
#
# The first word names the variant (test model_<stem>_<word, lowercase>);
# the rest are the -D flags for spin, -D<word> when there are none. Lines
# "* run_spin: ARGS" are read by the runner itself (see run_spin.sh).
# Every test skips (77) when spin is not installed.

file(GLOB_RECURSE RW_MODELS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/*.pml)
set(RW_SPIN_RUNNER ${CMAKE_CURRENT_LIST_DIR}/run_spin.sh)
foreach(model IN LISTS RW_MODELS)
	get_filename_component(stem ${model} NAME_WE)
	set(test model_${stem})
	add_test(NAME ${test}
		COMMAND ${RW_BASH} ${RW_SPIN_RUNNER} ${model} expect-pass)
	set_tests_properties(${test} PROPERTIES
		LABELS model
		TIMEOUT 180
		SKIP_RETURN_CODE 77)
	file(STRINGS ${model} naive_lines
		REGEX "^[ \t]*\\*[ \t]*run_spin-naive:")
	foreach(line IN LISTS naive_lines)
		string(REGEX REPLACE "^[ \t]*\\*[ \t]*run_spin-naive:[ \t]*" ""
			spec "${line}")
		string(STRIP "${spec}" spec)
		separate_arguments(words UNIX_COMMAND "${spec}")
		list(POP_FRONT words variant)
		if(NOT words)
			set(words -D${variant})
		endif()
		string(TOLOWER ${variant} lower)
		add_test(NAME ${test}_${lower}
			COMMAND ${RW_BASH} ${RW_SPIN_RUNNER} ${model} expect-fail
				${words})
		set_tests_properties(${test}_${lower} PROPERTIES
			LABELS model
			TIMEOUT 180
			SKIP_RETURN_CODE 77)
	endforeach()
endforeach()
