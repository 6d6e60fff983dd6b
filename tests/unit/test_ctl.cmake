# The test speaks to the server with the wire format's own code.
target_sources(${RW_TEST_TARGET} PRIVATE ${PROJECT_SOURCE_DIR}/src/ctl/wire.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE ${PROJECT_SOURCE_DIR}/src/ctl)
