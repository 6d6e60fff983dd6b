# test_ctl_patch_fd: PATCH_LOAD with the patch file passed as a descriptor
# (issue 16). The test runs the control server in its own process and talks
# to it through the wire format (src/ctl/wire.c compiled in; the FILE_ID it
# expects from src/ctl/fileid.c). Patches in ${CMAKE_CURRENT_BINARY_DIR}/
# ctl_fleet (PFD_DIR): pfd_fix.so, and pfd_fix_noid.so, the same without
# its build-id note.
set(pfd_dir ${CMAKE_CURRENT_BINARY_DIR}/ctl_fleet)
rw_lp_test()
rw_lp_test_patch(pfd_fix ${CMAKE_CURRENT_LIST_DIR}/ctl_fleet/pfd_fix.c
		 ${pfd_dir})
find_program(RW_OBJCOPY objcopy REQUIRED)
add_custom_command(TARGET pfd_fix POST_BUILD
	COMMAND ${RW_OBJCOPY} --remove-section .note.gnu.build-id
		$<TARGET_FILE:pfd_fix> ${pfd_dir}/pfd_fix_noid.so
	VERBATIM)
target_sources(${RW_TEST_TARGET} PRIVATE
	${PROJECT_SOURCE_DIR}/src/ctl/wire.c
	${PROJECT_SOURCE_DIR}/src/ctl/fileid.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE
	${PROJECT_SOURCE_DIR}/src ${CMAKE_CURRENT_LIST_DIR}/ctl_fleet)
target_link_libraries(${RW_TEST_TARGET} PRIVATE PkgConfig::LIBELF)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE PFD_DIR="${pfd_dir}")
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 60)
