# test_man3: see test_man3.sh. It reads the man3 pages that the man3
# target generates (doc/CMakeLists.txt) and librewire.so's symbols.
set_tests_properties(${RW_TEST_NAME} PROPERTIES TIMEOUT 120)
