# The CUDA backend is optional: AUTO builds it whenever nvcc is found (also on machines
# without a GPU, so CI catches compile errors); OFF gives a CPU-only build that never
# needs a CUDA header.
#
# cuDNN and cuBLAS may live outside the toolkit, e.g. in PyTorch's pip wheels:
#   -DPLINTH_CUDNN_ROOT=DIR    DIR/include/cudnn_version.h and DIR/lib/libcudnn.so[.9]
#                              (site-packages/nvidia/cudnn; a versioned .so.9 alone will do)
#   -DPLINTH_CUBLAS_ROOT=DIR   DIR/lib/libcublas.so[.13] (site-packages/nvidia/cu13 or
#                              nvidia/cublas); its headers come from the toolkit when it has
#                              them, since such a folder may also hold another CUDA's headers
# A ROOT is searched alone: it never falls back to another copy. The found files are cache
# entries that can also be set directly: PLINTH_CUDNN_INCLUDE_DIR, PLINTH_CUDNN_LIBRARY,
# PLINTH_CUBLAS_INCLUDE_DIR, PLINTH_CUBLAS_LIBRARY.
set(PLINTH_HAVE_CUDA OFF)
set(PLINTH_CUDNN_ROOT "" CACHE PATH "cuDNN folder with include/ and lib/ (default: the toolkit)")
set(PLINTH_CUBLAS_ROOT "" CACHE PATH "cuBLAS folder with lib/ (default: the toolkit)")
# A changed ROOT searches again instead of keeping what the last configure found.
foreach(_lib CUDNN CUBLAS)
  if(NOT "${PLINTH_${_lib}_ROOT}" STREQUAL "${_PLINTH_${_lib}_ROOT_SEARCHED}")
    unset(PLINTH_${_lib}_LIBRARY CACHE)
    unset(PLINTH_${_lib}_INCLUDE_DIR CACHE)
  endif()
  set(_PLINTH_${_lib}_ROOT_SEARCHED "${PLINTH_${_lib}_ROOT}" CACHE INTERNAL "")
endforeach()

# find_library for one CUDA library: in ROOT alone when it is given.
macro(plinth_find_cuda_library var root)
  if(${root})
    find_library(${var} NAMES ${ARGN} PATHS ${${root}} PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
  else()
    find_library(${var} NAMES ${ARGN}
      HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu)
  endif()
endmacro()

if(NOT PLINTH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)   # sm_90 SASS + compute_90 PTX for newer GPUs
    endif()
    enable_language(CUDA)
    if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      # CMake 3.25 does not know nvcc's C++20 flag and fails with "requires the language
      # dialect CUDA20"; nvcc 12+ accepts -std=c++20.
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)

    # CMake has no cuDNN target. Versioned names too: pip wheels ship libcudnn.so.9 with no
    # libcudnn.so link. cuDNN 9 loads its sub-libraries (libcudnn_graph, libcudnn_engines_*,
    # ...) at run time from the library path: scripts/device_check.sh sets it.
    if(PLINTH_CUDNN_ROOT)
      find_path(PLINTH_CUDNN_INCLUDE_DIR cudnn_version.h
        PATHS ${PLINTH_CUDNN_ROOT} PATH_SUFFIXES include NO_DEFAULT_PATH)
    else()
      find_path(PLINTH_CUDNN_INCLUDE_DIR cudnn_version.h
        HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include /usr/include/x86_64-linux-gnu)
    endif()
    plinth_find_cuda_library(PLINTH_CUDNN_LIBRARY PLINTH_CUDNN_ROOT
      cudnn libcudnn.so.9 libcudnn.so.8)
    plinth_find_cuda_library(PLINTH_CUBLAS_LIBRARY PLINTH_CUBLAS_ROOT
      cublas libcublas.so.13 libcublas.so.12)
    find_path(PLINTH_CUBLAS_INCLUDE_DIR cublas_v2.h
      HINTS ${CUDAToolkit_INCLUDE_DIRS} ${PLINTH_CUBLAS_ROOT}/include NO_DEFAULT_PATH)
    # CUDA 13 moved Thrust/CUB under include/cccl, which CMake 3.25 does not add.
    find_path(PLINTH_CCCL_INCLUDE_DIR cub/cub.cuh
      HINTS ${CUDAToolkit_INCLUDE_DIRS}/cccl ${CUDAToolkit_INCLUDE_DIRS})
    set(_found PLINTH_CUDNN_INCLUDE_DIR PLINTH_CUDNN_LIBRARY PLINTH_CUBLAS_INCLUDE_DIR
      PLINTH_CUBLAS_LIBRARY PLINTH_CCCL_INCLUDE_DIR)
    set(_missing "")
    foreach(_var IN LISTS _found)
      if(NOT ${_var})
        string(APPEND _missing " ${_var}")
      endif()
    endforeach()
    if(_missing STREQUAL "")
      add_library(plinth::cudnn INTERFACE IMPORTED)
      set_target_properties(plinth::cudnn PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${PLINTH_CUDNN_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES "${PLINTH_CUDNN_LIBRARY}")
      add_library(plinth::cublas INTERFACE IMPORTED)
      set_target_properties(plinth::cublas PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${PLINTH_CUBLAS_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES "${PLINTH_CUBLAS_LIBRARY}")
      add_library(plinth::cccl INTERFACE IMPORTED)
      set_target_properties(plinth::cccl PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${PLINTH_CCCL_INCLUDE_DIR}")
      set(PLINTH_HAVE_CUDA ON)
      message(STATUS "plinth: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                     "archs ${CMAKE_CUDA_ARCHITECTURES}, cuDNN ${PLINTH_CUDNN_LIBRARY}, "
                     "cuBLAS ${PLINTH_CUBLAS_LIBRARY})")
    else()
      set(_where "toolkit ${CUDAToolkit_LIBRARY_DIR}")
      if(PLINTH_CUDNN_ROOT OR PLINTH_CUBLAS_ROOT)
        string(APPEND _where ", PLINTH_CUDNN_ROOT=${PLINTH_CUDNN_ROOT}, "
                             "PLINTH_CUBLAS_ROOT=${PLINTH_CUBLAS_ROOT}")
      endif()
      set(_missing "not found:${_missing} (searched ${_where})")
      if(PLINTH_CUDA STREQUAL "ON")
        message(FATAL_ERROR "plinth: PLINTH_CUDA=ON but a CUDA dependency is missing: ${_missing}")
      endif()
      message(STATUS "plinth: CUDA backend OFF (${_missing})")
    endif()
  elseif(PLINTH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "plinth: PLINTH_CUDA=ON but no CUDA compiler (nvcc) was found")
  else()
    message(STATUS "plinth: CUDA backend OFF (no nvcc found)")
  endif()
endif()
