# In-process sessions (see rw_trace_session_test in tests/CMakeLists.txt).
# Runs in every preset, TSan (generic backend) included.
rw_trace_session_test()
