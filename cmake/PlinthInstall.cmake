include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(TARGETS plinth plinth_cli EXPORT plinthTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY engine datasets DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/plinth
  FILES_MATCHING PATTERN "*.h" PATTERN "cli" EXCLUDE)
install(DIRECTORY models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/plinth/models)
install(EXPORT plinthTargets NAMESPACE plinth:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/plinth)
configure_package_config_file(cmake/plinthConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/plinthConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/plinth)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/plinthConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/plinthConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/plinthConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/plinth)
