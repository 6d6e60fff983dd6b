# test_lp_stack: stacked patches, atomic replace, callbacks, references to
# the program's non-exported symbols, and a function of a shared library.
#
# The test program and liblps_lib.so (linked to it) are patchable; the
# patches are built into ${lps_dir}, passed as LPS_DIR.
set(lps_src ${CMAKE_CURRENT_LIST_DIR}/lp_stack)
set(lps_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_stack)

add_library(lps_lib SHARED ${lps_src}/lib.c)
set_target_properties(lps_lib PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${lps_dir})
rewire_target_patchable(lps_lib)
rewire_target_warnings(lps_lib)

target_include_directories(${RW_TEST_TARGET} PRIVATE ${lps_src})
target_link_libraries(${RW_TEST_TARGET} PRIVATE lps_lib)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE LPS_DIR="${lps_dir}")
rw_lp_test()

foreach(p a b c r fail cb ref dso)
	rw_lp_test_patch(lps_${p} ${lps_src}/patch_${p}.c ${lps_dir})
	target_include_directories(lps_${p} PRIVATE ${lps_src})
endforeach()
