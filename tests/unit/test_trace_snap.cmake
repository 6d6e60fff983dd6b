# The snapshot copy of the rewire command (tools/rewire/trace_snap.c),
# compiled in; synthetic rings, no session: runs in every preset.
target_sources(${RW_TEST_TARGET} PRIVATE
	       ${PROJECT_SOURCE_DIR}/tools/rewire/trace_snap.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE
			   ${PROJECT_SOURCE_DIR}/src
			   ${PROJECT_SOURCE_DIR}/tools/rewire)
