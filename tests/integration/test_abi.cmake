# test_abi: see test_abi.sh and scripts/abi-check.sh.
#
# The self-test's mutants: copies of librewire.so, each broken (or grown)
# in one way, built from the library's own objects so that they cost one
# compile and a few links. Each is tests/abi_mutants/<name>/librewire.so:
#   struct     struct rw_text_stats gains a first field (src/text_poke.c is
#              compiled against a changed copy of rewire/text_poke.h)
#   removed    rw_text_get_stats is no longer exported
#   added      a new function in a new node, REWIRE_999.0 (compatible)
#   added_old  the same function in REWIRE_0.1, a node of the baseline
#   soname     SONAME librewire.so.1 and rw_text_get_stats removed
# Only where the check runs: the patching backend without sanitizers.
if(NOT REWIRE_SANITIZE AND REWIRE_BACKEND_RESOLVED STREQUAL "x86_64")
	set(mut_dir ${CMAKE_BINARY_DIR}/tests/abi_mutants)
	set(map ${PROJECT_SOURCE_DIR}/src/librewire.map)
	set(header ${PROJECT_SOURCE_DIR}/include/rewire/text_poke.h)

	# The changed header (rewritten when text_poke.h changes).
	set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${header})
	file(READ ${header} text)
	string(REPLACE "struct rw_text_stats {"
		       "struct rw_text_stats {\n\tuint64_t rw_abi_mutant;"
		       mutated "${text}")
	if(mutated STREQUAL text)
		message(FATAL_ERROR "test_abi.cmake: no 'struct rw_text_stats {' "
				    "in ${header} to mutate; pick another struct")
	endif()
	set(out ${mut_dir}/include/rewire/text_poke.h)
	set(old "")
	if(EXISTS ${out})
		file(READ ${out} old)
	endif()
	if(NOT old STREQUAL mutated)
		file(WRITE ${out} "${mutated}")
	endif()
	add_library(rw_abi_mutant_text_poke OBJECT
		    ${PROJECT_SOURCE_DIR}/src/text_poke.c)
	target_include_directories(rw_abi_mutant_text_poke BEFORE PRIVATE
				   ${mut_dir}/include)
	foreach(p INCLUDE_DIRECTORIES COMPILE_DEFINITIONS COMPILE_OPTIONS)
		set_property(TARGET rw_abi_mutant_text_poke APPEND PROPERTY
			     ${p} $<TARGET_PROPERTY:rewire_objects,${p}>)
	endforeach()
	set_target_properties(rw_abi_mutant_text_poke PROPERTIES
		POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)

	# The added function.
	file(WRITE ${mut_dir}/added.c.in
	     "__attribute__((visibility(\"default\"))) int rw_abi_mutant_added(int x);\n"
	     "int rw_abi_mutant_added(int x)\n{\n\treturn x + 1;\n}\n")
	configure_file(${mut_dir}/added.c.in ${mut_dir}/added.c COPYONLY)

	# The version scripts.
	file(READ ${map} map_text)
	file(WRITE ${mut_dir}/removed.map.in "${map_text}"
	     "REWIRE_ABI_MUTANT_LOCAL {\n\tlocal:\n\t\trw_text_get_stats;\n};\n")
	configure_file(${mut_dir}/removed.map.in ${mut_dir}/removed.map COPYONLY)
	file(WRITE ${mut_dir}/added.map.in "${map_text}"
	     "REWIRE_999.0 {\n\tglobal:\n\t\trw_abi_mutant_added;\n} REWIRE_0.1;\n")
	configure_file(${mut_dir}/added.map.in ${mut_dir}/added.map COPYONLY)

	set(objs $<TARGET_OBJECTS:rewire_objects>)
	set(objs_mut
	    $<FILTER:${objs},EXCLUDE,/src/text_poke\.c\.o$>
	    $<TARGET_OBJECTS:rw_abi_mutant_text_poke>)
	function(rw_abi_mutant name map soversion)
		set(t rw_abi_mutant_${name})
		add_library(${t} SHARED ${ARGN})
		set_target_properties(${t} PROPERTIES
			OUTPUT_NAME rewire
			SOVERSION ${soversion}
			LIBRARY_OUTPUT_DIRECTORY ${mut_dir}/${name}
			LINK_DEPENDS ${map})
		target_link_options(${t} PRIVATE -Wl,--version-script=${map})
		target_link_libraries(${t} PRIVATE Threads::Threads
				      ${CMAKE_DL_LIBS} PkgConfig::URCU_BP
				      PkgConfig::UNWIND PkgConfig::LIBELF
				      PkgConfig::URCU_CDS PkgConfig::LIBDW)
	endfunction()
	rw_abi_mutant(struct ${map} 0 ${objs_mut})
	rw_abi_mutant(removed ${mut_dir}/removed.map 0 ${objs})
	rw_abi_mutant(added ${mut_dir}/added.map 0 ${objs} ${mut_dir}/added.c)
	rw_abi_mutant(added_old ${map} 0 ${objs} ${mut_dir}/added.c)
	rw_abi_mutant(soname ${mut_dir}/removed.map 1 ${objs})
endif()
