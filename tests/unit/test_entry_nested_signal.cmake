# test_entry_nested_signal: x86-64 only (the backend that patches code).
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
