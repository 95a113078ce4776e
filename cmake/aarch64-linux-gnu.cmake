# CMake toolchain file: cross-builds smserve for 64-bit Arm Linux with Debian's
# gcc-aarch64-linux-gnu against a sysroot unpacked from Debian's arm64 .debs
# (scripts/arm64.sh makes it; nothing arm64 is installed system-wide). Tests run
# under qemu-user through CMAKE_CROSSCOMPILING_EMULATOR, so plain ctest works.
#   cmake -S . -B build-arm64/build -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DSMS_SYSROOT=$PWD/build-arm64/sysroot
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(SMS_TRIPLE aarch64-linux-gnu)

# The sysroot: -DSMS_SYSROOT, else $SMS_SYSROOT, else build-arm64/sysroot.
# try_compile projects re-read this file, hence the pass-through below.
if(NOT SMS_SYSROOT)
  if(DEFINED ENV{SMS_SYSROOT})
    set(SMS_SYSROOT "$ENV{SMS_SYSROOT}")
  else()
    set(SMS_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../build-arm64/sysroot")
  endif()
endif()
get_filename_component(SMS_SYSROOT "${SMS_SYSROOT}" ABSOLUTE)
if(NOT EXISTS "${SMS_SYSROOT}/usr/include/${SMS_TRIPLE}")
  message(FATAL_ERROR "no arm64 sysroot at ${SMS_SYSROOT} (scripts/arm64.sh makes it)")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SMS_SYSROOT)

set(CMAKE_C_COMPILER ${SMS_TRIPLE}-gcc)
set(CMAKE_SYSROOT "${SMS_SYSROOT}")
set(CMAKE_LIBRARY_ARCHITECTURE ${SMS_TRIPLE})

# Headers, libraries and CMake packages come from the sysroot only; programs
# (python3 for test fixtures, pkg-config) from the build machine.
set(CMAKE_FIND_ROOT_PATH "${SMS_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config reads the sysroot's .pc files only, and prefixes the paths they
# print with the sysroot.
set(ENV{PKG_CONFIG_LIBDIR} "${SMS_SYSROOT}/usr/lib/${SMS_TRIPLE}/pkgconfig:${SMS_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${SMS_SYSROOT}")
set(ENV{PKG_CONFIG_PATH} "")

# The linker resolves the shared libraries' own dependencies (libxgboost ->
# libstdc++; libarchive -> libxml2, ...) inside the sysroot.
set(CMAKE_EXE_LINKER_FLAGS_INIT
  "-Wl,-rpath-link,${SMS_SYSROOT}/lib/${SMS_TRIPLE}:${SMS_SYSROOT}/usr/lib/${SMS_TRIPLE}")

# add_test() commands run through qemu-user with the sysroot as its library
# root; no binfmt_misc registration is needed.
find_program(SMS_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(SMS_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${SMS_QEMU_AARCH64};-L;${SMS_SYSROOT}")
endif()
