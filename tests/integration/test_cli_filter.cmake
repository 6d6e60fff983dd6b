# test_cli_filter: see test_cli_filter.sh. The program it traces,
# cli_filter/filter_target.c, is built the way a distribution builds a
# program (-O2 and dpkg-buildflags' CFLAGS and CPPFLAGS: fortify, stack
# protector, -fcf-protection) and linked to librewire. The test gets
# REWIRE_TOOL and CLI_TARGET (filter_target) in its environment.
set(RW_FLT_DIR ${CMAKE_CURRENT_BINARY_DIR}/cli_filter)
if(NOT TARGET rw_filter_target)
	find_program(RW_DPKG_BUILDFLAGS dpkg-buildflags)
	set(rw_flt_cflags "-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fcf-protection -D_FORTIFY_SOURCE=2")
	if(RW_DPKG_BUILDFLAGS)
		execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CFLAGS
			OUTPUT_VARIABLE rw_flt_cflags
			OUTPUT_STRIP_TRAILING_WHITESPACE)
		execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CPPFLAGS
			OUTPUT_VARIABLE rw_flt_cppflags
			OUTPUT_STRIP_TRAILING_WHITESPACE)
		string(APPEND rw_flt_cflags " ${rw_flt_cppflags} -fcf-protection")
	endif()
	separate_arguments(rw_flt_cflags UNIX_COMMAND "${rw_flt_cflags}")
	add_executable(rw_filter_target
		${CMAKE_CURRENT_LIST_DIR}/cli_filter/filter_target.c)
	target_compile_options(rw_filter_target PRIVATE ${rw_flt_cflags})
	set_target_properties(rw_filter_target PROPERTIES
		OUTPUT_NAME filter_target
		RUNTIME_OUTPUT_DIRECTORY ${RW_FLT_DIR})
	target_compile_definitions(rw_filter_target PRIVATE _GNU_SOURCE)
	target_link_libraries(rw_filter_target PRIVATE rewire Threads::Threads)
	rewire_target_warnings(rw_filter_target)
endif()

set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"REWIRE_TOOL=$<TARGET_FILE:rewire-cli>"
	"CLI_TARGET=$<TARGET_FILE:rw_filter_target>")
