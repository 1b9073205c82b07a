# Every dependency comes from Debian's packages: installed (scripts/install_deps.sh), or
# unpacked into a kit's prefix given as CMAKE_PREFIX_PATH (scripts/device_kit.sh).
find_package(fmt REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(OpenMP REQUIRED)
find_package(PNG REQUIRED)  # libpng-dev: image folders and predict on PNG files

# TurboJPEG (libturbojpeg0-dev), libjpeg-turbo's own API, has no CMake package in Debian.
find_library(PLINTH_TURBOJPEG_LIBRARY NAMES turbojpeg REQUIRED)
find_path(PLINTH_TURBOJPEG_INCLUDE_DIR turbojpeg.h REQUIRED)
add_library(plinth::turbojpeg INTERFACE IMPORTED)
set_target_properties(plinth::turbojpeg PROPERTIES
  INTERFACE_LINK_LIBRARIES "${PLINTH_TURBOJPEG_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${PLINTH_TURBOJPEG_INCLUDE_DIR}")

# ONNX export in the tool (libonnx-dev): its protobuf classes and checker; the library
# itself does not depend on it.
find_package(Protobuf REQUIRED)
find_package(ONNX CONFIG REQUIRED)

# Link OpenBLAS's OpenMP build by path: Debian's default libblas.so.3 may be the slow
# reference BLAS, and the pthread build would spin its own threads against ours. The
# OpenMP build runs single-threaded when called inside our parallel regions. Debian keeps
# it in lib/<arch>/openblas-openmp under each prefix (/usr, or a kit's unpacked packages on
# CMAKE_PREFIX_PATH); the suffix is searched before the folder above it.
find_library(PLINTH_OPENBLAS_LIBRARY NAMES openblas PATH_SUFFIXES openblas-openmp REQUIRED)
if(NOT PLINTH_OPENBLAS_LIBRARY MATCHES "/openblas-openmp/")
  message(WARNING "plinth: OpenBLAS OpenMP build not found, using ${PLINTH_OPENBLAS_LIBRARY}; "
                  "install libopenblas-openmp-dev to avoid thread oversubscription")
endif()
find_path(PLINTH_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas-openmp openblas REQUIRED)
add_library(plinth::openblas INTERFACE IMPORTED)
set_target_properties(plinth::openblas PROPERTIES
  INTERFACE_LINK_LIBRARIES "${PLINTH_OPENBLAS_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${PLINTH_CBLAS_INCLUDE_DIR}")
message(STATUS "plinth: BLAS ${PLINTH_OPENBLAS_LIBRARY}")
