# test_lp_badinput: the live-patch loader (src/livepatch/elf.c) refuses bad
# patches with the right error and leaves the program as it was.
#
# The test calls the loader directly (rw__lp_load), so it links the static
# library and sees src/. Its own code is patchable. The patches it loads and
# a stripped object are built into ${LPB_DIR}, passed as LPB_DIR.
set(lpb_src ${CMAKE_CURRENT_LIST_DIR}/lp_badinput)
set(lpb_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_badinput)

target_sources(${RW_TEST_TARGET} PRIVATE ${lpb_src}/helper2.c)
set_property(TARGET ${RW_TEST_TARGET} PROPERTY LINK_LIBRARIES
	     rewire_static Threads::Threads ${CMAKE_DL_LIBS})
target_include_directories(${RW_TEST_TARGET} PRIVATE
			   ${CMAKE_SOURCE_DIR}/src ${lpb_src})
target_compile_definitions(${RW_TEST_TARGET} PRIVATE LPB_DIR="${lpb_dir}")
rw_lp_test()

# A patchable object, and lpb_dso_stripped.so: a copy without .symtab.
if(NOT CMAKE_STRIP)
	find_program(CMAKE_STRIP strip REQUIRED)
endif()
add_library(lpb_stripdso MODULE ${lpb_src}/stripdso.c)
set_target_properties(lpb_stripdso PROPERTIES
	PREFIX "" SUFFIX ".so"
	LIBRARY_OUTPUT_DIRECTORY ${lpb_dir})
rewire_target_patchable(lpb_stripdso)
rewire_target_warnings(lpb_stripdso)
add_custom_command(TARGET lpb_stripdso POST_BUILD
	COMMAND ${CMAKE_STRIP} -o ${lpb_dir}/lpb_dso_stripped.so
		$<TARGET_FILE:lpb_stripdso>
	VERBATIM)
add_dependencies(${RW_TEST_TARGET} lpb_stripdso)

# One patch per bad input (see each source's comment).
foreach(p good missing ambig ambig_pos badpos stripped noobj nopfe sized
	  twice notfunc badref v2 nonote)
	rw_lp_test_patch(lpb_${p} ${lpb_src}/patch_${p}.c ${lpb_dir})
endforeach()

# lpb_good_stripped.so: the good patch without .symtab, so that its static
# new function has no size: refused (a thread inside it could not be seen).
add_custom_command(TARGET lpb_good POST_BUILD
	COMMAND ${CMAKE_STRIP} -o ${lpb_dir}/lpb_good_stripped.so
		$<TARGET_FILE:lpb_good>
	VERBATIM)

# lpb_ctor.so and lpb_dtor.so call rw_patch_load and rw_patch_unload from
# their constructor and destructor: those resolve in the test program, which
# exports its symbols (with lpb_nested_*, where the patches report).
set_property(TARGET ${RW_TEST_TARGET} PROPERTY ENABLE_EXPORTS ON)
foreach(p ctor dtor)
	rw_lp_test_patch(lpb_${p} ${lpb_src}/patch_${p}.c ${lpb_dir})
	target_compile_definitions(lpb_${p} PRIVATE LPB_DIR="${lpb_dir}")
endforeach()
