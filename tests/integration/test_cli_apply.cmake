# test_cli_apply: see test_cli_apply.sh. It drives examples/kv (rw-kvserver,
# rw-kvload, fix_value.so); live patching needs the x86_64 backend.
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 120)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
