# Data-parallel training (engine/communicator.h) is optional, like the CUDA backend:
#   PLINTH_MPI=AUTO|ON|OFF    MPI through CMake's FindMPI (Open MPI: libopenmpi-dev);
#                             without it plinth trains in one process, unchanged
#   PLINTH_NCCL=AUTO|ON|OFF   NCCL for the gradients of GPU ranks; needs the CUDA backend and
#                             MPI (NCCL's unique id travels over MPI). Searched in the CUDA
#                             toolkit, PLINTH_NCCL_ROOT and the system; without it GPU ranks
#                             average through host memory over MPI
# Sets PLINTH_HAVE_MPI and PLINTH_HAVE_NCCL, and the targets MPI::MPI_CXX and plinth::nccl.
set(PLINTH_MPI AUTO CACHE STRING "Data-parallel training over MPI: AUTO (if found), ON, OFF")
set_property(CACHE PLINTH_MPI PROPERTY STRINGS AUTO ON OFF)
set(PLINTH_NCCL AUTO CACHE STRING "NCCL for GPU ranks: AUTO (with CUDA and MPI), ON, OFF")
set_property(CACHE PLINTH_NCCL PROPERTY STRINGS AUTO ON OFF)
set(PLINTH_NCCL_ROOT "" CACHE PATH "NCCL folder with include/nccl.h and lib/libnccl.so[.2]")

set(PLINTH_HAVE_MPI OFF)
set(PLINTH_HAVE_NCCL OFF)
if(NOT PLINTH_MPI STREQUAL "OFF")
  # MPI's C API from C++ (the project enables no C compiler), without MPI-2's C++ bindings.
  set(MPI_CXX_SKIP_MPICXX TRUE)
  find_package(MPI COMPONENTS CXX QUIET)
  if(MPI_CXX_FOUND)
    set(PLINTH_HAVE_MPI ON)
    message(STATUS "plinth: data-parallel training over MPI ${MPI_CXX_VERSION}")
  elseif(PLINTH_MPI STREQUAL "ON")
    message(FATAL_ERROR "PLINTH_MPI=ON but no MPI was found: install libopenmpi-dev "
      "(scripts/install_deps.sh), or configure with -DPLINTH_MPI=OFF")
  else()
    message(STATUS "plinth: no MPI found, data-parallel training not built (PLINTH_MPI=AUTO)")
  endif()
endif()

if(NOT PLINTH_NCCL STREQUAL "OFF")
  set(_why "")
  if(NOT PLINTH_HAVE_CUDA)
    set(_why "the CUDA backend is not built")
  elseif(NOT PLINTH_HAVE_MPI)
    set(_why "MPI is not built")
  else()
    find_path(PLINTH_NCCL_INCLUDE_DIR nccl.h
      HINTS ${PLINTH_NCCL_ROOT}/include ${CUDAToolkit_INCLUDE_DIRS} /usr/include)
    find_library(PLINTH_NCCL_LIBRARY NAMES nccl libnccl.so.2
      HINTS ${PLINTH_NCCL_ROOT}/lib ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu
      /usr/lib/aarch64-linux-gnu)
    if(PLINTH_NCCL_INCLUDE_DIR AND PLINTH_NCCL_LIBRARY)
      set(PLINTH_HAVE_NCCL ON)
      add_library(plinth::nccl INTERFACE IMPORTED)
      set_target_properties(plinth::nccl PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${PLINTH_NCCL_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES "${PLINTH_NCCL_LIBRARY}")
      message(STATUS "plinth: NCCL for GPU ranks: ${PLINTH_NCCL_LIBRARY}")
    else()
      set(_why "nccl.h or libnccl was not found (set PLINTH_NCCL_ROOT)")
    endif()
  endif()
  if(_why AND PLINTH_NCCL STREQUAL "ON")
    message(FATAL_ERROR "PLINTH_NCCL=ON but ${_why}; or configure with -DPLINTH_NCCL=OFF")
  elseif(_why)
    message(STATUS "plinth: NCCL not built: ${_why} (PLINTH_NCCL=AUTO)")
  endif()
endif()
