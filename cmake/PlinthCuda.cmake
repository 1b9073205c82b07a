# The CUDA backend is optional: AUTO builds it whenever nvcc is found (also on machines
# without a GPU, so CI catches compile errors); OFF gives a CPU-only build that never
# needs a CUDA header.
set(PLINTH_HAVE_CUDA OFF)
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

    # CMake has no cuDNN target: find it next to the toolkit or in the system paths.
    find_path(PLINTH_CUDNN_INCLUDE_DIR cudnn_version.h
      HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include /usr/include/x86_64-linux-gnu)
    find_library(PLINTH_CUDNN_LIBRARY cudnn
      HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
    # CUDA 13 moved Thrust/CUB under include/cccl, which CMake 3.25 does not add.
    find_path(PLINTH_CCCL_INCLUDE_DIR cub/cub.cuh
      HINTS ${CUDAToolkit_INCLUDE_DIRS}/cccl ${CUDAToolkit_INCLUDE_DIRS})
    if(PLINTH_CUDNN_INCLUDE_DIR AND PLINTH_CUDNN_LIBRARY AND PLINTH_CCCL_INCLUDE_DIR)
      add_library(plinth::cudnn INTERFACE IMPORTED)
      set_target_properties(plinth::cudnn PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${PLINTH_CUDNN_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES "${PLINTH_CUDNN_LIBRARY}")
      add_library(plinth::cccl INTERFACE IMPORTED)
      set_target_properties(plinth::cccl PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${PLINTH_CCCL_INCLUDE_DIR}")
      set(PLINTH_HAVE_CUDA ON)
      message(STATUS "plinth: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                     "archs ${CMAKE_CUDA_ARCHITECTURES}, cuDNN ${PLINTH_CUDNN_LIBRARY})")
    else()
      set(_missing "cuDNN include=${PLINTH_CUDNN_INCLUDE_DIR} lib=${PLINTH_CUDNN_LIBRARY} cccl=${PLINTH_CCCL_INCLUDE_DIR}")
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
