# test_lp_live: a live patch of buggy_sum() applied and reverted while eight
# threads call it, one thread is blocked in read() and one in
# clock_nanosleep(). The program's functions get a patchable entry; the
# patch lp_live_patch.so is built into ${CMAKE_CURRENT_BINARY_DIR}/lp_live
# and its path is passed as LP_LIVE_PATCH.
set(lp_live_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_live)

rw_lp_test()
rw_lp_test_patch(lp_live_patch ${CMAKE_CURRENT_LIST_DIR}/lp_live_patch.c
		 ${lp_live_dir})
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LP_LIVE_PATCH="${lp_live_dir}/lp_live_patch.so")
