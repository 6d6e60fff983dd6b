# test_cli_impostor: see test_cli_impostor.sh. The programs it drives:
# cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
