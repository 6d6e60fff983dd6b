# test_ftrace_entry: entry-only tracing of functions of the program and of
# a dlopen'ed library, exact bytes after detach, recursion from a probe.
# The program (five 1-byte NOPs) and fte_dso.so (rewritten to one 5-byte
# NOP) are built like a distribution builds them (ft_flags.cmake); the
# library's path is FTE_DSO.
include(${RW_TEST_COMMON_DIR}/ft_flags.cmake)
set(fte_dir ${CMAKE_CURRENT_BINARY_DIR}/ftrace_entry)

add_library(fte_dso MODULE ${CMAKE_CURRENT_LIST_DIR}/ftrace_entry/fte_dso.c)
set_target_properties(fte_dso PROPERTIES
	PREFIX "" SUFFIX ".so" LIBRARY_OUTPUT_DIRECTORY ${fte_dir})
target_compile_options(fte_dso PRIVATE "${RW_FT_DISTRO_FLAGS}")
rewire_target_patchable(fte_dso FIX_ENTRIES)
rewire_target_warnings(fte_dso)

rw_lp_test()
target_compile_options(${RW_TEST_TARGET} PRIVATE "${RW_FT_DISTRO_FLAGS}")
add_dependencies(${RW_TEST_TARGET} fte_dso)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	FTE_DSO="$<TARGET_FILE:fte_dso>")
