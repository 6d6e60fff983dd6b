# Bound stubs exist only on the code-patching backend.
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
