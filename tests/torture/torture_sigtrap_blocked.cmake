# Needs code patching (int3): excluded from the generic-backend TSan run.
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
