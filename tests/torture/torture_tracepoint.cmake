# The same torture with the kernel's pre-2021 ordering (RW_TRACEPOINT_NAIVE):
# it must report mismatches, which shows the oracle can fail.
add_executable(torture_tracepoint_naive
	${CMAKE_CURRENT_SOURCE_DIR}/torture/torture_tracepoint.c)
target_include_directories(torture_tracepoint_naive PRIVATE ${RW_TEST_COMMON_DIR})
target_compile_definitions(torture_tracepoint_naive PRIVATE
	_GNU_SOURCE RW_TRACEPOINT_NAIVE=1)
target_link_libraries(torture_tracepoint_naive PRIVATE rewire Threads::Threads)
rewire_target_warnings(torture_tracepoint_naive)
add_test(NAME torture_tracepoint_naive COMMAND torture_tracepoint_naive)
set_tests_properties(torture_tracepoint_naive PROPERTIES
	LABELS torture TIMEOUT 900 SKIP_RETURN_CODE 77)
