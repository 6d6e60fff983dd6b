# test_fleet_ansible: see test_fleet_ansible.sh. The programs:
# tests/fleet/fleet.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/../fleet/fleet.cmake)
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 600)
