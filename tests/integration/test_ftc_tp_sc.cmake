# test_ftc_tp_sc: a tracepoint and a static call in traced functions
# (issue 13, point 4). Traced code: ftc/ftc.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/ftc/ftc.cmake)
ftc_test()
