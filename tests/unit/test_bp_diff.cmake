# test_bp_diff: the differ of `rewire build-patch` (tools/rewire/bp_diff.c),
# compiled into the test, on the source pairs of tests/buildpatch/diff_unit/
# compiled at run time with the compilers found here.
target_sources(${RW_TEST_TARGET} PRIVATE
	${PROJECT_SOURCE_DIR}/tools/rewire/bp_diff.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE
	${PROJECT_SOURCE_DIR}/tools/rewire)
target_link_libraries(${RW_TEST_TARGET} PRIVATE PkgConfig::LIBELF
	PkgConfig::LIBDW)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	RW_BP_CC="${CMAKE_C_COMPILER}"
	RW_BP_CXX="${CMAKE_CXX_COMPILER}"
	RW_BP_DIFF_DIR="${PROJECT_SOURCE_DIR}/tests/buildpatch/diff_unit")
# It runs the compiler 40-odd times: a few seconds natively, minutes in the
# aarch64 VM, where the compiler is emulated (scripts/aarch64/: the
# timeout is doubled there, to 900 s).
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 450)
# In a cross build it runs on the host under user-mode qemu
# (REWIRE_CROSS_EMULATOR, as `rewire build-patch` runs during the build),
# with the cross compiler, before the VM boots (host_compile;
# scripts/aarch64/test.sh): it only compiles and reads objects, which
# user-mode qemu runs as the machine would (it patches no code), and the
# same GCC emulated in the VM took two minutes of the step's budget.
if(CMAKE_CROSSCOMPILING AND REWIRE_CROSS_EMULATOR)
	set_property(TARGET ${RW_TEST_TARGET} PROPERTY
		CROSSCOMPILING_EMULATOR ${REWIRE_CROSS_EMULATOR})
	set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS
		host_compile)
endif()
