# Flags of the code the function tracing tests trace (test_ftrace_*,
# torture_ftrace): built the way a distribution builds it. Sets
# RW_FT_DISTRO_FLAGS: dpkg-buildflags' CFLAGS/CXXFLAGS and CPPFLAGS (-O2,
# -fstack-protector-strong, -D_FORTIFY_SOURCE=2) where dpkg-buildflags
# exists (a cross build's toolchain file makes it answer for the target),
# else the same by hand,
# plus -fcf-protection (Ubuntu's and Fedora's default: an endbr64 before
# the patchable NOPs; -mbranch-protection=standard on aarch64). Sanitizer
# builds drop _FORTIFY_SOURCE (it needs optimisation).
find_program(RW_DPKG_BUILDFLAGS dpkg-buildflags)
set(rw_ft_c "-g -O2 -fstack-protector-strong -Wformat -Werror=format-security")
set(rw_ft_cxx "${rw_ft_c}")
set(rw_ft_cpp "-D_FORTIFY_SOURCE=2")
if(RW_DPKG_BUILDFLAGS)
	execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CFLAGS
		OUTPUT_VARIABLE rw_ft_c OUTPUT_STRIP_TRAILING_WHITESPACE)
	execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CXXFLAGS
		OUTPUT_VARIABLE rw_ft_cxx OUTPUT_STRIP_TRAILING_WHITESPACE)
	execute_process(COMMAND ${RW_DPKG_BUILDFLAGS} --get CPPFLAGS
		OUTPUT_VARIABLE rw_ft_cpp OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()
if(REWIRE_SANITIZE)
	set(rw_ft_cpp "")
endif()
separate_arguments(rw_ft_c UNIX_COMMAND "${rw_ft_c} ${rw_ft_cpp}")
separate_arguments(rw_ft_cxx UNIX_COMMAND "${rw_ft_cxx} ${rw_ft_cpp}")
# aarch64: -mbranch-protection=standard (BTI C before the NOPs, PAC)
# where x86-64 has -fcf-protection.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	set(rw_ft_cf -mbranch-protection=standard)
else()
	set(rw_ft_cf -fcf-protection)
endif()
set(RW_FT_DISTRO_FLAGS $<$<COMPILE_LANGUAGE:C>:${rw_ft_c}>
	$<$<COMPILE_LANGUAGE:CXX>:${rw_ft_cxx}> ${rw_ft_cf})
