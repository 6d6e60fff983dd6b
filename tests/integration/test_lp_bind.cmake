# test_lp_bind: a patch bound to a build (.rewire.bind, written by
# `rewire bind-patch` through rewire_add_patch(... BIND <target>)) loads
# into that build only. The driver (test_lp_bind.c) runs the programs
# built here from lp_bind/prog.c, each loading one patch (LPBD_DIR):
#
#   lpbd_prog_a  build-id 0a0a0a0a0a0a0a0a        lpbd_a.so is bound to it
#   lpbd_prog_b  build-id 0b0b0b0b0b0b0b0b, else the same as A
#   lpbd_prog_c  no build-id, compute() has one more instruction
#   lpbd_prog_d  no build-id, compute() as in A   lpbd_d.so is bound to it
#
# lpbd_libfix.so is bound to lpbd_lib.so, a library none of them loads;
# lpbd_bad_*.so are lpbd_a.so with a malformed binding (lp_bind/*.bind).
# The programs are built like distributions build them.
set(lpbd_src ${CMAKE_CURRENT_LIST_DIR}/lp_bind)
set(lpbd_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_bind)

target_compile_definitions(${RW_TEST_TARGET} PRIVATE LPBD_DIR="${lpbd_dir}")
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)

set(lpbd_ids a 0x0a0a0a0a0a0a0a0a b 0x0b0b0b0b0b0b0b0b c none d none)
foreach(p a b c d)
	list(FIND lpbd_ids ${p} i)
	math(EXPR i "${i} + 1")
	list(GET lpbd_ids ${i} id)
	add_executable(lpbd_prog_${p} ${lpbd_src}/prog.c)
	set_target_properties(lpbd_prog_${p} PROPERTIES
		RUNTIME_OUTPUT_DIRECTORY ${lpbd_dir})
	target_include_directories(lpbd_prog_${p} PRIVATE ${RW_TEST_COMMON_DIR})
	target_compile_definitions(lpbd_prog_${p} PRIVATE _GNU_SOURCE)
	target_compile_options(lpbd_prog_${p} PRIVATE -O2
		-fstack-protector-strong -fcf-protection
		$<$<NOT:$<BOOL:${REWIRE_SANITIZE}>>:-D_FORTIFY_SOURCE=2>)
	target_link_options(lpbd_prog_${p} PRIVATE -Wl,--build-id=${id})
	target_link_libraries(lpbd_prog_${p} PRIVATE rewire Threads::Threads
			      ${CMAKE_DL_LIBS})
	rewire_target_warnings(lpbd_prog_${p})
	rewire_target_patchable(lpbd_prog_${p})
	add_dependencies(${RW_TEST_TARGET} lpbd_prog_${p})
endforeach()
target_compile_definitions(lpbd_prog_c PRIVATE LPBD_CHANGED)

add_library(lpbd_libdso MODULE ${lpbd_src}/lib.c)
set_target_properties(lpbd_libdso PROPERTIES PREFIX "" SUFFIX ".so"
	OUTPUT_NAME lpbd_lib LIBRARY_OUTPUT_DIRECTORY ${lpbd_dir})
rewire_target_patchable(lpbd_libdso)

foreach(p a d libfix)
	if(p STREQUAL "libfix")
		set(src ${lpbd_src}/patch_lib.c)
		set(bind lpbd_libdso)
	else()
		set(src ${lpbd_src}/patch.c)
		set(bind lpbd_prog_${p})
	endif()
	rewire_add_patch(lpbd_${p} ${src} BIND ${bind})
	set_target_properties(lpbd_${p} PROPERTIES
		LIBRARY_OUTPUT_DIRECTORY ${lpbd_dir})
	rewire_target_warnings(lpbd_${p})
	add_dependencies(${RW_TEST_TARGET} lpbd_${p})
endforeach()

# Malformed bindings: lpbd_a.so with another .rewire.bind.
find_program(RW_OBJCOPY objcopy REQUIRED)
foreach(bad version record hex escape)
	add_custom_command(TARGET lpbd_a POST_BUILD
		COMMAND ${RW_OBJCOPY} --remove-section .rewire.bind
			--add-section .rewire.bind=${lpbd_src}/bad_${bad}.bind
			--set-section-flags .rewire.bind=readonly
			$<TARGET_FILE:lpbd_a> ${lpbd_dir}/lpbd_bad_${bad}.so
		VERBATIM)
endforeach()
