# The stack checks are internal (hidden) functions: link the static library.
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_include_directories(${RW_TEST_TARGET} PRIVATE ${CMAKE_SOURCE_DIR}/src)
# Live patching is for the code-patching backend (the tsan preset runs the
# generic one).
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
