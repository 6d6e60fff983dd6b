# test_ctl_patch_dir_threads: a program that starts its control server with
# a patch directory itself (rw_ctl_start_opts) while one of its threads
# holds the patch's transition open. Built like distributions build
# programs; the patch pdt_fix.so (ctl_fleet/pdt_fix.c) is bound to this
# build, in ${CMAKE_CURRENT_BINARY_DIR}/ctl_fleet (PDT_DIR).
set(pdt_dir ${CMAKE_CURRENT_BINARY_DIR}/ctl_fleet)
rw_lp_test()
target_compile_options(${RW_TEST_TARGET} PRIVATE -O2
	-fstack-protector-strong -fcf-protection)
if(NOT REWIRE_SANITIZE)
	target_compile_definitions(${RW_TEST_TARGET} PRIVATE _FORTIFY_SOURCE=2)
endif()
# The patch is bound to the test program: it is built after it. With the
# generic backend the program only skips (no live patching), and has no
# function to bind to.
if(NOT REWIRE_BACKEND_RESOLVED STREQUAL "generic")
	rewire_add_patch(pdt_fix ${CMAKE_CURRENT_LIST_DIR}/ctl_fleet/pdt_fix.c
			 BIND ${RW_TEST_TARGET})
else()
	rewire_add_patch(pdt_fix ${CMAKE_CURRENT_LIST_DIR}/ctl_fleet/pdt_fix.c)
endif()
set_target_properties(pdt_fix PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${pdt_dir})
rewire_target_warnings(pdt_fix)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE PDT_DIR="${pdt_dir}")
target_link_options(${RW_TEST_TARGET} PRIVATE -rdynamic)
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 60)
