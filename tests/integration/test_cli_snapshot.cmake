# test_cli_snapshot: see test_cli_snapshot.sh. Its program, snap/snap_target.c,
# is built like a distribution builds programs (ft_flags.cmake) and linked to
# librewire; the rewire command and the cli programs' environment come from
# cli/cli.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
include(${RW_TEST_COMMON_DIR}/ft_flags.cmake)
if(NOT TARGET rw_snap_target)
	add_executable(rw_snap_target ${CMAKE_CURRENT_LIST_DIR}/snap/snap_target.c)
	set_target_properties(rw_snap_target PROPERTIES
		OUTPUT_NAME snap_target
		RUNTIME_OUTPUT_DIRECTORY ${RW_CLI_DIR})
	target_compile_definitions(rw_snap_target PRIVATE _GNU_SOURCE)
	target_compile_options(rw_snap_target PRIVATE "${RW_FT_DISTRO_FLAGS}")
	target_link_libraries(rw_snap_target PRIVATE rewire Threads::Threads)
	rewire_target_warnings(rw_snap_target)
endif()
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"SNAP_TARGET=$<TARGET_FILE:rw_snap_target>")
