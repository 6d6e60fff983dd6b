# test_lp_force: rw_patch_force() on a thread that never leaves the patched
# function, and rw_patch_quiescent() switching threads that cannot be
# checked. The program's functions get a patchable entry; the two patches
# (one source, lp_force_patch.c) are built into
# ${CMAKE_CURRENT_BINARY_DIR}/lp_force, passed as LP_FORCE_DIR.
set(lp_force_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_force)

rw_lp_test()
foreach(which spin q)
	rw_lp_test_patch(lp_force_${which}
		${CMAKE_CURRENT_LIST_DIR}/lp_force_patch.c ${lp_force_dir})
endforeach()
target_compile_definitions(lp_force_spin PRIVATE LP_FORCE_SPIN=1)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LP_FORCE_DIR="${lp_force_dir}")
