# test_ftrace_graph_a64: graph tracing's aarch64-only paths, in a program
# built with -mbranch-protection=standard (PACIASP/AUTIASP).
rw_lp_test()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	target_compile_options(${RW_TEST_TARGET} PRIVATE
			       -mbranch-protection=standard)
endif()
