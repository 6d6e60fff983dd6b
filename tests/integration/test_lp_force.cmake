# test_lp_force: rw_patch_force() on a thread that never leaves the patched
# function, and rw_patch_quiescent() switching threads that cannot be
# checked. The program's functions get a patchable entry; the two patches
# (one source, lp_force_patch.c) are built into
# ${CMAKE_CURRENT_BINARY_DIR}/lp_force, passed as LP_FORCE_DIR.
set(lp_force_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_force)

rewire_target_patchable(${RW_TEST_TARGET})
foreach(which spin q)
	rewire_add_patch(lp_force_${which}
		${CMAKE_CURRENT_LIST_DIR}/lp_force_patch.c)
	set_target_properties(lp_force_${which} PROPERTIES
		LIBRARY_OUTPUT_DIRECTORY ${lp_force_dir})
	rewire_target_warnings(lp_force_${which})
	add_dependencies(${RW_TEST_TARGET} lp_force_${which})
endforeach()
target_compile_definitions(lp_force_spin PRIVATE LP_FORCE_SPIN=1)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LP_FORCE_DIR="${lp_force_dir}")
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)

# Code built with frame pointers (the sanitizer builds) cannot be unwound
# from outside while blocked in a system call: the test then expects what
# rewire does instead (see the test's comment).
if(REWIRE_SANITIZE OR CMAKE_C_FLAGS MATCHES "fno-omit-frame-pointer")
	target_compile_definitions(${RW_TEST_TARGET} PRIVATE
		LP_FRAME_POINTERS=1)
endif()
