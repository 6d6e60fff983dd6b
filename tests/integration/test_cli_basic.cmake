# test_cli_basic: see test_cli_basic.sh. The programs it drives: cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
# test_cli_daemon runs `rewire ps --clean` as root over every process, and
# would remove the stale socket this test leaves on purpose for a live
# process: the two never run at the same time.
set_tests_properties(${RW_TEST_NAME} PROPERTIES RESOURCE_LOCK rewire_ps_clean)
