# test_lp_unwind_cxx: exceptions and pthread_cancel through patched
# functions, in every state of a patch.
#
# The program and liblpu_dso.so (linked to it) are patchable. The patch,
# lpu_patch.so, is C++ (unwind information and landing pads for its local
# objects) and links liblpu_dso.so for the helpers; its path is LPU_PATCH.
set(lpu_src ${CMAKE_CURRENT_LIST_DIR}/lp_unwind_cxx)
set(lpu_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_unwind_cxx)

add_library(lpu_dso SHARED ${lpu_src}/dso.cc)
set_target_properties(lpu_dso PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${lpu_dir})
rewire_target_patchable(lpu_dso)
rewire_target_warnings(lpu_dso)

target_include_directories(${RW_TEST_TARGET} PRIVATE ${lpu_src})
target_link_libraries(${RW_TEST_TARGET} PRIVATE lpu_dso)
rw_lp_test()

rw_lp_test_patch(lpu_patch ${lpu_src}/patch.cc ${lpu_dir})
target_include_directories(lpu_patch PRIVATE ${lpu_src})
target_link_libraries(lpu_patch PRIVATE lpu_dso)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LPU_PATCH="$<TARGET_FILE:lpu_patch>")

# aarch64: everything built as arm64 distributions build programs
# (-mbranch-protection=standard): each frame that saves its return address
# signs it (PACIASP, DW_CFA_AARCH64_negate_ra_state in its CFI), and the
# exceptions and the cancellations unwind through such frames above and
# below the patched entries.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	foreach(t lpu_dso lpu_patch ${RW_TEST_TARGET})
		target_compile_options(${t} PRIVATE
			-mbranch-protection=standard)
	endforeach()
endif()
