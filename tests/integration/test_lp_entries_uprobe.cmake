# test_lp_entries_uprobe: see test_lp_entries_uprobe.sh. Builds
# lp_entries/uprobe_target.c twice into ${lpe_up_dir}: lpe_up_fix (entries
# rewritten by rewire-entries) and lpe_up_keep (GCC's five 1-byte NOPs),
# and the patch lpe_up_patch.so.
# x86-64 only: its two entry layouts are x86-64's (aarch64 has one: two
# 4-byte NOPs; the test skips there).
set(lpe_up_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_entries_uprobe)
if(REWIRE_BACKEND_RESOLVED STREQUAL "x86_64")
foreach(which fix keep)
	add_executable(lpe_up_${which}
		${CMAKE_CURRENT_LIST_DIR}/lp_entries/uprobe_target.c)
	set_target_properties(lpe_up_${which} PROPERTIES
		RUNTIME_OUTPUT_DIRECTORY ${lpe_up_dir})
	target_link_libraries(lpe_up_${which} PRIVATE rewire)
	# Distribution-like: lpe_up_fn opts out of the endbr64 (nocf_check).
	target_compile_options(lpe_up_${which} PRIVATE -fcf-protection=full)
	rewire_target_warnings(lpe_up_${which})
endforeach()
rewire_target_patchable(lpe_up_fix FIX_ENTRIES)
rewire_target_patchable(lpe_up_keep KEEP_NOPS)
rewire_add_patch(lpe_up_patch
	${CMAKE_CURRENT_LIST_DIR}/lp_entries/uprobe_patch.c)
set_target_properties(lpe_up_patch PROPERTIES
	LIBRARY_OUTPUT_DIRECTORY ${lpe_up_dir})
rewire_target_warnings(lpe_up_patch)
add_dependencies(lpe_up_fix lpe_up_patch)
endif()
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"LPE_UP_DIR=${lpe_up_dir}")
