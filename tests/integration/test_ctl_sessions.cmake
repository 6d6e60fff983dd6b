# test_ctl_sessions: LS's TRACE_SESSION groups (issue 16). The test runs the
# control server in its own process and is its own client (src/ctl/wire.c
# compiled in); its functions get patchable entries for function tracing.
rw_lp_test()
target_sources(${RW_TEST_TARGET} PRIVATE ${PROJECT_SOURCE_DIR}/src/ctl/wire.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE
	${PROJECT_SOURCE_DIR}/src ${CMAKE_CURRENT_LIST_DIR}/ctl_fleet)
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 60)
