# test_ctl_patch_dir: see test_ctl_patch_dir.sh. It restarts examples/kv's
# rw-kvserver with a patch directory. Built here, in
# ${CMAKE_CURRENT_BINARY_DIR}/ctl_fleet:
#   pd_kvother       rw-kvserver's source with another build-id (another
#                    build of the same program)
#   pd_fix_other.so  examples/kv/patches/fix_value.c bound to pd_kvother
#   pd_fix_unbound.so  the same fix, bound to nothing
#   ctl_query        prints the server's PATCH_DIR, PATCH and TRACE_SESSION
#                    fields (compiles src/ctl/wire.c)
# The programs and the commands come in the environment.
include(${CMAKE_CURRENT_LIST_DIR}/cli/cli.cmake)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 120)
if(TARGET rw-kvserver AND TARGET fix_value)
	set(pd_dir ${CMAKE_CURRENT_BINARY_DIR}/ctl_fleet)
	set(kv_src ${PROJECT_SOURCE_DIR}/examples/kv)
	add_executable(pd_kvother ${CMAKE_CURRENT_LIST_DIR}/ctl_fleet/kvother.c)
	set_target_properties(pd_kvother PROPERTIES
		RUNTIME_OUTPUT_DIRECTORY ${pd_dir})
	target_compile_definitions(pd_kvother PRIVATE _GNU_SOURCE)
	target_link_options(pd_kvother PRIVATE
		-Wl,--build-id=0x0123456789abcdef)
	target_link_libraries(pd_kvother PRIVATE rewire Threads::Threads
			      ${CMAKE_DL_LIBS})
	rewire_target_warnings(pd_kvother)
	rewire_target_patchable(pd_kvother)
	rewire_add_patch(pd_fix_other ${kv_src}/patches/fix_value.c
			 BIND pd_kvother)
	rewire_add_patch(pd_fix_unbound ${kv_src}/patches/fix_value.c)
	add_executable(pd_ctl_query ${CMAKE_CURRENT_LIST_DIR}/ctl_fleet/ctl_query.c
		       ${PROJECT_SOURCE_DIR}/src/ctl/wire.c)
	set_target_properties(pd_ctl_query PROPERTIES
		OUTPUT_NAME ctl_query RUNTIME_OUTPUT_DIRECTORY ${pd_dir})
	target_compile_definitions(pd_ctl_query PRIVATE _GNU_SOURCE)
	target_include_directories(pd_ctl_query PRIVATE
				   ${PROJECT_SOURCE_DIR}/src)
	rewire_target_warnings(pd_ctl_query)
	foreach(t pd_fix_other pd_fix_unbound)
		set_target_properties(${t} PROPERTIES
			LIBRARY_OUTPUT_DIRECTORY ${pd_dir})
		rewire_target_warnings(${t})
	endforeach()
	set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
		"KV_SERVER=$<TARGET_FILE:rw-kvserver>"
		"KV_FIX=$<TARGET_FILE:fix_value>"
		"PD_FIX_OTHER=$<TARGET_FILE:pd_fix_other>"
		"PD_FIX_UNBOUND=$<TARGET_FILE:pd_fix_unbound>"
		"PD_QUERY=$<TARGET_FILE:pd_ctl_query>"
		"PD_SRC=${CMAKE_CURRENT_LIST_DIR}/ctl_fleet")
endif()
