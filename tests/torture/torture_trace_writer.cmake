# In-process sessions (see rw_trace_session_test in tests/CMakeLists.txt),
# read with the tests' own decoder (tests/common/ring_decode.h). Runs in
# every preset, TSan (generic backend) included.
rw_trace_session_test()
