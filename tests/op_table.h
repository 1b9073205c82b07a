// The op table's shared parts: what the entries of every family use, and the function
// through which each family's file adds its entries. op_table() (op_table.cpp) calls
// them; tests/op_harness.h says how an entry runs on two backends and is compared.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "tests/op_harness.h"

namespace plinth::test {

using OpList = std::vector<std::unique_ptr<OpTest>>;

// Buffers the op must overwrite start as 13s, so "overwrites" is tested.
inline constexpr float kGarbage = 13.0f;
inline std::vector<float> garbage(size_t n) { return std::vector<float>(n, kGarbage); }

inline constexpr Activation kActivations[] = {Activation::none, Activation::relu,
                                              Activation::sigmoid, Activation::tanh};

inline const char* name_of(Activation act) {
  switch (act) {
    case Activation::relu:
      return "relu";
    case Activation::sigmoid:
      return "sigmoid";
    case Activation::tanh:
      return "tanh";
    default:
      return "none";
  }
}

// The batch of the large entries, and the seed CNN's conv1 output at that batch: 88.6
// million values, past 2^26 elements per launch and far past the kernels' block caps.
inline constexpr int kLargeBatch = 4096;
inline constexpr int kConv1Channels = 32, kConv1Height = 26, kConv1Width = 26;

// The ops of the layers' forward and backward passes (op_table_layers.cpp): convolution,
// GEMM, bias, activations, pooling.
void add_layer_ops(OpList& t);
// The ops around them in a training step (op_table_training.cpp): losses, dropout, the
// optimizer, reductions, batch assembly.
void add_training_ops(OpList& t);
// The ops of graphs and their layers (op_table_graph.cpp): average pooling, batch
// normalisation, merging branches.
void add_graph_ops(OpList& t);

}  // namespace plinth::test
