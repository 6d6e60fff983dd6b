# test_trace_ring: the session functions (rw__trace_*) are internal
# (hidden) functions of librewire: link the static library. The reader is
# the rewire command's (tools/rewire/trace_reader.c), compiled in.
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_sources(${RW_TEST_TARGET} PRIVATE
	       ${PROJECT_SOURCE_DIR}/tools/rewire/trace_reader.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE
			   ${PROJECT_SOURCE_DIR}/src
			   ${PROJECT_SOURCE_DIR}/tools/rewire)
# No code patching of its own beyond tracepoints: runs in every preset,
# TSan (generic backend) included.
