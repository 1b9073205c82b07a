#include <cstdio>
#include "cpu_fallback/conv.h"
using namespace plinth;
int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 64;
  struct S { const char* name; ConvShape s; };
  S shapes[] = {
      {"seed conv1", {.n = n, .c = 1, .h = 28, .w = 28, .k = 32, .r = 3, .s = 3}},
      {"seed conv2", {.n = n, .c = 32, .h = 13, .w = 13, .k = 64, .r = 3, .s = 3}},
      {"seed conv3", {.n = n, .c = 64, .h = 5, .w = 5, .k = 64, .r = 3, .s = 3}},
      {"res stem", {.n = n, .c = 1, .h = 28, .w = 28, .k = 16, .r = 3, .s = 3, .pad = 1}},
      {"res s1 32@14", {.n = n, .c = 32, .h = 14, .w = 14, .k = 32, .r = 3, .s = 3, .pad = 1}},
      {"res s2 64@7", {.n = n, .c = 64, .h = 7, .w = 7, .k = 64, .r = 3, .s = 3, .pad = 1}},
      {"res s3 128@4", {.n = n, .c = 128, .h = 4, .w = 4, .k = 128, .r = 3, .s = 3, .pad = 1}},
  };
  for (int rep = 0; rep < 2; ++rep)
  for (auto& sh : shapes) {
    cpu::ConvWorkspace ws(2, cpu::ConvWorkspace::kDefaultChunkBytes, cpu::ConvPolicy::fastest);
    cpu::conv2d_prepare<float>(ws, sh.s);
    const cpu::ConvPlan& p = ws.prepare(sh.s, 4);
    std::printf("%-14s chunks %2d x%2d  fwd %7.3f/%7.3f ms  bwd-data %7.3f/%7.3f  bwd-filter %7.3f/%7.3f  (gemm/winograd, per thread per call)\n",
                sh.name, p.chunks, p.max_chunk, p.timing.gemm[0]*1e3, p.timing.winograd[0]*1e3,
                p.timing.gemm[1]*1e3, p.timing.winograd[1]*1e3, p.timing.gemm[2]*1e3, p.timing.winograd[2]*1e3);
  }
}
