# test_lp_entries_uprobe: see test_lp_entries_uprobe.sh. Builds
# lp_entries/uprobe_target.c twice into ${lpe_up_dir}, and the patch
# lpe_up_patch.so; LPE_UP_VARIANTS names the two programs:
#   x86-64:  lpe_up_fix (entries rewritten by rewire-entries) and
#            lpe_up_keep (GCC's five 1-byte NOPs);
#   aarch64: lpe_up_plain (-mbranch-protection=none: the two NOPs at the
#            symbol) and lpe_up_bti (-mbranch-protection=standard, as
#            Debian builds: BTI c at the symbol, the NOPs after it).
# The generic backend does not live patch: the test skips there.
set(lpe_up_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_entries_uprobe)
if(REWIRE_BACKEND_RESOLVED STREQUAL "x86_64")
	set(lpe_up_variants fix keep)
elseif(REWIRE_BACKEND_RESOLVED STREQUAL "aarch64")
	set(lpe_up_variants plain bti)
else()
	set(lpe_up_variants)
endif()
foreach(which IN LISTS lpe_up_variants)
	add_executable(lpe_up_${which}
		${CMAKE_CURRENT_LIST_DIR}/lp_entries/uprobe_target.c)
	set_target_properties(lpe_up_${which} PROPERTIES
		RUNTIME_OUTPUT_DIRECTORY ${lpe_up_dir})
	target_link_libraries(lpe_up_${which} PRIVATE rewire)
	rewire_target_warnings(lpe_up_${which})
	add_dependencies(lpe_up_${which} lpe_up_patch)
endforeach()
if(REWIRE_BACKEND_RESOLVED STREQUAL "x86_64")
	# Distribution-like: lpe_up_fn opts out of the endbr64 (nocf_check).
	target_compile_options(lpe_up_fix PRIVATE -fcf-protection=full)
	target_compile_options(lpe_up_keep PRIVATE -fcf-protection=full)
	rewire_target_patchable(lpe_up_fix FIX_ENTRIES)
	rewire_target_patchable(lpe_up_keep KEEP_NOPS)
elseif(REWIRE_BACKEND_RESOLVED STREQUAL "aarch64")
	target_compile_options(lpe_up_plain PRIVATE -mbranch-protection=none)
	target_compile_options(lpe_up_bti PRIVATE
		-mbranch-protection=standard)
	rewire_target_patchable(lpe_up_plain)
	rewire_target_patchable(lpe_up_bti)
endif()
if(lpe_up_variants)
	rewire_add_patch(lpe_up_patch
		${CMAKE_CURRENT_LIST_DIR}/lp_entries/uprobe_patch.c)
	set_target_properties(lpe_up_patch PROPERTIES
		LIBRARY_OUTPUT_DIRECTORY ${lpe_up_dir})
	rewire_target_warnings(lpe_up_patch)
endif()
string(REPLACE ";" " " lpe_up_variants "${lpe_up_variants}")
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"LPE_UP_DIR=${lpe_up_dir}" "LPE_UP_VARIANTS=${lpe_up_variants}")
