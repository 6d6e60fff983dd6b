# test_trace_a64: aarch64 trampolines with a hardened program (BTI, PAC).
# The internal interface (src/entry.h) is hidden in the shared library:
# link the static one.
rw_lp_test()
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_include_directories(${RW_TEST_TARGET} PRIVATE ${PROJECT_SOURCE_DIR}/src)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	target_compile_options(${RW_TEST_TARGET} PRIVATE
			       -mbranch-protection=standard)
endif()
