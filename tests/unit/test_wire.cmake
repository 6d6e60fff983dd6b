# test_wire: the control socket's wire format. src/ctl/wire.c stands alone
# (the rewire command compiles it too) and is hidden inside librewire, so
# the test compiles it in. malloc and realloc are wrapped so that the test
# sees every allocation (an over-limit length must allocate nothing) and
# can make one fail.
target_sources(${RW_TEST_TARGET} PRIVATE ${CMAKE_SOURCE_DIR}/src/ctl/wire.c)
target_include_directories(${RW_TEST_TARGET} PRIVATE ${CMAKE_SOURCE_DIR}/src/ctl)
target_link_options(${RW_TEST_TARGET} PRIVATE
	-Wl,--wrap=malloc -Wl,--wrap=realloc)
