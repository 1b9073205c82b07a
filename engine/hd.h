// Marks small inline functions that both halves of the op interface share: compiled for
// the host by the C++ compiler and for host and device by nvcc. Keeping per-element math
// here is how the CPU and CUDA backends compute the same function without copy-paste.
#pragma once

#if defined(__CUDACC__)
#define PLINTH_HD __host__ __device__ __forceinline__
#else
#define PLINTH_HD inline
#endif
