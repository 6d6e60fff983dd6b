# test_cli_trace: see test_cli_trace.sh. The programs it drives: cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
