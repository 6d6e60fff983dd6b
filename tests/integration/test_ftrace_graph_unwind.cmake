# test_ftrace_graph_unwind: exceptions, longjmp, cancellation, pthread_exit and
# coroutines through functions traced in graph mode. The traced functions
# are libftu.so's (C and C++), built like a distribution builds them
# (ft_flags.cmake) with patchable entries, linked to the test.
include(${RW_TEST_COMMON_DIR}/ft_flags.cmake)
set(ftu_src ${CMAKE_CURRENT_LIST_DIR}/ftrace_unwind)

add_library(ftu SHARED ${ftu_src}/ftu_c.c ${ftu_src}/ftu_cxx.cc)
set_target_properties(ftu PROPERTIES
	LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/ftrace_unwind)
target_compile_options(ftu PRIVATE "${RW_FT_DISTRO_FLAGS}")
target_include_directories(ftu PRIVATE ${ftu_src})
target_link_libraries(ftu PRIVATE Threads::Threads)
rewire_target_patchable(ftu)
rewire_target_warnings(ftu)

target_include_directories(${RW_TEST_TARGET} PRIVATE ${ftu_src})
target_link_libraries(${RW_TEST_TARGET} PRIVATE ftu)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
