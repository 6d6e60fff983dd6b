# test_cli_man: see test_cli_man.sh. The programs it drives: cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
