# The flight recorder's SNAPSHOT against the in-process control server,
# with the rewire command's snapshot copy (tools/rewire/trace_snap.c)
# compiled in; the traced function is patchable (function tables).
target_sources(${RW_TEST_TARGET} PRIVATE
	       ${PROJECT_SOURCE_DIR}/src/ctl/wire.c
	       ${PROJECT_SOURCE_DIR}/tools/rewire/trace_snap.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE
			   ${PROJECT_SOURCE_DIR}/src
			   ${PROJECT_SOURCE_DIR}/tools/rewire)
rewire_target_patchable(${RW_TEST_TARGET})
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
