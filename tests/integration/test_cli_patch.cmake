# test_cli_patch: see test_cli_patch.sh. The programs it drives:
# cli/cli.cmake. Live patching needs a patching backend (x86_64, aarch64).
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
