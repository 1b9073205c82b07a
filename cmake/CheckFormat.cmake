# Fails when a C++ or CUDA source differs from what clang-format makes of it, or has a
# line over 100 columns (string literals clang-format cannot break). Run by CTest.
file(GLOB_RECURSE files RELATIVE ${SOURCE_DIR}
  ${SOURCE_DIR}/engine/*.h ${SOURCE_DIR}/engine/*.cpp ${SOURCE_DIR}/cli/*.h ${SOURCE_DIR}/cli/*.cpp
  ${SOURCE_DIR}/cpu_fallback/*.h ${SOURCE_DIR}/cpu_fallback/*.cpp
  ${SOURCE_DIR}/kernels/*.h ${SOURCE_DIR}/kernels/*.cpp ${SOURCE_DIR}/kernels/*.cu
  ${SOURCE_DIR}/kernels/*.cuh ${SOURCE_DIR}/datasets/*.h ${SOURCE_DIR}/datasets/*.cpp
  ${SOURCE_DIR}/distributed/*.h ${SOURCE_DIR}/distributed/*.cpp
  ${SOURCE_DIR}/tests/*.h ${SOURCE_DIR}/tests/*.cpp ${SOURCE_DIR}/fuzz/*.h ${SOURCE_DIR}/fuzz/*.cpp
  ${SOURCE_DIR}/examples/*.cpp)
string(REPEAT "." 101 over_100)
set(bad "")
foreach(f IN LISTS files)
  execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${f} WORKING_DIRECTORY ${SOURCE_DIR}
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  file(STRINGS ${SOURCE_DIR}/${f} long REGEX "^${over_100}")
  if(NOT rc EQUAL 0 OR NOT long STREQUAL "")
    list(APPEND bad ${f})
  endif()
endforeach()
list(LENGTH files n)
if(bad)
  list(JOIN bad " " bad)
  message(FATAL_ERROR "not formatted (run clang-format -i; keep lines <= 100 columns): ${bad}")
endif()
message(STATUS "${n} files follow .clang-format")
