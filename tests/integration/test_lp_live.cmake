# test_lp_live: a live patch of buggy_sum() applied and reverted while eight
# threads call it, one thread is blocked in read() and one in
# clock_nanosleep(). The program's functions get a patchable entry; the
# patch lp_live_patch.so is built into ${CMAKE_CURRENT_BINARY_DIR}/lp_live
# and its path is passed as LP_LIVE_PATCH.
set(lp_live_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_live)

rewire_target_patchable(${RW_TEST_TARGET})
rewire_add_patch(lp_live_patch ${CMAKE_CURRENT_LIST_DIR}/lp_live_patch.c)
set_target_properties(lp_live_patch PROPERTIES
	LIBRARY_OUTPUT_DIRECTORY ${lp_live_dir})
rewire_target_warnings(lp_live_patch)
add_dependencies(${RW_TEST_TARGET} lp_live_patch)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LP_LIVE_PATCH="${lp_live_dir}/lp_live_patch.so")
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)

# Code built with frame pointers (the sanitizer builds) cannot be unwound
# from outside while blocked in a system call: the test then expects what
# rewire does instead (see the test's comment).
if(REWIRE_SANITIZE OR CMAKE_C_FLAGS MATCHES "fno-omit-frame-pointer")
	target_compile_definitions(${RW_TEST_TARGET} PRIVATE
		LP_FRAME_POINTERS=1)
endif()
