# Shared by the test_cli_*.cmake hooks (each includes it): the programs the
# rewire command's integration tests drive, built once, and the environment
# each test gets.
#
#   cli_target        cli/target.c: keys, a static call, tracepoints and
#                     patchable functions; linked to librewire
#   cli_fix.so        cli/cli_fix.c: a live patch that completes
#   cli_stall.so      cli/cli_stall.c: a live patch that stalls (a thread
#                     never leaves the patched function)
#   cli_peer_connect  cli/peer_connect.c: checks the server's SO_PEERCRED
#                     refusal (compiles src/ctl/wire.c, no librewire)
#   cli_fake_server   cli/fake_server.c: a server that answers in another
#                     process's place, as another user (the client's
#                     checks; compiles src/ctl/wire.c, no librewire)
#   cli_daemon_target cli/daemon_target.c: a program without rewire that
#                     daemonizes or forks a worker (for `rewire run`)
# all in ${CMAKE_CURRENT_BINARY_DIR}/cli. The test gets REWIRE_TOOL,
# CLI_TARGET, CLI_PATCH_DIR, CLI_PEER, CLI_FAKE_SERVER, CLI_DAEMON_TARGET
# and CLI_BACKEND in its environment.
set(RW_CLI_DIR ${CMAKE_CURRENT_BINARY_DIR}/cli)
if(NOT TARGET rw_cli_target)
	set(rw_cli_src ${CMAKE_CURRENT_LIST_DIR})

	add_executable(rw_cli_target ${rw_cli_src}/target.c)
	set_target_properties(rw_cli_target PROPERTIES
		OUTPUT_NAME cli_target
		RUNTIME_OUTPUT_DIRECTORY ${RW_CLI_DIR})
	target_compile_definitions(rw_cli_target PRIVATE _GNU_SOURCE)
	target_link_libraries(rw_cli_target PRIVATE rewire Threads::Threads
			      ${CMAKE_DL_LIBS})
	rewire_target_warnings(rw_cli_target)
	rewire_target_patchable(rw_cli_target)

	foreach(p cli_fix cli_stall)
		rewire_add_patch(${p} ${rw_cli_src}/${p}.c)
		set_target_properties(${p} PROPERTIES
			LIBRARY_OUTPUT_DIRECTORY ${RW_CLI_DIR})
		rewire_target_warnings(${p})
		add_dependencies(rw_cli_target ${p})
	endforeach()

	add_executable(rw_cli_peer ${rw_cli_src}/peer_connect.c
		       ${PROJECT_SOURCE_DIR}/src/ctl/wire.c)
	set_target_properties(rw_cli_peer PROPERTIES
		OUTPUT_NAME cli_peer_connect
		RUNTIME_OUTPUT_DIRECTORY ${RW_CLI_DIR})
	target_compile_definitions(rw_cli_peer PRIVATE _GNU_SOURCE)
	target_include_directories(rw_cli_peer PRIVATE ${PROJECT_SOURCE_DIR}/src)
	rewire_target_warnings(rw_cli_peer)

	add_executable(rw_cli_fake_server ${rw_cli_src}/fake_server.c
		       ${PROJECT_SOURCE_DIR}/src/ctl/wire.c)
	set_target_properties(rw_cli_fake_server PROPERTIES
		OUTPUT_NAME cli_fake_server
		RUNTIME_OUTPUT_DIRECTORY ${RW_CLI_DIR})
	target_compile_definitions(rw_cli_fake_server PRIVATE _GNU_SOURCE)
	target_include_directories(rw_cli_fake_server PRIVATE
		${PROJECT_SOURCE_DIR}/src
		$<TARGET_PROPERTY:rewire,INTERFACE_INCLUDE_DIRECTORIES>)
	rewire_target_warnings(rw_cli_fake_server)

	add_executable(rw_cli_daemon_target ${rw_cli_src}/daemon_target.c)
	set_target_properties(rw_cli_daemon_target PROPERTIES
		OUTPUT_NAME cli_daemon_target
		RUNTIME_OUTPUT_DIRECTORY ${RW_CLI_DIR})
	target_compile_definitions(rw_cli_daemon_target PRIVATE _GNU_SOURCE)
	rewire_target_warnings(rw_cli_daemon_target)
endif()

set_property(TEST ${RW_TEST_NAME} APPEND PROPERTY ENVIRONMENT
	"REWIRE_TOOL=$<TARGET_FILE:rewire-cli>"
	"CLI_TARGET=$<TARGET_FILE:rw_cli_target>"
	"CLI_PATCH_DIR=${RW_CLI_DIR}"
	"CLI_PEER=$<TARGET_FILE:rw_cli_peer>"
	"CLI_FAKE_SERVER=$<TARGET_FILE:rw_cli_fake_server>"
	"CLI_DAEMON_TARGET=$<TARGET_FILE:rw_cli_daemon_target>"
	"CLI_BACKEND=${REWIRE_BACKEND_RESOLVED}")
