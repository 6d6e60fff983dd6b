# Live patching helpers (doc/LIVEPATCH.md). Included by rewireConfig.cmake
# for installed users and by rewire's own build.
#
#   rewire_target_patchable(<target>)
#       Build <target>'s functions with a patchable entry
#       (-fpatchable-function-entry=5): five NOP bytes at every function
#       entry, recorded in __patchable_function_entries, that rewire
#       turns into a jump. Costs one 5-byte NOP run per call.
#
#   rewire_add_patch(<name> <source>...)
#       A live patch: a MODULE library <name>.so (no "lib" prefix) built
#       from the fixed functions' source with rewire's headers. It does
#       not link librewire; the program that loads it does.
#       Same as: cc -O2 -fPIC -shared -I<rewire>/include -o name.so src.c

set(REWIRE_PATCHABLE_FLAGS -fpatchable-function-entry=5)

function(rewire_target_patchable target)
	target_compile_options(${target} PRIVATE ${REWIRE_PATCHABLE_FLAGS})
endfunction()

function(rewire_add_patch name)
	if(NOT ARGN)
		message(FATAL_ERROR "rewire_add_patch(${name}): no source files")
	endif()
	add_library(${name} MODULE ${ARGN})
	set_target_properties(${name} PROPERTIES PREFIX "" SUFFIX ".so")
	if(TARGET rewire::rewire)
		target_include_directories(${name} PRIVATE
			$<TARGET_PROPERTY:rewire::rewire,INTERFACE_INCLUDE_DIRECTORIES>)
	elseif(TARGET rewire)
		target_include_directories(${name} PRIVATE
			$<TARGET_PROPERTY:rewire,INTERFACE_INCLUDE_DIRECTORIES>)
	endif()
endfunction()
