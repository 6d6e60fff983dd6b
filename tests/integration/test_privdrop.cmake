# test_privdrop: a daemon that starts as root and drops to nobody, patched
# before and after the drop (doc/TEXT-PATCHING.md, "Privileges").
#
# The program is built the way Debian builds packages (dpkg-buildflags with
# hardening=+all, plus -fcf-protection and -fstack-clash-protection where
# that dpkg does not add them yet), on top of the patchable entries. The
# patch privdrop_patch.so is built into ${pd_dir}, passed as PD_PATCH.
set(pd_dir ${CMAKE_CURRENT_BINARY_DIR}/privdrop)
set(pd_cflags -O2 -fstack-protector-strong -fstack-clash-protection
	      -fcf-protection -Wformat -Werror=format-security)
set(pd_cppflags -D_FORTIFY_SOURCE=2)
set(pd_ldflags -Wl,-z,relro -Wl,-z,now)
find_program(RW_DPKG_BUILDFLAGS dpkg-buildflags)
if(RW_DPKG_BUILDFLAGS)
	foreach(kind CFLAGS CPPFLAGS LDFLAGS)
		execute_process(COMMAND ${CMAKE_COMMAND} -E env
				DEB_BUILD_MAINT_OPTIONS=hardening=+all
				${RW_DPKG_BUILDFLAGS} --get ${kind}
				OUTPUT_VARIABLE flags
				OUTPUT_STRIP_TRAILING_WHITESPACE
				RESULT_VARIABLE rc)
		if(rc EQUAL 0)
			separate_arguments(flags UNIX_COMMAND "${flags}")
			# PIE is the compiler's default; -specs files are
			# Debian's gcc wrappers' business.
			list(FILTER flags EXCLUDE REGEX "^-specs=|^-fPIE$|^-pie$")
			string(TOLOWER ${kind} k)
			list(APPEND pd_${k} ${flags})
		endif()
	endforeach()
endif()
list(REMOVE_DUPLICATES pd_cflags)
list(REMOVE_DUPLICATES pd_cppflags)
list(REMOVE_DUPLICATES pd_ldflags)
target_compile_options(${RW_TEST_TARGET} PRIVATE ${pd_cflags} ${pd_cppflags})
target_link_options(${RW_TEST_TARGET} PRIVATE ${pd_ldflags})
target_include_directories(${RW_TEST_TARGET} PRIVATE
	${CMAKE_CURRENT_LIST_DIR}/privdrop)
rw_lp_test()
rw_lp_test_patch(privdrop_patch ${CMAKE_CURRENT_LIST_DIR}/privdrop/patch.c
		 ${pd_dir})
target_include_directories(privdrop_patch PRIVATE
	${CMAKE_CURRENT_LIST_DIR}/privdrop)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	PD_PATCH="${pd_dir}/privdrop_patch.so")
