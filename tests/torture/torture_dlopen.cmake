# dso_churn.so refers to dl_exe_key and dl_exe_call, defined here.
set_target_properties(${RW_TEST_TARGET} PROPERTIES ENABLE_EXPORTS ON)
# Patches code in its own text: needs the x86_64 backend.
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
