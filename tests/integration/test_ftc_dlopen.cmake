# test_ftc_dlopen: dlopen and dlclose of a traced library (issue 13,
# point 4). Traced code and ftc_dl.so: ftc/ftc.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/ftc/ftc.cmake)
ftc_test()
