# The coexistence tests of function tracing (test_ftc_*.c, issue 13
# point 4) share the traced code of this directory, built once:
#   libftc_lib.so   lib.c, linked to each test (links rewire: it defines a
#                   tracepoint and a static call)
#   ftc_dl.so       dl.c, dlopen'ed by test_ftc_dlopen
#   ftc_patch_leaf.so, ftc_patch_pair.so   live patches of libftc_lib.so
# all into ${CMAKE_CURRENT_BINARY_DIR}/ftc, passed to the tests as FTC_DIR.
# The two objects are built the way Debian builds a package: -O2,
# dpkg-buildflags with hardening=+all, plus -fcf-protection (endbr64 before
# the entry's NOPs) and -fstack-clash-protection where that dpkg does not
# add them yet, on top of rewire_target_patchable().
#
# Each test's hook includes this file and calls ftc_test().
include_guard(GLOBAL)

set(ftc_src ${CMAKE_CURRENT_LIST_DIR})
set(ftc_dir ${CMAKE_CURRENT_BINARY_DIR}/ftc)

# aarch64: -mbranch-protection=standard (BTI C before the entry's NOPs,
# PAC) where x86-64 has -fcf-protection.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	set(ftc_cf -mbranch-protection=standard)
else()
	set(ftc_cf -fcf-protection)
endif()
set(ftc_cflags -O2 -fstack-protector-strong -fstack-clash-protection
	       ${ftc_cf} -Wformat -Werror=format-security)
set(ftc_cppflags -D_FORTIFY_SOURCE=2)
set(ftc_ldflags -Wl,-z,relro -Wl,-z,now)
find_program(RW_DPKG_BUILDFLAGS dpkg-buildflags)
if(RW_DPKG_BUILDFLAGS)
	foreach(kind CFLAGS CPPFLAGS LDFLAGS)
		execute_process(COMMAND ${CMAKE_COMMAND} -E env
				DEB_BUILD_MAINT_OPTIONS=hardening=+all
				${RW_DPKG_BUILDFLAGS} --get ${kind}
				OUTPUT_VARIABLE flags
				OUTPUT_STRIP_TRAILING_WHITESPACE
				RESULT_VARIABLE rc)
		if(rc EQUAL 0)
			separate_arguments(flags UNIX_COMMAND "${flags}")
			list(FILTER flags EXCLUDE REGEX "^-specs=|^-fPIE$|^-pie$")
			string(TOLOWER ${kind} k)
			list(APPEND ftc_${k} ${flags})
		endif()
	endforeach()
endif()
list(REMOVE_DUPLICATES ftc_cflags)
list(REMOVE_DUPLICATES ftc_cppflags)
list(REMOVE_DUPLICATES ftc_ldflags)

add_library(ftc_lib SHARED ${ftc_src}/lib.c)
set_target_properties(ftc_lib PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ftc_dir})
target_link_libraries(ftc_lib PRIVATE rewire)

add_library(ftc_dl MODULE ${ftc_src}/dl.c)
set_target_properties(ftc_dl PROPERTIES
	PREFIX ""
	SUFFIX ".so"
	LIBRARY_OUTPUT_DIRECTORY ${ftc_dir})
target_include_directories(ftc_dl PRIVATE
	$<TARGET_PROPERTY:rewire,INTERFACE_INCLUDE_DIRECTORIES>)

foreach(t ftc_lib ftc_dl)
	target_include_directories(${t} PRIVATE ${ftc_src})
	target_compile_options(${t} PRIVATE ${ftc_cflags} ${ftc_cppflags})
	target_link_options(${t} PRIVATE ${ftc_ldflags})
	rewire_target_patchable(${t})
	rewire_target_warnings(${t})
endforeach()

foreach(p leaf pair)
	rewire_add_patch(ftc_patch_${p} ${ftc_src}/patch_${p}.c)
	set_target_properties(ftc_patch_${p} PROPERTIES
		LIBRARY_OUTPUT_DIRECTORY ${ftc_dir})
	target_include_directories(ftc_patch_${p} PRIVATE ${ftc_src})
	rewire_target_warnings(ftc_patch_${p})
endforeach()

# ftc_test(): the hook's test program (RW_TEST_TARGET) links libftc_lib.so,
# sees ftc.h and ftc_test.h, gets FTC_DIR, the label x86only, and
# LP_FRAME_POINTERS where the code keeps frame pointers (as rw_lp_test()).
# The program itself gets no patchable entries: the functions the tests
# trace are those of libftc_lib.so and ftc_dl.so, and a glob such as
# "ftc_set_*" must not also pick the test's own helpers.
function(ftc_test)
	get_target_property(dir ftc_lib LIBRARY_OUTPUT_DIRECTORY)
	target_include_directories(${RW_TEST_TARGET} PRIVATE
		${CMAKE_CURRENT_FUNCTION_LIST_DIR})
	target_link_libraries(${RW_TEST_TARGET} PRIVATE ftc_lib)
	add_dependencies(${RW_TEST_TARGET} ftc_dl ftc_patch_leaf
			 ftc_patch_pair)
	target_compile_definitions(${RW_TEST_TARGET} PRIVATE FTC_DIR="${dir}")
	set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
	if(REWIRE_SANITIZE OR CMAKE_C_FLAGS MATCHES "fno-omit-frame-pointer")
		target_compile_definitions(${RW_TEST_TARGET} PRIVATE
			LP_FRAME_POINTERS=1)
	endif()
endfunction()
