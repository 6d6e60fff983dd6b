# test_lp_fork_dlclose: live patching across fork() (a transition left open
# by a thread of the parent, a thread that keeps enabling and disabling a
# patch, threads created in the child) and the pins that keep an object
# with patched functions mapped when the program dlclose()s it.
#
# liblpf_lib.so (linked to the test) and lpf_g.so (dlopen'ed by it) are
# patchable; both and the patches are built into ${lpf_dir}, passed as
# LPF_DIR; lpf_g.so's path as LPF_G_PATH.
set(lpf_src ${CMAKE_CURRENT_LIST_DIR}/lp_fork)
set(lpf_dir ${CMAKE_CURRENT_BINARY_DIR}/lp_fork)

add_library(lpf_lib SHARED ${lpf_src}/lib.c)
set_target_properties(lpf_lib PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${lpf_dir})
target_compile_definitions(lpf_lib PRIVATE _GNU_SOURCE)
rewire_target_patchable(lpf_lib)
rewire_target_warnings(lpf_lib)

add_library(lpf_g MODULE ${lpf_src}/g.c)
set_target_properties(lpf_g PROPERTIES
	PREFIX ""
	SUFFIX ".so"
	LIBRARY_OUTPUT_DIRECTORY ${lpf_dir})
rewire_target_patchable(lpf_g)
rewire_target_warnings(lpf_g)

target_include_directories(${RW_TEST_TARGET} PRIVATE ${lpf_src})
target_link_libraries(${RW_TEST_TARGET} PRIVATE lpf_lib)
add_dependencies(${RW_TEST_TARGET} lpf_g)
target_compile_definitions(${RW_TEST_TARGET} PRIVATE
	LPF_DIR="${lpf_dir}"
	LPF_G_PATH="${lpf_dir}/lpf_g.so")
rw_lp_test()

foreach(p f h g)
	rw_lp_test_patch(lpf_patch_${p} ${lpf_src}/patch_${p}.c ${lpf_dir})
	target_include_directories(lpf_patch_${p} PRIVATE ${lpf_src})
endforeach()
