# test_ftc_fork: fork() while tracing and while an attach is in progress
# (issue 13, point 4). Traced code: ftc/ftc.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/ftc/ftc.cmake)
ftc_test()
