# CMake toolchain for aarch64 Linux on an x86_64 Debian host: Debian's cross
# compilers (gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu) and, to run what
# they build, qemu-user with the aarch64 C library of libc6-arm64-cross as its
# root (ctest runs each test program through CMAKE_CROSSCOMPILING_EMULATOR).
# Used by tests/dist/run.sh and the consumer projects it builds.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# find_package(st_secrets) looks in CMAKE_PREFIX_PATH, outside that root.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
