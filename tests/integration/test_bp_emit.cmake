# test_bp_emit: build-patch's emitter (tools/rewire/bp_emit.c, linked into
# the test) on GCC's real output. The target code is built into the test
# program (tests/buildpatch/emit_unit/unit.c, other.c) and into
# libeu_cxx.so (cxx.cc) with the flags distributions use plus patchable
# entries; the test compiles the fixed sources to after.s with the same
# flags and build-patch's, emits the patches with a hand-written
# classification, checks them and loads them into itself.
set(eu_src ${PROJECT_SOURCE_DIR}/tests/buildpatch/emit_unit)
set(eu_dir ${CMAKE_CURRENT_BINARY_DIR}/emit_unit)
# dpkg-buildflags' (CFLAGS and CPPFLAGS) on Debian and Ubuntu, written out
# so that the test does not depend on the build machine's. aarch64:
# -mbranch-protection=standard (BTI C, PAC) where amd64 has
# -fcf-protection, spelled out: the test runs the compiler itself, in the
# guest, without the cross build's spec file that translates the flag.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
	set(eu_cf -mbranch-protection=standard)
else()
	set(eu_cf -fcf-protection)
endif()
set(eu_flags -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
	${eu_cf} -Wformat -Werror=format-security
	${REWIRE_PATCHABLE_FLAGS})
string(REPLACE ";" " " eu_flags_str "${eu_flags}")

target_sources(${RW_TEST_TARGET} PRIVATE ${eu_src}/unit.c ${eu_src}/other.c
	${PROJECT_SOURCE_DIR}/tools/rewire/bp_emit.c)
set_source_files_properties(${eu_src}/unit.c ${eu_src}/other.c PROPERTIES
	COMPILE_OPTIONS "${eu_flags}")

add_library(eu_cxx SHARED ${eu_src}/cxx.cc)
set_target_properties(eu_cxx PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${eu_dir})
target_compile_options(eu_cxx PRIVATE ${eu_flags})
rewire_target_warnings(eu_cxx)

target_include_directories(${RW_TEST_TARGET} PRIVATE ${eu_src}
	${PROJECT_SOURCE_DIR}/tools/rewire ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(${RW_TEST_TARGET} PRIVATE eu_cxx PkgConfig::LIBELF)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	EU_SRC="${eu_src}"
	EU_DIR="${eu_dir}"
	EU_CXX_LIB="$<TARGET_FILE:eu_cxx>"
	EU_CC="${CMAKE_C_COMPILER}"
	EU_CXX="${CMAKE_CXX_COMPILER}"
	EU_FLAGS="${eu_flags_str}"
	EU_INCLUDE="${PROJECT_SOURCE_DIR}/include"
	$<$<C_COMPILER_ID:GNU>:EU_GCC=1>)
# A cross build (aarch64) runs the test in a guest that has gcc but no g++
# (scripts/aarch64/fetch.sh): there cxx_after.s is compiled at build time,
# on the build machine, by the same compiler with the flags the test's
# compile_after() passes; the test reads it instead of running g++.
if(CMAKE_CROSSCOMPILING)
	set(eu_cxx_after ${eu_dir}/cxx_after.s)
	add_custom_command(OUTPUT ${eu_cxx_after}
		COMMAND ${CMAKE_CXX_COMPILER} ${eu_flags} -I${eu_src}
			-ffunction-sections -fdata-sections -g0 -mcmodel=large
			-fno-pic -fno-pie -S -o ${eu_cxx_after}
			${eu_src}/cxx_after.cc
		DEPENDS ${eu_src}/cxx_after.cc ${eu_src}/eu.h
		VERBATIM)
	add_custom_target(eu_cxx_after DEPENDS ${eu_cxx_after})
	add_dependencies(${RW_TEST_TARGET} eu_cxx_after)
	target_compile_definitions(${RW_TEST_TARGET} PRIVATE
		EU_CXX_AFTER_S="${eu_cxx_after}")
endif()
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
