# Live patching helpers (doc/LIVEPATCH.md). Included by rewireConfig.cmake
# for installed users and by rewire's own build.
#
#   rewire_target_patchable(<target> [NO_LIVE_PATCHING] [KEEP_NOPS])
#       Build <target>'s functions with a patchable entry
#       (-fpatchable-function-entry=5): five NOP bytes at every function
#       entry, recorded in __patchable_function_entries, that rewire
#       turns into a jump. Costs one 5-byte NOP run per call. On aarch64
#       -fpatchable-function-entry=2: two NOP instructions (after the
#       BTI C of a program built with branch protection).
#       With GCC, also REWIRE_LIVE_PATCHING_FLAGS
#       (-flive-patching=inline-only-static), made for live patching:
#       GCC then makes no clones (NAME.constprop.N, NAME.isra.N,
#       NAME.part.N, with other calling conventions than NAME) and
#       inlines only static functions, so that no caller depends on the
#       body of a function it does not own, and a patch of a function
#       is a patch of every copy of it except static ones inlined into
#       callers (patch those callers too). It costs the IPA optimizations
#       it turns off (doc/BENCHMARKS.md, "-flive-patching"). Not for
#       targets built with LTO (GCC refuses it with -flto): those with
#       INTERPROCEDURAL_OPTIMIZATION set do not get it; one that passes
#       -flto in its flags must give NO_LIVE_PATCHING. NO_LIVE_PATCHING:
#       only the entries (enough for function tracing).
#       After each link, rewire-entries rewrites the entries in the file
#       to one 5-byte NOP (see below); KEEP_NOPS keeps GCC's five 1-byte
#       NOPs (as does REWIRE_FIX_ENTRIES set to OFF).
#
#   rewire_add_patch(<name> <source>... [BIND <target>])
#       A live patch: a MODULE library <name>.so (no "lib" prefix) built
#       from the fixed functions' source with rewire's headers. It does
#       not link librewire; the program that loads it does.
#       Same as: cc -O2 -fPIC -shared -I<rewire>/include -o name.so src.c
#       BIND <target>: bound to the build of <target> (the program or
#       library whose functions it replaces; it is built first): after
#       each link, `rewire bind-patch <name>.so --object <target's file>`
#       records <target>'s build-id and the size and hash of each
#       function the patch replaces, and the loader refuses the patch in
#       a process that runs another build (doc/LIVEPATCH.md, "Bound to a
#       build"). The command is rewire's own rewire-cli target in its
#       build tree, else REWIRE_CLI, else `rewire` found in PATH.

# aarch64: two NOPs, as the kernel's arm64 ftrace (src/arch/entry_arch.h).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	set(REWIRE_PATCHABLE_FLAGS -fpatchable-function-entry=2)
else()
	set(REWIRE_PATCHABLE_FLAGS -fpatchable-function-entry=5)
endif()
set(REWIRE_LIVE_PATCHING_FLAGS -flive-patching=inline-only-static)

function(rewire_target_patchable target)
	cmake_parse_arguments(PARSE_ARGV 1 arg "NO_LIVE_PATCHING" "" "")
	target_compile_options(${target} PRIVATE ${REWIRE_PATCHABLE_FLAGS})
	rewire__fix_entries(${target} ${ARGN})
	if(arg_NO_LIVE_PATCHING OR NOT REWIRE_LIVE_PATCHING_FLAGS)
		return()
	endif()
	# GCC only (clang has no such option, and makes no such clones
	# under these names), and never with LTO.
	set(no_lto "$<NOT:$<BOOL:$<TARGET_PROPERTY:INTERPROCEDURAL_OPTIMIZATION>>>")
	foreach(lang C CXX)
		target_compile_options(${target} PRIVATE
			"$<$<AND:$<COMPILE_LANG_AND_ID:${lang},GNU>,${no_lto}>:${REWIRE_LIVE_PATCHING_FLAGS}>")
	endforeach()
endfunction()

# The post-link step (like the kernel's objtool/recordmcount): a uprobe
# (bpftrace, perf probe) runs the entry instruction it read from the file;
# on a patched function one 1-byte NOP resumes inside rewire's jump and
# kills the program, one 5-byte NOP resumes after it (doc/LIVEPATCH.md,
# "Uprobes"). Other build systems: run `rewire-entries FILE` after linking.
if(NOT DEFINED REWIRE_FIX_ENTRIES)
	set(REWIRE_FIX_ENTRIES ON)
endif()

# In a cross build (cmake/toolchain-aarch64.cmake) rewire's own tools are
# built for the target: the build runs them on files under the emulator
# REWIRE_CROSS_EMULATOR (user-mode qemu), with OBJCOPY set to the target's
# objcopy (`rewire bind-patch` rewrites the patch with it; the build
# machine's objcopy does not read the target's files). Empty in a native
# build.
set(REWIRE_CROSS_RUN "")
if(CMAKE_CROSSCOMPILING AND REWIRE_CROSS_EMULATOR AND CMAKE_OBJCOPY)
	set(REWIRE_CROSS_RUN ${CMAKE_COMMAND} -E env OBJCOPY=${CMAKE_OBJCOPY}
		${REWIRE_CROSS_EMULATOR})
elseif(CMAKE_CROSSCOMPILING AND REWIRE_CROSS_EMULATOR)
	set(REWIRE_CROSS_RUN ${REWIRE_CROSS_EMULATOR})
elseif(CMAKE_CROSSCOMPILING)
	message(WARNING "cross build without REWIRE_CROSS_EMULATOR "
		"(qemu-aarch64, Debian's qemu-user): rewire-entries and "
		"`rewire bind-patch`/`build-patch` cannot run during the build")
endif()
function(rewire__fix_entries target)
	cmake_parse_arguments(PARSE_ARGV 1 RWFE "KEEP_NOPS;FIX_ENTRIES" "" "")
	if(RWFE_KEEP_NOPS OR (NOT REWIRE_FIX_ENTRIES AND NOT RWFE_FIX_ENTRIES))
		return()
	endif()
	# aarch64 entries are whole instructions: nothing to rewrite (and a
	# cross-built tool would not run on the build machine).
	if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
		return()
	endif()
	if(TARGET rewire-entries)
		set(tool ${REWIRE_CROSS_RUN} $<TARGET_FILE:rewire-entries>)
		add_dependencies(${target} rewire-entries)
	elseif(REWIRE_ENTRIES_TOOL)
		set(tool ${REWIRE_ENTRIES_TOOL})
	else()
		message(WARNING "rewire_target_patchable(${target}): "
			"rewire-entries not found; the entries keep five "
			"1-byte NOPs (a uprobe on a patched function would "
			"crash it)")
		return()
	endif()
	add_custom_command(TARGET ${target} POST_BUILD
		COMMAND ${tool} $<TARGET_FILE:${target}>
		VERBATIM)
endfunction()

function(rewire_add_patch name)
	cmake_parse_arguments(PARSE_ARGV 1 RWAP "" "BIND" "")
	if(NOT RWAP_UNPARSED_ARGUMENTS)
		message(FATAL_ERROR "rewire_add_patch(${name}): no source files")
	endif()
	add_library(${name} MODULE ${RWAP_UNPARSED_ARGUMENTS})
	set_target_properties(${name} PROPERTIES PREFIX "" SUFFIX ".so")
	if(TARGET rewire::rewire)
		target_include_directories(${name} PRIVATE
			$<TARGET_PROPERTY:rewire::rewire,INTERFACE_INCLUDE_DIRECTORIES>)
	elseif(TARGET rewire)
		target_include_directories(${name} PRIVATE
			$<TARGET_PROPERTY:rewire,INTERFACE_INCLUDE_DIRECTORIES>)
	endif()
	if(NOT RWAP_BIND)
		return()
	endif()
	if(TARGET rewire-cli)
		set(tool ${REWIRE_CROSS_RUN} $<TARGET_FILE:rewire-cli>)
		add_dependencies(${name} rewire-cli)
	else()
		if(NOT REWIRE_CLI)
			find_program(REWIRE_CLI rewire)
		endif()
		if(NOT REWIRE_CLI)
			message(FATAL_ERROR "rewire_add_patch(${name} ... BIND "
				"${RWAP_BIND}): the rewire command was not "
				"found; set REWIRE_CLI to it")
		endif()
		set(tool ${REWIRE_CLI})
	endif()
	# The target's file is final once it is built (rewire-entries runs
	# in its own post-link step): bind to that one, again whenever it
	# (or the command) changes: the patch is linked again then.
	add_dependencies(${name} ${RWAP_BIND})
	set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS
		$<TARGET_FILE:${RWAP_BIND}>)
	if(TARGET rewire-cli)
		set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS
			$<TARGET_FILE:rewire-cli>)
	endif()
	add_custom_command(TARGET ${name} POST_BUILD
		COMMAND ${tool} --quiet bind-patch $<TARGET_FILE:${name}>
			--object $<TARGET_FILE:${RWAP_BIND}>
		VERBATIM)
endfunction()

#   rewire_build_patch(<name> TARGET <target> DIFF <file>
#                      [SOURCE_DIR <dir>] [STRIP <n>] [ALL])
#       A live patch <name>.so made by `rewire build-patch` from <file>, a
#       unified diff of the source <target> was built from (doc/LIVEPATCH.md,
#       "From a diff"), bound to <target>'s build. Rebuilt when the diff or
#       the target change. Needs CMAKE_EXPORT_COMPILE_COMMANDS ON (the
#       builder reads the exact compile commands). SOURCE_DIR is the tree
#       the diff applies to (default: the top source directory), STRIP as
#       patch -pN (default 1, as git diff writes). ALL: built by default.
function(rewire_build_patch name)
	cmake_parse_arguments(PARSE_ARGV 1 arg "ALL" "TARGET;DIFF;SOURCE_DIR;STRIP" "")
	if(NOT arg_TARGET OR NOT arg_DIFF)
		message(FATAL_ERROR "rewire_build_patch(${name}): TARGET and DIFF are required")
	endif()
	if(NOT CMAKE_EXPORT_COMPILE_COMMANDS)
		message(FATAL_ERROR "rewire_build_patch(${name}): set "
			"CMAKE_EXPORT_COMPILE_COMMANDS to ON before the targets "
			"are defined: the builder reads compile_commands.json")
	endif()
	if(NOT arg_SOURCE_DIR)
		set(arg_SOURCE_DIR ${CMAKE_SOURCE_DIR})
	endif()
	if(NOT arg_STRIP)
		set(arg_STRIP 1)
	endif()
	get_filename_component(diff ${arg_DIFF} ABSOLUTE)
	set(deps ${arg_TARGET} ${diff})
	if(TARGET rewire-cli)
		set(cli ${REWIRE_CROSS_RUN} $<TARGET_FILE:rewire-cli>)
		list(APPEND deps rewire-cli)
	else()
		find_program(REWIRE_CLI rewire REQUIRED)
		set(cli ${REWIRE_CLI})
	endif()
	set(out ${CMAKE_CURRENT_BINARY_DIR}/${name}.so)
	add_custom_command(OUTPUT ${out}
		COMMAND ${cli} build-patch --quiet
			-c ${CMAKE_BINARY_DIR}
			--object $<TARGET_FILE:${arg_TARGET}>
			--source ${arg_SOURCE_DIR} -p ${arg_STRIP}
			--diff ${diff} --name ${name} -o ${out}
		DEPENDS ${deps}
		COMMENT "rewire build-patch: ${name}.so from ${arg_DIFF}"
		VERBATIM)
	if(arg_ALL)
		add_custom_target(${name} ALL DEPENDS ${out})
	else()
		add_custom_target(${name} DEPENDS ${out})
	endif()
endfunction()
