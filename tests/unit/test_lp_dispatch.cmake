# The dispatchers are internal (src/arch/, hidden): link the static
# library. Code patching only (x86_64 and aarch64 backends).
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_include_directories(${RW_TEST_TARGET} PRIVATE ${CMAKE_SOURCE_DIR}/src)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
