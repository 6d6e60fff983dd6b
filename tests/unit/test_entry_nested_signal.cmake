# test_entry_nested_signal: the backends that patch code (x86-64, aarch64).
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
