# test_lp_main_exit: a live patch transition after the main thread called
# pthread_exit(). The program's functions get a patchable entry; the patch
# (lp_main_exit_patch.c) is built into ${CMAKE_CURRENT_BINARY_DIR}/lp_main_exit,
# passed as LP_MAIN_EXIT_DIR.
set(lp_main_exit_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_main_exit)

rw_lp_test()
rw_lp_test_patch(lp_main_exit
	${CMAKE_CURRENT_LIST_DIR}/lp_main_exit_patch.c ${lp_main_exit_dir})
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LP_MAIN_EXIT_DIR="${lp_main_exit_dir}")
