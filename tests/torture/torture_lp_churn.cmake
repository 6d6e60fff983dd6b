# torture_lp_churn: live patch cycles under thread churn. The program's
# functions get a patchable entry; the patch lp_churn_patch.so is built into
# ${CMAKE_CURRENT_BINARY_DIR}/lp_churn and its path passed as LP_CHURN_PATCH.
set(lp_churn_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_churn)

rewire_target_patchable(${RW_TEST_TARGET})
rewire_add_patch(lp_churn_patch ${CMAKE_CURRENT_LIST_DIR}/lp_churn_patch.c)
set_target_properties(lp_churn_patch PROPERTIES
	LIBRARY_OUTPUT_DIRECTORY ${lp_churn_dir})
rewire_target_warnings(lp_churn_patch)
add_dependencies(${RW_TEST_TARGET} lp_churn_patch)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LP_CHURN_PATCH="${lp_churn_dir}/lp_churn_patch.so")
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
