# test_ftc_transition: probe sets attached and detached while a live
# patch transition is held open (issue 13, point 4). Traced code and patch:
# ftc/ftc.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/ftc/ftc.cmake)
ftc_test()
