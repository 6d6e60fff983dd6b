# test_trace_formats: see test_trace_formats.sh. The programs:
# trace_formats/trace_formats.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/trace_formats/trace_formats.cmake)
