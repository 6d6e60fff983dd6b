# test_ftrace_inlined: function tracing says which functions are inlined
# (issue 13, point 5). The library ftrace_inlined/fti_dso.c is built as
# Debian builds it (dpkg-buildflags' hardening flags, -O2) three times:
# fti_dbg.so (-g, its DWARF then moved to a separate file named by
# .gnu_debuglink), fti_inobj.so (-g) and fti_nodbg.so (-g0), into
# ${fti_dir}, passed as FTI_DIR.
set(fti_src ${CMAKE_CURRENT_LIST_DIR}/ftrace_inlined)
set(fti_dir ${CMAKE_CURRENT_BINARY_DIR}/ftrace_inlined)

set(fti_distro_flags -fstack-protector-strong -fcf-protection
    -Wformat -Werror=format-security)
if(NOT REWIRE_SANITIZE)
	# _FORTIFY_SOURCE needs optimisation, which sanitizer builds may lack.
	list(APPEND fti_distro_flags -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2)
endif()

rw_lp_test()
target_compile_options(${RW_TEST_TARGET} PRIVATE -O2 -g ${fti_distro_flags})
target_compile_definitions(${RW_TEST_TARGET} PRIVATE FTI_DIR="${fti_dir}")

if(NOT CMAKE_OBJCOPY)
	find_program(CMAKE_OBJCOPY objcopy REQUIRED)
endif()
foreach(v dbg inobj nodbg)
	add_library(fti_${v} MODULE ${fti_src}/fti_dso.c)
	set_target_properties(fti_${v} PROPERTIES
		PREFIX "" SUFFIX ".so"
		LIBRARY_OUTPUT_DIRECTORY ${fti_dir})
	rewire_target_patchable(fti_${v})
	rewire_target_warnings(fti_${v})
	add_dependencies(${RW_TEST_TARGET} fti_${v})
endforeach()
target_compile_options(fti_dbg PRIVATE -O2 -g ${fti_distro_flags})
target_compile_options(fti_inobj PRIVATE -O2 -g ${fti_distro_flags})
target_compile_options(fti_nodbg PRIVATE -O2 -g0 ${fti_distro_flags})
add_custom_command(TARGET fti_dbg POST_BUILD
	COMMAND ${CMAKE_OBJCOPY} --only-keep-debug fti_dbg.so fti_dbg.so.debug
	COMMAND ${CMAKE_OBJCOPY} --strip-debug
		--add-gnu-debuglink=fti_dbg.so.debug fti_dbg.so
	WORKING_DIRECTORY ${fti_dir}
	VERBATIM)
