# test_lp_live_bti: test_lp_live.c built with -mbranch-protection=bti (its
# functions begin with BTI c, the entry after it), and its patch built so
# that it is marked BTI and mapped guarded: -mbranch-protection=bti, no
# start files and no outline atomics (Debian 12's crt*.o and libgcc.a
# lack the BTI note, and -z force-bti over them faults on their
# indirectly called constructors). The program itself stays unmarked for
# the same reason. aarch64 only (the program skips elsewhere). BTI alone:
# test_lp_live_pac builds the program and its patches with
# -mbranch-protection=standard (pac-ret too).
set(lp_live_bti_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_live_bti)

rw_lp_test()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	rw_lp_test_patch(lp_live_bti_patch
			 ${CMAKE_CURRENT_LIST_DIR}/lp_live_patch.c
			 ${lp_live_bti_dir})
	set_target_properties(lp_live_bti_patch PROPERTIES
		OUTPUT_NAME lp_live_patch)
	target_compile_options(lp_live_bti_patch PRIVATE
		-mbranch-protection=bti -mno-outline-atomics)
	target_link_options(lp_live_bti_patch PRIVATE -nostartfiles)
	target_compile_options(${RW_TEST_TARGET} PRIVATE
		-mbranch-protection=bti)
	target_compile_definitions(${RW_TEST_TARGET} PRIVATE
		LP_EXPECT_BTI=1
		LP_LIVE_PATCH="${lp_live_bti_dir}/lp_live_patch.so")
endif()
