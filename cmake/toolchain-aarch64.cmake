# Cross build for aarch64 (arm64) Linux with Debian's cross toolchain:
#   gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
# and, after `dpkg --add-architecture arm64`, the arm64 -dev packages of the
# dependencies (liburcu-dev:arm64 libunwind-dev:arm64 libelf-dev:arm64
# libdw-dev:arm64), which install under /usr/lib/aarch64-linux-gnu
# (multiarch). scripts/deps.sh installs all of it.
#
#   cmake --preset aarch64 && cmake --build --preset aarch64
#
# The binaries run in the aarch64 VM (scripts/aarch64/vm.sh, test.sh):
# ctest's paths are host paths, the VM mounts the build tree at the same
# absolute path.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(RW_CROSS_TRIPLE aarch64-linux-gnu)
set(RW_CROSS_MULTIARCH /usr/lib/${RW_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${RW_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${RW_CROSS_TRIPLE}-g++)
# CMAKE_AR etc. are found next to the compiler by its prefix.

# Headers and libraries: the cross libc lives in /usr/aarch64-linux-gnu
# (the compiler finds it by itself); the arm64 -dev packages are multiarch,
# under /usr/include (shared with the host: arch-independent headers) and
# /usr/include/aarch64-linux-gnu, libraries in /usr/lib/aarch64-linux-gnu.
# The search root is / so that find_library/find_path see the multiarch
# directories (CMAKE_LIBRARY_ARCHITECTURE selects the aarch64 ones), never
# the host's x86_64-linux-gnu ones.
set(CMAKE_LIBRARY_ARCHITECTURE ${RW_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH /usr/${RW_CROSS_TRIPLE} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config: only the arm64 .pc files (PKG_CONFIG_LIBDIR replaces the
# default path, so the host's x86_64 ones are never seen). pkg-config runs
# at configure time in this process, so the environment set here reaches it
# (pkg_check_modules, and the execute_process calls of CMakeLists.txt).
set(ENV{PKG_CONFIG_LIBDIR}
    "${RW_CROSS_MULTIARCH}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")
if(NOT PKG_CONFIG_EXECUTABLE)
	find_program(PKG_CONFIG_EXECUTABLE NAMES ${RW_CROSS_TRIPLE}-pkg-config
		     pkgconf pkg-config)
endif()
# pkg_check_modules would add CMAKE_PREFIX_PATH/CMAKE_FIND_ROOT_PATH-derived
# directories; keep it to PKG_CONFIG_LIBDIR.
set(PKG_CONFIG_USE_CMAKE_PREFIX_PATH OFF)

# Tests are not run on the build machine: ctest (in the VM) runs them.
# try_run() can't run aarch64 code here.
set(CMAKE_CROSSCOMPILING_EMULATOR "")
