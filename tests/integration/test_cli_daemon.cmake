# test_cli_daemon: see test_cli_daemon.sh. The programs it drives:
# cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
# Its `rewire ps --clean` as root reaches every process's sockets,
# including the stale one test_cli_basic keeps for a live process.
set_tests_properties(${RW_TEST_NAME} PROPERTIES RESOURCE_LOCK rewire_ps_clean)
