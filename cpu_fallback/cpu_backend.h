// The CPU implementation of the op interface: host memory, OpenMP loops and OpenBLAS.
// Each op family's file in this folder (conv.cpp, pool.cpp, ...) holds its templates,
// float and double (the tests check the double instantiations), and defines the
// CpuBackend ops of its family on the float instantiation; this header declares them all
// from the op list of engine/backend.h.
// Like a device stream, a backend takes one caller at a time: its convolution scratch
// buffers are shared by its ops.
#pragma once

#include <memory>
#include <string>

#include "cpu_fallback/conv_workspace.h"
#include "engine/backend.h"

namespace plinth {

class CpuBackend final : public Backend {
 public:
  // A slice's activations, what a batch is cut to (Backend::slice_bytes): a little more than
  // the seed CNN's 32 training samples (10 MB) or 64 inference samples (11 MB), the sizes
  // that ran fastest per sample on 2 EPYC cores (2 x 2 MB L2, 32 MB L3: batch 16-64 trained
  // at 12,000-12,900 samples/s and batch 256 at 10,500-10,900; inference at 64-128 at
  // 38,000-44,000 and 256 at 33,000; 2026-12-02).
  static constexpr size_t kSliceBytes = size_t{12} << 20;

  // threads <= 0 means one per core.
  explicit CpuBackend(int threads);

  int threads() const { return threads_; }

  DeviceKind kind() const override { return DeviceKind::cpu; }
  std::string description() const override;
  size_t available_memory() const override;
  int max_threads() const override { return max_threads_; }
  void use_threads(int threads) override;
  size_t slice_bytes() const override { return kSliceBytes; }

  PLINTH_BACKEND_OPS(PLINTH_DECLARE_OVERRIDE_OP)

 private:
  int max_threads_;
  int threads_;  // the ops' threads now, 1..max_threads_
  cpu::ConvWorkspace conv_;
};

}  // namespace plinth
