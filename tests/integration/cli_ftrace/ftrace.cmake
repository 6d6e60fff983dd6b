# Shared by test_cli_ftrace.cmake and test_cli_funccount.cmake: the
# programs that `rewire trace --function`, funccount, funclatency and `ls
# --functions` are tested against, built once, the way a distribution
# builds a program (-O2 and dpkg-buildflags' CFLAGS/CXXFLAGS: fortify,
# stack protector, -fcf-protection) and patchable
# (rewire_target_patchable(); ft_target's entries rewritten by
# rewire-entries, ft_target_cxx's left as GCC makes them), linked to
# librewire (REWIRE_CTL=1 starts their control server).
#
#   ft_target      ft_target.c
#   ft_target_cxx  ft_target_cxx.cc
#
# The test gets REWIRE_TOOL, CLI_TARGET (ft_target), FT_TARGET_CXX and
# CLI_BACKEND in its environment.
set(RW_FT_DIR ${CMAKE_CURRENT_BINARY_DIR}/cli_ftrace)
if(NOT TARGET rw_ft_target)
	set(rw_ft_src ${CMAKE_CURRENT_LIST_DIR})
	find_program(RW_DPKG_BUILDFLAGS dpkg-buildflags)
	set(rw_ft_cflags "-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fcf-protection -D_FORTIFY_SOURCE=2")
	set(rw_ft_cxxflags "${rw_ft_cflags}")
	if(RW_DPKG_BUILDFLAGS)
		execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CFLAGS
			OUTPUT_VARIABLE rw_ft_cflags
			OUTPUT_STRIP_TRAILING_WHITESPACE)
		execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CXXFLAGS
			OUTPUT_VARIABLE rw_ft_cxxflags
			OUTPUT_STRIP_TRAILING_WHITESPACE)
		execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CPPFLAGS
			OUTPUT_VARIABLE rw_ft_cppflags
			OUTPUT_STRIP_TRAILING_WHITESPACE)
		# Debian's amd64 flags (newer dpkg adds -fcf-protection
		# itself; twice is harmless).
		string(APPEND rw_ft_cflags " ${rw_ft_cppflags} -fcf-protection")
		string(APPEND rw_ft_cxxflags " ${rw_ft_cppflags} -fcf-protection")
	endif()
	separate_arguments(rw_ft_cflags UNIX_COMMAND "${rw_ft_cflags}")
	separate_arguments(rw_ft_cxxflags UNIX_COMMAND "${rw_ft_cxxflags}")

	add_executable(rw_ft_target ${rw_ft_src}/ft_target.c)
	target_compile_options(rw_ft_target PRIVATE ${rw_ft_cflags})
	add_executable(rw_ft_target_cxx ${rw_ft_src}/ft_target_cxx.cc)
	target_compile_options(rw_ft_target_cxx PRIVATE ${rw_ft_cxxflags})
	foreach(t rw_ft_target rw_ft_target_cxx)
		string(REPLACE "rw_" "" out ${t})
		set_target_properties(${t} PROPERTIES
			OUTPUT_NAME ${out}
			RUNTIME_OUTPUT_DIRECTORY ${RW_FT_DIR})
		target_compile_definitions(${t} PRIVATE _GNU_SOURCE)
		target_link_libraries(${t} PRIVATE rewire Threads::Threads)
	endforeach()
	# The C program's entries are rewritten to one 5-byte NOP after the
	# link, as rewire_target_patchable() does outside rewire's tests; the
	# C++ one keeps GCC's five 1-byte NOPs (a build without
	# rewire-entries): both forms are traced.
	rewire_target_patchable(rw_ft_target FIX_ENTRIES)
	rewire_target_patchable(rw_ft_target_cxx)
	rewire_target_warnings(rw_ft_target)
endif()

set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"REWIRE_TOOL=$<TARGET_FILE:rewire-cli>"
	"CLI_TARGET=$<TARGET_FILE:rw_ft_target>"
	"FT_TARGET_CXX=$<TARGET_FILE:rw_ft_target_cxx>"
	"CLI_BACKEND=${REWIRE_BACKEND_RESOLVED}")
