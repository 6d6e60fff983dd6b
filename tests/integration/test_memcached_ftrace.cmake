# test_memcached_ftrace: see test_memcached_ftrace.sh. It compiles memcached
# on its first run (about a minute on 2 CPUs), hence the longer timeout.
set_property(TEST ${RW_TEST_NAME} PROPERTY TIMEOUT 900)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
# A cross build (the aarch64 step) builds memcached on the host first, as
# a host_compile test (memcached_cross_build.sh): the emulated machine
# would take many minutes to compile it.
if(CMAKE_CROSSCOMPILING)
	# It also makes test_bp_memcached's patch with build-patch under
	# REWIRE_CROSS_RUN (cmake/RewirePatch.cmake), passed as one string.
	string(JOIN " " rw_cross_run ${REWIRE_CROSS_RUN})
	add_test(NAME memcached_cross_build COMMAND ${RW_BASH}
		${CMAKE_CURRENT_LIST_DIR}/memcached_cross_build.sh)
	set_tests_properties(memcached_cross_build PROPERTIES
		LABELS "integration;host_compile"
		TIMEOUT 600
		SKIP_RETURN_CODE 77
		ENVIRONMENT "REWIRE_BUILD_DIR=${CMAKE_BINARY_DIR};REWIRE_SANITIZE=${REWIRE_SANITIZE};REWIRE_CC=${CMAKE_C_COMPILER};REWIRE_CROSS_RUN=${rw_cross_run}")
endif()
