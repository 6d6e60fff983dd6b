# The stack checks are internal (hidden) functions: link the static library.
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_include_directories(${RW_TEST_TARGET} PRIVATE ${CMAKE_SOURCE_DIR}/src)
rw_lp_test()
