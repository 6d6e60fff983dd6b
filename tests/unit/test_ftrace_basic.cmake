# test_ftrace_basic: the program's own functions are patchable.
rw_lp_test()
