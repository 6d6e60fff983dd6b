# test_ftc_patch: function tracing and a live patch of the same function,
# in either order (issue 13, point 4). Traced code and patch: ftc/ftc.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/ftc/ftc.cmake)
ftc_test()
