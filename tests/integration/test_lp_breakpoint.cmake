# test_lp_breakpoint: another tool's int3 (a uprobe, a debugger) in a
# patchable entry is refused with RW_ERR_BREAKPOINT. The program is built
# with -fcf-protection so that bp_cet() starts with an endbr64; the two
# patches (one source, lp_breakpoint/patch.c) go to
# ${CMAKE_CURRENT_BINARY_DIR}/lp_breakpoint, passed as LP_BP_DIR.
set(lp_bp_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_breakpoint)

rw_lp_test()
target_compile_options(${RW_TEST_TARGET} PRIVATE -fcf-protection=full)
foreach(which plain cet)
	rw_lp_test_patch(lp_bp_${which}
		${CMAKE_CURRENT_LIST_DIR}/lp_breakpoint/patch.c ${lp_bp_dir})
endforeach()
target_compile_definitions(lp_bp_cet PRIVATE LP_BP_CET=1)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE LP_BP_DIR="${lp_bp_dir}")
