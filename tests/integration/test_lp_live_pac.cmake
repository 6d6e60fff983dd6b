# test_lp_live_pac: test_lp_live.c and a thread held inside a patched
# function, with the program and both patches built with
# -mbranch-protection=standard, as arm64 distributions build programs
# (PACIASP signs the return address a function saves, and its CFI says so
# with DW_CFA_AARCH64_negate_ra_state; BTI c landing pads). The stack
# checks step such frames with rw__lp_cfi_step() (libunwind 1.6 cannot).
# The patches are built into ${lp_live_pac_dir}: lp_live_patch.so (the fix
# of buggy_sum) and lp_live_pac_hold.so (the new pac_hold). aarch64 only
# (the program skips elsewhere).
set(lp_live_pac_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_live_pac)

rw_lp_test()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	rw_lp_test_patch(lp_live_pac_patch
			 ${CMAKE_CURRENT_LIST_DIR}/lp_live_patch.c
			 ${lp_live_pac_dir})
	set_target_properties(lp_live_pac_patch PROPERTIES
		OUTPUT_NAME lp_live_patch)
	rw_lp_test_patch(lp_live_pac_hold
			 ${CMAKE_CURRENT_LIST_DIR}/lp_live_pac_hold.c
			 ${lp_live_pac_dir})
	foreach(t lp_live_pac_patch lp_live_pac_hold ${RW_TEST_TARGET})
		target_compile_options(${t} PRIVATE
			-mbranch-protection=standard)
	endforeach()
	target_compile_definitions(${RW_TEST_TARGET} PRIVATE
		LP_LIVE_PATCH="${lp_live_pac_dir}/lp_live_patch.so"
		LP_PAC_HOLD_PATCH="${lp_live_pac_dir}/lp_live_pac_hold.so")
endif()
