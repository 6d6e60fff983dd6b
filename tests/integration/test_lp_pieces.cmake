# test_lp_pieces: GCC's pieces and clones of real -O2 code (NAME.cold,
# NAME.constprop.N) in the consistency model and in name resolution, the
# unload check over a patch's whole code, and the pins on the objects a
# patch's references point into.
#
# liblpp_lib.so (linked to the test), the patches and lpp_refdso.so (dlopen'ed
# by the test) are built with Debian's flags (dpkg-buildflags), so that
# GCC makes the pieces a distribution's build has; the test checks with nm
# that they exist. The library gets -fpatchable-function-entry=5 only:
# -flive-patching=inline-only-static would keep GCC from making the clone.
set(lpp_src ${CMAKE_CURRENT_LIST_DIR}/lp_pieces)
set(lpp_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_pieces)

find_program(RW_DPKG_BUILDFLAGS dpkg-buildflags)
set(lpp_cflags "-g -O2 -fstack-protector-strong -Wformat -Werror=format-security")
set(lpp_cxxflags "${lpp_cflags}")
if(RW_DPKG_BUILDFLAGS)
	execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CFLAGS
		OUTPUT_VARIABLE lpp_cflags OUTPUT_STRIP_TRAILING_WHITESPACE)
	execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CXXFLAGS
		OUTPUT_VARIABLE lpp_cxxflags OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()
# GCC 12 splits .cold pieces at -O2 on x86-64, not on aarch64 (there
# -freorder-blocks-and-partition is off unless asked for, or profile
# feedback turns it on): ask, so that aarch64 has the pieces to test.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	string(APPEND lpp_cflags " -freorder-blocks-and-partition")
	string(APPEND lpp_cxxflags " -freorder-blocks-and-partition")
endif()
separate_arguments(lpp_cflags UNIX_COMMAND "${lpp_cflags}")
separate_arguments(lpp_cxxflags UNIX_COMMAND "${lpp_cxxflags}")
set(lpp_flags $<$<COMPILE_LANGUAGE:C>:${lpp_cflags}>
	$<$<COMPILE_LANGUAGE:CXX>:${lpp_cxxflags}>)

add_library(lpp_lib SHARED ${lpp_src}/lib.c)
set_target_properties(lpp_lib PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${lpp_dir})
target_compile_options(lpp_lib PRIVATE "${lpp_flags}" ${REWIRE_PATCHABLE_FLAGS})
rewire_target_warnings(lpp_lib)

add_library(lpp_refdso MODULE ${lpp_src}/ref.c)
set_target_properties(lpp_refdso PROPERTIES
	PREFIX ""
	SUFFIX ".so"
	LIBRARY_OUTPUT_DIRECTORY ${lpp_dir})
rewire_target_warnings(lpp_refdso)

find_program(RW_NM nm)
target_include_directories(${RW_TEST_TARGET} PRIVATE ${lpp_src})
target_link_libraries(${RW_TEST_TARGET} PRIVATE lpp_lib)
add_dependencies(${RW_TEST_TARGET} lpp_refdso)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LPP_DIR="${lpp_dir}"
	LPP_NM="${RW_NM}"
	$<$<C_COMPILER_ID:GNU>:LPP_GCC=1>)
rw_lp_test()

foreach(p cold unload ref clone_base clone_bad)
	rw_lp_test_patch(lpp_${p} ${lpp_src}/patch_${p}.c ${lpp_dir})
	target_include_directories(lpp_${p} PRIVATE ${lpp_src})
	target_compile_options(lpp_${p} PRIVATE "${lpp_flags}")
endforeach()
rw_lp_test_patch(lpp_clone_ok ${lpp_src}/patch_clone_ok.cc ${lpp_dir})
target_compile_options(lpp_clone_ok PRIVATE "${lpp_flags}")
