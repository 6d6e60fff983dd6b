# test_fleet_apply: see test_fleet_apply.sh. The programs:
# tests/fleet/fleet.cmake. 50 processes: a generous timeout, though it runs
# in seconds.
include(${CMAKE_CURRENT_LIST_DIR}/../fleet/fleet.cmake)
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 300)
