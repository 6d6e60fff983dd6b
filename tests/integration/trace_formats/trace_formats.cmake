# test_trace_formats (test_trace_formats.sh): the programs it runs, built
# once into ${CMAKE_CURRENT_BINARY_DIR}/trace_formats:
#
#   sink_feed  sink_feed.c with the rewire command's CTF and Chrome sinks
#              (tools/rewire/trace_ctf.c, trace_chrome.c): a synthetic
#              session fed to them directly
#   tf_target  tf_target.c: tracepoints of every argument kind and
#              functions to trace, built the way a distribution builds a
#              program (-O2 and dpkg-buildflags' flags) and patchable,
#              linked to librewire
#
# The test gets REWIRE_TOOL, SINK_FEED, CLI_TARGET (tf_target) and
# CLI_BACKEND in its environment.
set(RW_TF_DIR ${CMAKE_CURRENT_BINARY_DIR}/trace_formats)
if(NOT TARGET rw_tf_target)
	set(rw_tf_src ${CMAKE_CURRENT_LIST_DIR})

	add_executable(rw_sink_feed ${rw_tf_src}/sink_feed.c
		${PROJECT_SOURCE_DIR}/tools/rewire/trace_ctf.c
		${PROJECT_SOURCE_DIR}/tools/rewire/trace_chrome.c)
	set_target_properties(rw_sink_feed PROPERTIES
		OUTPUT_NAME sink_feed
		RUNTIME_OUTPUT_DIRECTORY ${RW_TF_DIR})
	target_compile_definitions(rw_sink_feed PRIVATE _GNU_SOURCE)
	target_include_directories(rw_sink_feed PRIVATE
		${PROJECT_SOURCE_DIR}/src
		${PROJECT_SOURCE_DIR}/tools/rewire)
	target_link_libraries(rw_sink_feed PRIVATE m)
	rewire_target_warnings(rw_sink_feed)

	find_program(RW_DPKG_BUILDFLAGS dpkg-buildflags)
	set(rw_tf_cflags "-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fcf-protection -D_FORTIFY_SOURCE=2")
	if(RW_DPKG_BUILDFLAGS)
		execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CFLAGS
			OUTPUT_VARIABLE rw_tf_cflags
			OUTPUT_STRIP_TRAILING_WHITESPACE)
		execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CPPFLAGS
			OUTPUT_VARIABLE rw_tf_cppflags
			OUTPUT_STRIP_TRAILING_WHITESPACE)
		string(APPEND rw_tf_cflags " ${rw_tf_cppflags} -fcf-protection")
	endif()
	separate_arguments(rw_tf_cflags UNIX_COMMAND "${rw_tf_cflags}")
	add_executable(rw_tf_target ${rw_tf_src}/tf_target.c)
	target_compile_options(rw_tf_target PRIVATE ${rw_tf_cflags})
	set_target_properties(rw_tf_target PROPERTIES
		OUTPUT_NAME tf_target
		RUNTIME_OUTPUT_DIRECTORY ${RW_TF_DIR})
	target_compile_definitions(rw_tf_target PRIVATE _GNU_SOURCE)
	target_link_libraries(rw_tf_target PRIVATE rewire Threads::Threads m)
	rewire_target_patchable(rw_tf_target FIX_ENTRIES)
	rewire_target_warnings(rw_tf_target)
endif()

set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"REWIRE_TOOL=$<TARGET_FILE:rewire-cli>"
	"SINK_FEED=$<TARGET_FILE:rw_sink_feed>"
	"CLI_TARGET=$<TARGET_FILE:rw_tf_target>"
	"CLI_BACKEND=${REWIRE_BACKEND_RESOLVED}")
