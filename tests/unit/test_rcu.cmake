# The same test again with rewire's own polled grace periods, so that both
# implementations run where liburcu (0.14+) has its own.
add_test(NAME test_rcu_counter COMMAND ${RW_TEST_TARGET})
set_tests_properties(test_rcu_counter PROPERTIES
	LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77
	ENVIRONMENT REWIRE_RCU_POLL=counter)
