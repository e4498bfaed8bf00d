# CPack: scripts/package.sh makes sluice-VERSION-Linux-x86_64.tar.gz, the install tree
# (cmake/SluiceInstall.cmake) in one relocatable folder of the same name, binaries
# stripped. The shared libraries it bundles come from SLUICE_BUNDLE_LIBS=1 at install.
set(CPACK_GENERATOR TGZ)
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VENDOR "Sluice")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Workflows of tasks on a laptop, Slurm clusters and MPI ranks")
set(CPACK_SYSTEM_NAME "Linux-${CMAKE_SYSTEM_PROCESSOR}")
set(CPACK_PACKAGE_FILE_NAME "sluice-${PROJECT_VERSION}-${CPACK_SYSTEM_NAME}")
set(CPACK_INCLUDE_TOPLEVEL_DIRECTORY ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_PACKAGE_CHECKSUM SHA256)
include(CPack)
