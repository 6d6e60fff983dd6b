# test_cli_funccount: see test_cli_funccount.sh. The programs: cli_ftrace/ftrace.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli_ftrace/ftrace.cmake)
