# test_cli_peer: see test_cli_peer.sh. The programs it drives: cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
