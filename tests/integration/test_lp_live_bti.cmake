# test_lp_live_bti: test_lp_live.c built with -mbranch-protection=bti, as
# is its patch, both marked BTI whatever the C library's start files are
# (-z force-bti), so that the loader maps them guarded. aarch64 only (the
# program skips elsewhere). Not pac-ret: libunwind 1.6 cannot unwind
# through its frames (test_lp_unwind, "pac-ret frames").
set(lp_live_bti_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_live_bti)

rw_lp_test()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	rw_lp_test_patch(lp_live_bti_patch
			 ${CMAKE_CURRENT_LIST_DIR}/lp_live_patch.c
			 ${lp_live_bti_dir})
	set_target_properties(lp_live_bti_patch PROPERTIES
		OUTPUT_NAME lp_live_patch)
	foreach(t ${RW_TEST_TARGET} lp_live_bti_patch)
		target_compile_options(${t} PRIVATE -mbranch-protection=bti)
		target_link_options(${t} PRIVATE -Wl,-z,force-bti)
	endforeach()
	target_compile_definitions(${RW_TEST_TARGET} PRIVATE
		LP_EXPECT_BTI=1
		LP_LIVE_PATCH="${lp_live_bti_dir}/lp_live_patch.so")
endif()
