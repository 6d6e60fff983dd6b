# test_cli_daemon: see test_cli_daemon.sh. The programs it drives:
# cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
