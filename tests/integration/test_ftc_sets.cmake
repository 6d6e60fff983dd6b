# test_ftc_sets: two probe sets tracing overlapping functions (issue 13,
# point 4). Traced code: ftc/ftc.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/ftc/ftc.cmake)
ftc_test()
