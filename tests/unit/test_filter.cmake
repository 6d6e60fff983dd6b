# test_filter: the event filters of `rewire trace --filter`. src/ctl/filter.c
# stands alone (the rewire command and the fuzzer compile it too) and is
# hidden inside librewire, so the test compiles it in.
target_sources(${RW_TEST_TARGET} PRIVATE ${CMAKE_SOURCE_DIR}/src/ctl/filter.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE ${CMAKE_SOURCE_DIR}/src/ctl)
