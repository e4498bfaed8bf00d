# What `cmake --install build --prefix P` puts under P (docs/install.md):
#
#   bin/sluice, bin/sluice-mpi               the CLI (sluice-mpi where MPI is built)
#   include/sluice/*.hpp                     the SDK's public headers (not engine/)
#   lib/libsluice_*.a                        the SDK's static libraries
#   lib/cmake/Sluice/                        find_package(Sluice): Sluice::sdk
#   lib/pkgconfig/sluice.pc                  pkg-config --cflags --libs sluice
#   lib/sluice/                              shared libraries bundled by scripts/package.sh
#   share/bash-completion/completions/sluice
#   share/doc/sluice/                        README, docs/, examples/
#
# The binaries look for their libraries in ../lib/sluice first ($ORIGIN, so a tree moved
# or unpacked anywhere works), then in the non-system folders they were linked from (a
# Spack or module MPI); libslurm is opened with dlopen and libmpi is the site's.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SLUICE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Sluice)
set(SLUICE_INSTALL_BUNDLEDIR ${CMAKE_INSTALL_LIBDIR}/sluice)

set(_sluice_programs sluice)
if(TARGET sluice-mpi)
  list(APPEND _sluice_programs sluice-mpi)
endif()
file(RELATIVE_PATH _sluice_bin_to_bundle ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}
     ${CMAKE_INSTALL_PREFIX}/${SLUICE_INSTALL_BUNDLEDIR})
# The build tree's binaries get the same RUNPATH: otherwise CMake pads theirs with empty
# entries (room for the install-time rewrite), and an empty entry means the current
# folder, so every `sluice put` a task runs would first look for libc in the task's folder.
set_target_properties(${_sluice_programs} PROPERTIES
  INSTALL_RPATH "$ORIGIN/${_sluice_bin_to_bundle}"
  INSTALL_RPATH_USE_LINK_PATH TRUE
  BUILD_WITH_INSTALL_RPATH TRUE)
install(TARGETS ${_sluice_programs} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The SDK: sluice_sdk and every library of Sluice it links (static archives, so a program
# built against them needs the whole closure), as Sluice::<name without sluice_>.
set(_sluice_sdk_closure sluice_sdk sluice_core sluice_cli sluice_toml sluice_sqlite3 sluice_hdf5
    sluice_backend_common sluice_backend_inproc sluice_backend_local sluice_backend_slurm
    sluice_backend_pilot sluice_pilot_wire)
foreach(_t sluice_cuda_probe sluice_backend_mpi sluice_mpi_wire)
  if(TARGET ${_t})
    list(APPEND _sluice_sdk_closure ${_t})
  endif()
endforeach()
foreach(_t ${_sluice_sdk_closure})
  string(REGEX REPLACE "^sluice_" "" _name ${_t})
  set_target_properties(${_t} PROPERTIES EXPORT_NAME ${_name})
  # The backends' and launchers' own folders are for this tree's targets only: an
  # installed program sees include/ (the public headers), never the source tree.
  get_target_property(_dirs ${_t} INTERFACE_INCLUDE_DIRECTORIES)
  if(_dirs)
    set(_wrapped "")
    foreach(_dir ${_dirs})
      if(_dir MATCHES "^(${PROJECT_SOURCE_DIR}|${PROJECT_BINARY_DIR})(/|$)")
        list(APPEND _wrapped "$<BUILD_INTERFACE:${_dir}>")
      else()
        list(APPEND _wrapped "${_dir}")
      endif()
    endforeach()
    set_property(TARGET ${_t} PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_wrapped}")
  endif()
endforeach()
install(TARGETS ${_sluice_sdk_closure} EXPORT SluiceTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT SluiceTargets NAMESPACE Sluice:: DESTINATION ${SLUICE_INSTALL_CMAKEDIR})

# The public headers: the SDK's, never the engine's (tests/layout checks that the SDK
# headers need none of them).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/core/include/sluice
                  ${PROJECT_SOURCE_DIR}/launchers/sdk/include/sluice
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp" PATTERN engine EXCLUDE)

# find_package(Sluice): the config finds the packages the exported targets name.
set(SLUICE_CONFIG_DEPENDENCIES "")
macro(_sluice_config_dependency line)
  string(APPEND SLUICE_CONFIG_DEPENDENCIES "${line}\n")
endmacro()
_sluice_config_dependency("find_dependency(Threads)")
_sluice_config_dependency("find_dependency(tl-expected)")
_sluice_config_dependency("find_dependency(nlohmann_json)")
_sluice_config_dependency("find_dependency(fmt)")
_sluice_config_dependency("find_dependency(CLI11)")
if(NOT SLUICE_STATIC_HDF5)
  _sluice_config_dependency("find_dependency(HDF5 COMPONENTS C)")
elseif(NOT SLUICE_ZLIB_STATIC_LIBRARY)
  _sluice_config_dependency("find_dependency(ZLIB)")
endif()
if(NOT SLUICE_SQLITE3_STATIC_LIBRARY)
  _sluice_config_dependency("find_dependency(SQLite3)")
endif()
if(TARGET sluice_backend_mpi)
  _sluice_config_dependency("set(MPI_CXX_SKIP_MPICXX ON)\nfind_dependency(MPI COMPONENTS CXX)")
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/SluiceConfig.cmake.in
  ${PROJECT_BINARY_DIR}/SluiceConfig.cmake INSTALL_DESTINATION ${SLUICE_INSTALL_CMAKEDIR})
# 0.x: a minor version may change the SDK.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/SluiceConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/SluiceConfig.cmake
              ${PROJECT_BINARY_DIR}/SluiceConfigVersion.cmake
        DESTINATION ${SLUICE_INSTALL_CMAKEDIR})

# pkg-config: one link line for the same closure, Sluice's archives in a group (they
# refer to one another), then what they need. -std=c++20 because the headers need it.
set(_pc_libs "-Wl,--start-group")
foreach(_t ${_sluice_sdk_closure})
  get_target_property(_type ${_t} TYPE)
  if(_type STREQUAL "STATIC_LIBRARY")
    string(APPEND _pc_libs " -l${_t}")
  endif()
endforeach()
string(APPEND _pc_libs " -Wl,--end-group")
macro(_sluice_pc_lib lib)
  if("${lib}" MATCHES "^[/-]")
    string(APPEND _pc_libs " ${lib}")
  else()
    string(APPEND _pc_libs " -l${lib}")
  endif()
endmacro()
if(SLUICE_STATIC_HDF5)
  foreach(_l ${SLUICE_HDF5_STATIC_LIBRARY} ${SLUICE_SZIP_LIBRARY} ${SLUICE_AEC_LIBRARY})
    _sluice_pc_lib(${_l})
  endforeach()
  if(SLUICE_ZLIB_STATIC_LIBRARY)
    _sluice_pc_lib(${SLUICE_ZLIB_STATIC_LIBRARY})
  else()
    _sluice_pc_lib(z)
  endif()
else()
  foreach(_l ${HDF5_C_LIBRARIES})
    _sluice_pc_lib(${_l})
  endforeach()
endif()
if(SLUICE_SQLITE3_STATIC_LIBRARY)
  _sluice_pc_lib(${SLUICE_SQLITE3_STATIC_LIBRARY})
else()
  _sluice_pc_lib(sqlite3)
endif()
_sluice_pc_lib(${SLUICE_XXHASH_LIBRARY})
# The pilot backend seals its connections with libsodium (static archive when found).
if(SODIUM_LIBRARY)
  _sluice_pc_lib(${SODIUM_LIBRARY})
endif()
string(APPEND _pc_libs " -lfmt")
if(TARGET sluice_backend_mpi)
  foreach(_l ${MPI_CXX_LINK_FLAGS} ${MPI_CXX_LIBRARIES})
    _sluice_pc_lib(${_l})
  endforeach()
endif()
string(APPEND _pc_libs " -lpthread -ldl -lm")
set(_pc_cflags "-std=c++20")
set(SLUICE_PC_LIBS "${_pc_libs}")
set(SLUICE_PC_CFLAGS "${_pc_cflags}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/sluice.pc.in ${PROJECT_BINARY_DIR}/sluice.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sluice.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(FILES ${PROJECT_SOURCE_DIR}/packaging/bash-completion/sluice
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
# The example workflows and SDK sources (what the docs tell users to run).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        USE_SOURCE_PERMISSIONS)

# scripts/package.sh sets SLUICE_PACKAGING=1. The shared libraries the programs need,
# but those of the C runtime and those a site provides (MPI and what it loads, Slurm,
# CUDA), are copied into lib/sluice, where $ORIGIN finds them: with Debian's packages
# that is none (the C++ runtime, HDF5, SQLite, xxHash are linked statically). The
# archives lose their debug information (CPack strips only the programs).
install(CODE "set(_sluice_bundledir \"${SLUICE_INSTALL_BUNDLEDIR}\")
set(_sluice_libdir \"${CMAKE_INSTALL_LIBDIR}\")
set(_sluice_strip \"${CMAKE_STRIP}\")")
install(CODE [[
  if("$ENV{SLUICE_PACKAGING}" STREQUAL "1")
    set(_root "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
    set(_programs "${_root}/bin/sluice")
    if(EXISTS "${_root}/bin/sluice-mpi")
      list(APPEND _programs "${_root}/bin/sluice-mpi")
    endif()
    file(GET_RUNTIME_DEPENDENCIES EXECUTABLES ${_programs}
      RESOLVED_DEPENDENCIES_VAR _deps UNRESOLVED_DEPENDENCIES_VAR _missing
      PRE_EXCLUDE_REGEXES
        "^ld-linux" "^linux-vdso" "^lib(c|m|dl|rt|pthread|util|resolv|gcc_s|stdc\\+\\+)\\.so"
        "^lib(mpi|mpich|mpicxx|mpi_cxx|open-rte|open-pal|pmix|pmi|pmi2|ucp|ucs|uct|fabric|psm2|hwloc|event|ibverbs|rdmacm|udev|slurm|cuda|cudart|nvidia)")
    foreach(_lib ${_deps})
      message(STATUS "Bundling: ${_lib}")
      file(INSTALL "${_lib}" DESTINATION "${_root}/${_sluice_bundledir}" FOLLOW_SYMLINK_CHAIN)
    endforeach()
    if(_missing)
      message(WARNING "sluice: not bundled, not found: ${_missing}")
    endif()
    if(_sluice_strip)
      file(GLOB _archives "${_root}/${_sluice_libdir}/libsluice_*.a")
      foreach(_a ${_archives})
        execute_process(COMMAND "${_sluice_strip}" --strip-debug "${_a}")
      endforeach()
    endif()
  endif()
]])
