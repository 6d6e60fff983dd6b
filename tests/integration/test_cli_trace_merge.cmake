# test_cli_trace_merge: see test_cli_trace_merge.sh. trace_burst
# (trace_merge/burst.c) is built the way a distribution builds a program
# (-O2, fortify, stack protector, -fcf-protection) and linked to librewire;
# the cli programs (cli/cli.cmake) give the environment.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
if(NOT TARGET rw_trace_burst)
	add_executable(rw_trace_burst
		${CMAKE_CURRENT_LIST_DIR}/trace_merge/burst.c)
	set_target_properties(rw_trace_burst PROPERTIES
		OUTPUT_NAME trace_burst
		RUNTIME_OUTPUT_DIRECTORY ${RW_CLI_DIR})
	target_compile_definitions(rw_trace_burst PRIVATE _GNU_SOURCE)
	target_include_directories(rw_trace_burst PRIVATE ${RW_TEST_COMMON_DIR})
	target_compile_options(rw_trace_burst PRIVATE -O2
		-fstack-protector-strong -D_FORTIFY_SOURCE=2 -fcf-protection)
	target_link_libraries(rw_trace_burst PRIVATE rewire Threads::Threads)
	rewire_target_warnings(rw_trace_burst)
endif()
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"TRACE_BURST=$<TARGET_FILE:rw_trace_burst>")
