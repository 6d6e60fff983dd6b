# Patches code in its own text: needs the x86_64 backend.
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
