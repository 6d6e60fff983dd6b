# The stack checks are internal (hidden) functions: link the static library.
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_include_directories(${RW_TEST_TARGET} PRIVATE ${CMAKE_SOURCE_DIR}/src)
# Live patching is for the code-patching backend (the tsan preset runs the
# generic one).
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
# aarch64: as a distribution builds (BTI landing pads, PAC-signed return
# addresses): the checks must strip the signatures (src/livepatch/
# unwind_remote.h, rw__lp_strip_pac).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	target_compile_options(${RW_TEST_TARGET} PRIVATE
		-mbranch-protection=standard)
endif()
