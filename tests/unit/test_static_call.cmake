# The DSO refers to exe_key, defined in this executable.
set_target_properties(${RW_TEST_TARGET} PROPERTIES ENABLE_EXPORTS ON)
