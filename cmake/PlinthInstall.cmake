# `cmake --install <build> --prefix P` gives
#   P/include/plinth/{engine,datasets}/*.h  the public headers (the plinth target's HEADERS
#                                          file set) at their source-tree paths, so
#                                          "engine/sequential.h" works as in the tree,
#   P/include/plinth/plinth.h               the umbrella header: #include <plinth/plinth.h>,
#   P/lib/libplinth.a (or .so), P/bin/plinth, P/share/plinth/models/*.json,
#   P/lib/cmake/plinth                      the package: find_package(plinth CONFIG REQUIRED)
#                                          and target_link_libraries(app PRIVATE plinth::plinth).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The public headers are C++20 and include <nlohmann/json.hpp> (model.h), so their users
# need both; include/ itself is on the path for <plinth/plinth.h>.
target_compile_features(plinth INTERFACE cxx_std_20)
target_link_libraries(plinth INTERFACE nlohmann_json::nlohmann_json)
target_include_directories(plinth INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

# With -DBUILD_SHARED_LIBS=ON the installed tool finds libplinth.so next to itself.
set_target_properties(plinth_cli PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")

install(TARGETS plinth plinth_cli EXPORT plinthTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/plinth)
install(FILES engine/plinth.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/plinth)
install(DIRECTORY models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/plinth/models)
install(EXPORT plinthTargets NAMESPACE plinth:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/plinth)

# A static plinth carries its private dependencies to every program that links it; the
# package finds them again, starting with the very files this build linked.
get_filename_component(PLINTH_OPENBLAS_DIR "${PLINTH_OPENBLAS_LIBRARY}" DIRECTORY)
get_filename_component(PLINTH_TURBOJPEG_DIR "${PLINTH_TURBOJPEG_LIBRARY}" DIRECTORY)
if(PLINTH_HAVE_CUDA)
  get_filename_component(PLINTH_CUDNN_DIR "${PLINTH_CUDNN_LIBRARY}" DIRECTORY)
  get_filename_component(PLINTH_CUBLAS_DIR "${PLINTH_CUBLAS_LIBRARY}" DIRECTORY)
endif()
if(PLINTH_HAVE_NCCL)
  get_filename_component(PLINTH_NCCL_DIR "${PLINTH_NCCL_LIBRARY}" DIRECTORY)
endif()
configure_package_config_file(cmake/plinthConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/plinthConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/plinth)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/plinthConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/plinthConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/plinthConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/plinth)
