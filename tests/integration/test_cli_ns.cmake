# test_cli_ns: see test_cli_ns.sh. The programs it drives: cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
set_property(TEST ${RW_TEST_NAME} PROPERTY TIMEOUT 120)
