# Shared by the fleet tests' hooks (tests/integration/test_fleet_*.cmake)
# and used by bench/fleet_apply.sh: the programs of a fleet, built once
# into ${CMAKE_CURRENT_BINARY_DIR}/fleet.
#
#   fleet_target    fleet/fleet_target.c built the way a distribution
#                   builds a program (-O2 and dpkg-buildflags' CFLAGS and
#                   CPPFLAGS: fortify, stack protector, -fcf-protection),
#                   with patchable entries, linked to librewire
#   fleet_target_b  the same source, another build (FLEET_BUILD=2)
#   fleet_fix.so    fleet/fleet_fix.c, bound to fleet_target's build
#
# The test gets REWIRE_TOOL, FLEET_TARGET, FLEET_TARGET_B, FLEET_PATCH and
# FLEET_BACKEND in its environment.
set(RW_FLEET_DIR ${CMAKE_CURRENT_BINARY_DIR}/fleet)
if(NOT TARGET rw_fleet_target)
	set(rw_fleet_src ${CMAKE_CURRENT_LIST_DIR})
	# Debian's flags, as the function tracing tests build their code.
	include(${RW_TEST_COMMON_DIR}/ft_flags.cmake)

	foreach(b 1 2)
		if(b EQUAL 1)
			set(tgt rw_fleet_target)
			set(out fleet_target)
		else()
			set(tgt rw_fleet_target_b)
			set(out fleet_target_b)
		endif()
		add_executable(${tgt} ${rw_fleet_src}/fleet_target.c)
		target_compile_options(${tgt} PRIVATE "${RW_FT_DISTRO_FLAGS}")
		target_compile_definitions(${tgt} PRIVATE _GNU_SOURCE
					   FLEET_BUILD=${b})
		set_target_properties(${tgt} PROPERTIES
			OUTPUT_NAME ${out}
			RUNTIME_OUTPUT_DIRECTORY ${RW_FLEET_DIR})
		target_link_libraries(${tgt} PRIVATE rewire Threads::Threads)
		rewire_target_warnings(${tgt})
		rewire_target_patchable(${tgt})
	endforeach()

	rewire_add_patch(fleet_fix ${rw_fleet_src}/fleet_fix.c
			 BIND rw_fleet_target)
	set_target_properties(fleet_fix PROPERTIES
		LIBRARY_OUTPUT_DIRECTORY ${RW_FLEET_DIR})
	rewire_target_warnings(fleet_fix)
	add_dependencies(rw_fleet_target_b fleet_fix)
endif()

set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"REWIRE_TOOL=$<TARGET_FILE:rewire-cli>"
	"FLEET_TARGET=$<TARGET_FILE:rw_fleet_target>"
	"FLEET_TARGET_B=$<TARGET_FILE:rw_fleet_target_b>"
	"FLEET_PATCH=${RW_FLEET_DIR}/fleet_fix.so"
	"FLEET_BACKEND=${REWIRE_BACKEND_RESOLVED}")
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
