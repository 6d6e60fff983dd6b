# The protocol's test hooks (rw__text_poke_observer, the armed callback of
# rw__text_poke_locked_ex) are internal: link the static library. Code
# patching only.
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_include_directories(${RW_TEST_TARGET} PRIVATE ${CMAKE_SOURCE_DIR}/src)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
