# torture_ftc_lp: tracing and live patching of one function interleaved in
# every order while threads call it (issue 13, point 4). Traced code and
# patch: tests/integration/ftc/ftc.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/../integration/ftc/ftc.cmake)
ftc_test()
