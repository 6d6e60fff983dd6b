# In-process sessions with filters (see rw_trace_session_test in
# tests/CMakeLists.txt). No code patching of its own beyond tracepoints:
# runs in every preset, TSan (generic backend) included.
rw_trace_session_test()
