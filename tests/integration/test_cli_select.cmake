# test_cli_select: see test_cli_select.sh. The programs it selects among,
# select/sel_target.c built twice (sel_target_a with -DSEL_FLAVOUR_A, and
# sel_target_b: two programs, two build-ids) the way a distribution builds
# a program (-O2 and dpkg-buildflags' CFLAGS and CPPFLAGS: fortify, stack
# protector, -fcf-protection), linked to librewire, with patchable entries;
# and sel_fix.so, a live patch bound to sel_target_a's build. The test gets
# REWIRE_TOOL, CLI_TARGET (sel_target_a), SEL_TARGET_B and SEL_FIX.
set(RW_SEL_DIR ${CMAKE_CURRENT_BINARY_DIR}/select)
if(NOT TARGET rw_sel_target_a)
	include(${RW_TEST_COMMON_DIR}/ft_flags.cmake)
	foreach(flavour a b)
		set(tgt rw_sel_target_${flavour})
		add_executable(${tgt}
			${CMAKE_CURRENT_LIST_DIR}/select/sel_target.c)
		target_compile_options(${tgt} PRIVATE "${RW_FT_DISTRO_FLAGS}")
		set_target_properties(${tgt} PROPERTIES
			OUTPUT_NAME sel_target_${flavour}
			RUNTIME_OUTPUT_DIRECTORY ${RW_SEL_DIR})
		target_compile_definitions(${tgt} PRIVATE _GNU_SOURCE)
		target_link_libraries(${tgt} PRIVATE rewire)
		rewire_target_warnings(${tgt})
		rewire_target_patchable(${tgt})
	endforeach()
	target_compile_definitions(rw_sel_target_a PRIVATE SEL_FLAVOUR_A)
	rewire_add_patch(sel_fix ${CMAKE_CURRENT_LIST_DIR}/select/sel_fix.c
			 BIND rw_sel_target_a)
	set_target_properties(sel_fix PROPERTIES
		LIBRARY_OUTPUT_DIRECTORY ${RW_SEL_DIR})
	rewire_target_warnings(sel_fix)
endif()

set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"REWIRE_TOOL=$<TARGET_FILE:rewire-cli>"
	"CLI_TARGET=$<TARGET_FILE:rw_sel_target_a>"
	"SEL_TARGET_B=$<TARGET_FILE:rw_sel_target_b>"
	"SEL_FIX=$<TARGET_FILE:sel_fix>"
	"SEL_BACKEND=${REWIRE_BACKEND_RESOLVED}")
# Its processes are selected with --all: it runs alone in a pid namespace
# of its own (as root), and takes a minute at most.
set_property(TEST ${RW_TEST_NAME} PROPERTY TIMEOUT 120)
