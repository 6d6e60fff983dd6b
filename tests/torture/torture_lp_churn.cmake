# torture_lp_churn: live patch cycles under thread churn. The program's
# functions get a patchable entry; the patch lp_churn_patch.so is built into
# ${CMAKE_CURRENT_BINARY_DIR}/lp_churn and its path passed as LP_CHURN_PATCH.
set(lp_churn_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_churn)

rw_lp_test()
rw_lp_test_patch(lp_churn_patch ${CMAKE_CURRENT_LIST_DIR}/lp_churn_patch.c
		 ${lp_churn_dir})
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LP_CHURN_PATCH="${lp_churn_dir}/lp_churn_patch.so")
