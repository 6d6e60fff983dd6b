# test_lp_entries: entries rewritten by rewire-entries (one 5-byte NOP) are
# patched and restored exactly, next to entries that keep GCC's five 1-byte
# NOPs, and a uprobe's resume point (the file's first instruction) lands
# on an instruction of the patched entry only with the rewritten layout.
# aarch64: the layouts of -fpatchable-function-entry (with and without
# BTI C, M,N forms) that rewire patches and those it refuses.
#
# The program (-fcf-protection, so that le_cet() has an endbr64) and
# liblpe_fix.so get the post-link step (FIX_ENTRIES: the tests' default is
# to keep the NOPs); liblpe_keep.so keeps them. The patch goes to
# ${lpe_dir}, passed as LPE_DIR; the tool's path is LPE_TOOL.
set(lpe_src ${CMAKE_CURRENT_LIST_DIR}/lp_entries)
set(lpe_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_entries)

foreach(which keep fix)
	add_library(lpe_${which} SHARED ${lpe_src}/lib.c)
	set_target_properties(lpe_${which} PROPERTIES
		LIBRARY_OUTPUT_DIRECTORY ${lpe_dir})
	target_compile_definitions(lpe_${which} PRIVATE
		LPE_FN=lpe_${which}_fn)
	rewire_target_warnings(lpe_${which})
	target_link_libraries(${RW_TEST_TARGET} PRIVATE lpe_${which})
endforeach()
rewire_target_patchable(lpe_keep KEEP_NOPS)
rewire_target_patchable(lpe_fix FIX_ENTRIES)

rw_lp_test()
rewire_target_patchable(${RW_TEST_TARGET} FIX_ENTRIES)
target_compile_options(${RW_TEST_TARGET} PRIVATE -fcf-protection=full)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	# aarch64 (the toolchain turns -fcf-protection into
	# -mbranch-protection=standard): the program's functions choose
	# their layouts with attributes, rewire-entries leaves every file as
	# it is. lp_entries.so patches the layouts rewire takes;
	# lpe_refuse_NAME.so, one per layout it refuses, names NAME alone.
	rw_lp_test_patch(lp_entries ${lpe_src}/patch_aarch64.c ${lpe_dir})
	foreach(fn le_pre42 le_pre42_plain le_pre31 le_one le_none)
		rw_lp_test_patch(lpe_refuse_${fn} ${lpe_src}/refuse_aarch64.c
				 ${lpe_dir})
		target_compile_definitions(lpe_refuse_${fn} PRIVATE
			LPE_TARGET="${fn}")
	endforeach()
else()
	rw_lp_test_patch(lp_entries ${lpe_src}/patch.c ${lpe_dir})
endif()
add_dependencies(${RW_TEST_TARGET} rewire-entries)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LPE_DIR="${lpe_dir}"
	LPE_TOOL="$<TARGET_FILE:rewire-entries>"
	LPE_KEEP_LIB="$<TARGET_FILE:lpe_keep>")
