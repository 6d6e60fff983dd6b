# test_lp_inlined: a patch of a function that GCC inlined into callers is
# refused, naming them (issue 12, point 2). Built as Debian builds
# (dpkg-buildflags' hardening flags). The program and lpi_dbg.so are
# built -O2 -g (lpi_dbg.so's DWARF then moved to a separate file named by
# .gnu_debuglink), lpi_nodbg.so -O2 -g0. Patches and objects go to
# ${lpi_dir}, passed as LPI_DIR.
set(lpi_src ${CMAKE_CURRENT_LIST_DIR}/lp_inlined)
set(lpi_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_inlined)

set(lpi_distro_flags -fstack-protector-strong -fcf-protection
    -Wformat -Werror=format-security)
if(NOT REWIRE_SANITIZE)
	# _FORTIFY_SOURCE needs optimisation, which sanitizer builds may lack.
	list(APPEND lpi_distro_flags -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2)
endif()

rw_lp_test()
target_compile_options(${RW_TEST_TARGET} PRIVATE -O2 -g ${lpi_distro_flags})
target_include_directories(${RW_TEST_TARGET} PRIVATE ${lpi_src})
target_compile_definitions(${RW_TEST_TARGET} PRIVATE LPI_DIR="${lpi_dir}"
	REWIRE_TOOL="$<TARGET_FILE:rewire-cli>")
add_dependencies(${RW_TEST_TARGET} rewire-cli)

if(NOT CMAKE_OBJCOPY)
	find_program(CMAKE_OBJCOPY objcopy REQUIRED)
endif()
foreach(v dbg nodbg)
	add_library(lpi_${v} MODULE ${lpi_src}/lpi_dso.c)
	set_target_properties(lpi_${v} PROPERTIES
		PREFIX "" SUFFIX ".so"
		LIBRARY_OUTPUT_DIRECTORY ${lpi_dir})
	rewire_target_patchable(lpi_${v})
	rewire_target_warnings(lpi_${v})
	add_dependencies(${RW_TEST_TARGET} lpi_${v})
endforeach()
target_compile_options(lpi_dbg PRIVATE -O2 -g ${lpi_distro_flags})
target_compile_options(lpi_nodbg PRIVATE -O2 -g0 ${lpi_distro_flags})
add_custom_command(TARGET lpi_dbg POST_BUILD
	COMMAND ${CMAKE_OBJCOPY} --only-keep-debug lpi_dbg.so lpi_dbg.so.debug
	COMMAND ${CMAKE_OBJCOPY} --strip-debug
		--add-gnu-debuglink=lpi_dbg.so.debug lpi_dbg.so
	WORKING_DIRECTORY ${lpi_dir}
	VERBATIM)

foreach(p scale all)
	rw_lp_test_patch(lpi_${p} ${lpi_src}/patch_${p}.c ${lpi_dir})
endforeach()
rw_lp_test_patch(lpi_dscale_dbg ${lpi_src}/patch_dscale.c ${lpi_dir})
rw_lp_test_patch(lpi_dscale_nodbg ${lpi_src}/patch_dscale.c ${lpi_dir})
target_compile_definitions(lpi_dscale_nodbg PRIVATE LPI_NODBG=1)
