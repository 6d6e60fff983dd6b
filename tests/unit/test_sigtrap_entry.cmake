# test_sigtrap_entry: every libc entry point that installs a SIGTRAP handler
# or blocks SIGTRAP, and a raw rt_sigaction. sigtrap_strict.c is compiled
# as strict C so that its signal() is glibc's __sysv_signal;
# test_sigtrap_entry_nm checks that the program really calls that symbol.
target_sources(${RW_TEST_TARGET} PRIVATE
	${CMAKE_CURRENT_LIST_DIR}/sigtrap_strict.c)
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/sigtrap_strict.c
	PROPERTIES COMPILE_OPTIONS "-std=c11")
# Patches code in its own text: needs the x86_64 backend.
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)

find_program(RW_NM NAMES nm)
find_program(RW_BASH bash REQUIRED)
if(RW_NM)
	add_test(NAME test_sigtrap_entry_nm
		COMMAND ${RW_BASH} -c
		"${RW_NM} -D --undefined-only \"$1\" | grep -qw __sysv_signal"
		nm $<TARGET_FILE:${RW_TEST_TARGET}>)
	set_tests_properties(test_sigtrap_entry_nm PROPERTIES
		LABELS unit TIMEOUT 30)
endif()
