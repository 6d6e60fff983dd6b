# Again with grace periods that signal every thread instead of using
# membarrier (the fallback for kernels and sandboxes without it).
add_test(NAME torture_rcu_nomembarrier COMMAND ${RW_TEST_TARGET})
set_tests_properties(torture_rcu_nomembarrier PROPERTIES
	LABELS torture TIMEOUT 900 SKIP_RETURN_CODE 77
	ENVIRONMENT REWIRE_RS_NO_MEMBARRIER=1)
