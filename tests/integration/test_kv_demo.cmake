set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 450)
# (the guest doubles it, capped at 900 s, above the script's own bound)
