# Only runs the compiler (REWIRE_CC) on the headers: nothing it builds runs.
# In a cross build the host runs it with the cross compiler, not the
# emulated machine (host_compile; scripts/aarch64/test.sh).
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS host_compile)
