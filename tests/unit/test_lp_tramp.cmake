# test_lp_tramp: live patching's own-stack check through graph tracing's
# return trampoline. The stack check and the trampoline's address are
# internal (hidden): link the static library. Built with
# -mbranch-protection=standard on aarch64 (PAC-signed return addresses).
rw_lp_test()
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_include_directories(${RW_TEST_TARGET} PRIVATE ${PROJECT_SOURCE_DIR}/src)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	target_compile_options(${RW_TEST_TARGET} PRIVATE
			       -mbranch-protection=standard)
endif()
