# torture_ftrace: the traced set attached, changed and detached thousands
# of times while threads call the traced functions. They are libftt.so's,
# built like a distribution builds them (ft_flags.cmake) with patchable
# entries, linked to the test.
include(${RW_TEST_COMMON_DIR}/ft_flags.cmake)
set(ftt_src ${CMAKE_CURRENT_LIST_DIR}/ftrace_torture)

add_library(ftt SHARED ${ftt_src}/ftt.c)
set_target_properties(ftt PROPERTIES
	LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/ftrace_torture)
target_compile_options(ftt PRIVATE "${RW_FT_DISTRO_FLAGS}")
rewire_target_patchable(ftt)
rewire_target_warnings(ftt)

target_include_directories(${RW_TEST_TARGET} PRIVATE ${ftt_src})
target_link_libraries(${RW_TEST_TARGET} PRIVATE ftt)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
