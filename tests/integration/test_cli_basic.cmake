# test_cli_basic: see test_cli_basic.sh. The programs it drives: cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
