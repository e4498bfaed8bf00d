# The packages a build of Sluice needs, each looked for without stopping at the first one
# missing: the configure step then names every missing one, with how to point CMake at it,
# writes them to missing-dependencies.txt in the build folder (scripts/build.sh shows that
# file and exits 2) and stops. Nothing here installs anything (docs/install.md).
set(_sluice_missing "")

# sluice_require(NAME FOUND_VAR DEBIAN SPACK HINT): record NAME as missing unless FOUND_VAR.
function(_sluice_missing_add name found debian spack hint)
  if(NOT ${found})
    set(_line "  ${name}: Debian/Ubuntu package ${debian}; Spack ${spack}; or ${hint}")
    set(_sluice_missing "${_sluice_missing}${_line}\n" PARENT_SCOPE)
  endif()
endfunction()

# A CMake package: found through CMAKE_PREFIX_PATH or <Package>_DIR.
macro(sluice_require_package package debian spack)
  find_package(${package} QUIET ${ARGN})
  _sluice_missing_add("${package}" ${package}_FOUND "${debian}" "${spack}"
    "-DCMAKE_PREFIX_PATH=<its prefix> (or -D${package}_DIR=<folder with its ${package}Config.cmake>)")
endmacro()

sluice_require_package(tomlplusplus libtomlplusplus-dev tomlplusplus)
sluice_require_package(CLI11 libcli11-dev cli11)
sluice_require_package(fmt libfmt-dev fmt)
sluice_require_package(nlohmann_json nlohmann-json3-dev nlohmann-json)
sluice_require_package(tl-expected libexpected-dev tl-expected)
find_package(Threads QUIET)
_sluice_missing_add(Threads Threads_FOUND libc6-dev "(the compiler's C library)"
                    "a compiler with POSIX threads")
find_package(SQLite3 QUIET)
_sluice_missing_add(SQLite3 SQLite3_FOUND libsqlite3-dev sqlite
                    "-DSQLite3_ROOT=<its prefix> or CMAKE_PREFIX_PATH")
find_package(HDF5 QUIET COMPONENTS C)
_sluice_missing_add(HDF5 HDF5_FOUND libhdf5-dev hdf5
                    "HDF5_ROOT=<its prefix> (environment or -D), or h5cc on PATH (module load hdf5)")
find_path(XXHASH_INCLUDE_DIR xxhash.h)
find_library(SLUICE_XXHASH_LIBRARY NAMES libxxhash.a xxhash)
if(XXHASH_INCLUDE_DIR AND SLUICE_XXHASH_LIBRARY)
  set(_sluice_xxhash_found ON)
else()
  set(_sluice_xxhash_found OFF)
endif()
_sluice_missing_add(xxHash _sluice_xxhash_found libxxhash-dev xxhash
                    "-DCMAKE_PREFIX_PATH=<its prefix> (include/xxhash.h, lib/libxxhash.*)")
if(NOT DEFINED BUILD_TESTING OR BUILD_TESTING)
  find_package(Catch2 QUIET)
  _sluice_missing_add(Catch2 Catch2_FOUND catch2 catch2
    "-DCMAKE_PREFIX_PATH=<its prefix>; or -DBUILD_TESTING=OFF to build without the tests")
endif()

if(_sluice_missing)
  file(WRITE ${CMAKE_BINARY_DIR}/missing-dependencies.txt "${_sluice_missing}")
  message(FATAL_ERROR "Sluice: missing dependencies (also in "
          "${CMAKE_BINARY_DIR}/missing-dependencies.txt):\n${_sluice_missing}"
          "Point CMake at packages from modules or Spack with CMAKE_PREFIX_PATH "
          "(module load / spack load set it), or install them (scripts/deps.sh, as root). "
          "See docs/install.md.")
endif()
file(REMOVE ${CMAKE_BINARY_DIR}/missing-dependencies.txt)
