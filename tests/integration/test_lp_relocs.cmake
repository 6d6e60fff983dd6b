# test_lp_relocs: the loader applies a patch's relocation table (descriptor
# version 3) and refuses a bad one, leaving the program as it was. The
# patches are built into ${LPR_DIR}, passed as LPR_DIR. The program exports
# its symbols: lpr_where.so names its compute() (a field outside the patch).
set(lpr_src ${CMAKE_CURRENT_LIST_DIR}/lp_relocs)
set(lpr_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_relocs)

target_compile_definitions(${RW_TEST_TARGET} PRIVATE LPR_DIR="${lpr_dir}")
set_property(TARGET ${RW_TEST_TARGET} PROPERTY ENABLE_EXPORTS ON)
rw_lp_test()

# The patches' code fields are x86-64 instructions (movabs): not built
# for another machine, where the test skips (not_aarch64).
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
	set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS not_aarch64)
	return()
endif()
foreach(p good missing far where type flags undef)
	rw_lp_test_patch(lpr_${p} ${lpr_src}/patch_${p}.c ${lpr_dir})
	# Like a patch of `rewire build-patch`: no text relocations; the
	# loader writes the code's fields.
	target_link_options(lpr_${p} PRIVATE -Wl,-z,text)
endforeach()
