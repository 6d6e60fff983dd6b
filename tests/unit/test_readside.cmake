# Again with grace periods that signal every thread instead of using
# membarrier, and with the grace-period counter starting just below its wrap.
add_test(NAME test_readside_nomembarrier COMMAND ${RW_TEST_TARGET})
set_tests_properties(test_readside_nomembarrier PROPERTIES
	LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77
	ENVIRONMENT REWIRE_RS_NO_MEMBARRIER=1)
add_test(NAME test_readside_wrap COMMAND ${RW_TEST_TARGET})
set_tests_properties(test_readside_wrap PROPERTIES
	LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77
	ENVIRONMENT REWIRE_RS_GP_SEQ=0xfffffffffffffff0)
