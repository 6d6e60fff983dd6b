# The reader on hand-built rings (no session): compiles in the rewire
# command's reader like the session tests (rw_trace_session_test).
rw_trace_session_test()
