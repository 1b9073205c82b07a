# Every dependency comes from Debian's packages (see scripts/install_deps.sh).
find_package(fmt REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(OpenMP REQUIRED)

# Link OpenBLAS's OpenMP build by path: Debian's default libblas.so.3 may be the slow
# reference BLAS, and the pthread build would spin its own threads against ours. The
# OpenMP build runs single-threaded when called inside our parallel regions.
find_library(PLINTH_OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
if(NOT PLINTH_OPENBLAS_LIBRARY)
  find_library(PLINTH_OPENBLAS_LIBRARY NAMES openblas REQUIRED)
  message(WARNING "plinth: OpenBLAS OpenMP build not found, using ${PLINTH_OPENBLAS_LIBRARY}; "
                  "install libopenblas-openmp-dev to avoid thread oversubscription")
endif()
find_path(PLINTH_CBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/aarch64-linux-gnu/openblas-openmp
  PATH_SUFFIXES openblas REQUIRED)
add_library(plinth::openblas INTERFACE IMPORTED)
set_target_properties(plinth::openblas PROPERTIES
  INTERFACE_LINK_LIBRARIES "${PLINTH_OPENBLAS_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${PLINTH_CBLAS_INCLUDE_DIR}")
message(STATUS "plinth: BLAS ${PLINTH_OPENBLAS_LIBRARY}")
