# In-process sessions with function records (see rw_trace_session_test in
# tests/CMakeLists.txt); the program's own functions are patchable.
rw_trace_session_test()
rewire_target_patchable(${RW_TEST_TARGET})
