# In-process sessions (see rw_trace_session_test in tests/CMakeLists.txt),
# read with the tests' own decoder (tests/common/ring_decode.h). A second
# file defines a tracepoint the way a program built with the old header
# does (abi 0). Runs in every preset, TSan (generic backend) included.
rw_trace_session_test()
target_sources(${RW_TEST_TARGET} PRIVATE
	       ${CMAKE_CURRENT_LIST_DIR}/trace_writer_abi0.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
