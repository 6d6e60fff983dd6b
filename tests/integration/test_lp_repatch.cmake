# test_lp_repatch: pick() patched, unpatched and unloaded, and patched
# again (the same patch, another one) for several cycles while workers call
# it. The patches are built into ${CMAKE_CURRENT_BINARY_DIR}/lp_repatch;
# LP_REPATCH_DIR is that directory.
set(lp_repatch_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_repatch)

rw_lp_test()
rw_lp_test_patch(lp_repatch_a ${CMAKE_CURRENT_LIST_DIR}/lp_repatch/lp_repatch_a.c
		 ${lp_repatch_dir})
rw_lp_test_patch(lp_repatch_b ${CMAKE_CURRENT_LIST_DIR}/lp_repatch/lp_repatch_b.c
		 ${lp_repatch_dir})
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LP_REPATCH_DIR="${lp_repatch_dir}/")
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 120)
