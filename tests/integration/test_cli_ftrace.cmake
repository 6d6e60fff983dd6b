# test_cli_ftrace: see test_cli_ftrace.sh. The programs: cli_ftrace/ftrace.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli_ftrace/ftrace.cmake)
