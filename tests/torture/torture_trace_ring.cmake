# torture_trace_ring: like tests/unit/test_trace_ring.cmake, the session
# functions (rw__trace_*) are internal: link the static library, and
# compile in the rewire command's reader (tools/rewire/trace_reader.c).
# Runs in every preset, TSan (generic backend) included.
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_sources(${RW_TEST_TARGET} PRIVATE
	       ${PROJECT_SOURCE_DIR}/tools/rewire/trace_reader.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE
			   ${PROJECT_SOURCE_DIR}/src
			   ${PROJECT_SOURCE_DIR}/tools/rewire)
