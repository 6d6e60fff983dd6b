# test_memcached_ftrace: see test_memcached_ftrace.sh. It compiles memcached
# on its first run (about a minute on 2 CPUs), hence the longer timeout.
set_property(TEST ${RW_TEST_NAME} PROPERTY TIMEOUT 900)
set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY LABELS x86only)
