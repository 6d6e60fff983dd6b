# test_ftrace_badinput: bad input to function tracing. The program is
# patchable and built like a distribution builds it (ft_flags.cmake);
# libftb_plain.so (linked) has no patchable entries; ftb_unloaded.so is
# patchable and built, but never loaded.
include(${RW_TEST_COMMON_DIR}/ft_flags.cmake)
set(ftb_src ${CMAKE_CURRENT_LIST_DIR}/ftrace_badinput)
set(ftb_dir ${CMAKE_CURRENT_BINARY_DIR}/ftrace_badinput)

add_library(ftb_plain SHARED ${ftb_src}/ftb_plain.c)
set_target_properties(ftb_plain PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ftb_dir})
target_compile_options(ftb_plain PRIVATE "${RW_FT_DISTRO_FLAGS}")
rewire_target_warnings(ftb_plain)

add_library(ftb_unloaded MODULE ${ftb_src}/ftb_unloaded.c)
set_target_properties(ftb_unloaded PROPERTIES
	PREFIX "" SUFFIX ".so" LIBRARY_OUTPUT_DIRECTORY ${ftb_dir})
target_compile_options(ftb_unloaded PRIVATE "${RW_FT_DISTRO_FLAGS}")
rewire_target_patchable(ftb_unloaded)
rewire_target_warnings(ftb_unloaded)

rw_lp_test()
target_compile_options(${RW_TEST_TARGET} PRIVATE "${RW_FT_DISTRO_FLAGS}")
target_include_directories(${RW_TEST_TARGET} PRIVATE ${ftb_src})
target_link_libraries(${RW_TEST_TARGET} PRIVATE ftb_plain)
add_dependencies(${RW_TEST_TARGET} ftb_unloaded)
