// Runs a model for one fixed batch shape. Built once: every activation, gradient and
// layer scratch buffer comes from one arena allocated in the constructor, so forward(),
// loss() and backward() never allocate and make no host-side decision that depends on
// data (a CUDA backend can capture them as one graph).
//
// The model is a graph whose node order is topological: forward() runs the nodes in order,
// backward() in reverse. A node that feeds several consumers (or one consumer twice) gets
// its output's gradient summed: the first consumer to run backward writes it (layers
// overwrite their input gradients), each later one writes into a temporary that is then
// added to it. A reshape-only node (flatten) is a view of its input, and so is its
// gradient, unless its input fans out: then its gradient has a buffer of its own, added to
// its input's after its turn.
//
// A batch larger than the backend's slice (Backend::slice_bytes: the CPU's caches) runs slice
// by slice: each slice of consecutive samples goes through every layer, forward and (in
// training, gradients()) loss and backward, before the next, so its activations stay in the
// caches; the layers' buffers hold one slice, the input, labels and output the whole batch.
// The slices' parameter gradients are added up (each slice's loss gradient is already divided
// by the whole batch), giving the batch's gradient to rounding. A training batch stays whole
// where a layer mixes samples (BatchNorm).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "engine/model.h"
#include "engine/parameters.h"

namespace plinth {

class Executor {
 public:
  // Samples per slice: the backend's choice (above), or a divisor of the batch (the batch:
  // whole batches, every node's output holding the batch, as per-layer timing wants).
  static constexpr int kAutoSlice = 0;

  // frozen[i] (may be empty) marks layers that get no parameter gradients and hold their
  // statistics (a BatchNorm in evaluation mode). With training == false no gradient memory
  // is allocated and backward() is unavailable.
  Executor(const Model& model, Parameters& params, Backend& backend, int batch, bool training,
           const std::vector<bool>& frozen = {}, uint64_t seed = 0, int slice = kAutoSlice);

  int batch() const { return batch_; }
  int slice() const { return slice_; }  // samples per slice (the batch: not sliced)
  int slices() const { return batch_ / slice_; }
  const Tensor& input() const { return input_; }
  int32_t* labels() const { return labels_; }
  const Tensor& output() const { return output_; }
  // Softmax probabilities of the last forward+loss (categorical models only).
  float* probabilities() const { return probs_; }
  float* stats() const { return stats_; }  // kStatsSize floats, see backend.h
  size_t arena_bytes() const { return arena_.bytes(); }
  size_t node_count() const { return nodes_.size(); }
  // Node i's output for the slice run last (the whole batch where not sliced).
  const Tensor& node_output(size_t i) const { return nodes_[i].y; }
  // False for a convolution whose max pool computes from it in cache (forward fusion,
  // LayerIO): node_output(i) then holds no defined values.
  bool node_output_kept(size_t i) const { return !nodes_[i].pool_output; }

  // A training step's passes: forward, the loss of the first `valid` rows (the rest of a
  // padded batch is ignored) added to stats(), and backward into the parameter gradients,
  // slice by slice where sliced.
  void gradients(int valid);
  // The passes one by one, the batch whole: forward(false) runs every slice (for output()
  // and loss()); forward(true), loss(.., true) and backward() need an executor that is not
  // sliced (gradients() runs them either way).
  void forward(bool training);
  void loss(int valid, bool training);
  void backward();
  // Slice s's forward pass alone: the node outputs then hold that slice's (inspection).
  void forward_slice(int s, bool training);
  // Called after each slice of gradients() and forward() (after the batch where not sliced)
  // with its samples. The CPU's thread governor changes the thread count there, so that
  // trying another count costs a slice of a large batch rather than whole steps.
  void on_slice_done(std::function<void(int samples)> f) { slice_done_ = std::move(f); }
  void reset_stats();

  // One node's share of forward() and backward(), for callers that time or inspect layers
  // one by one. backward_node() needs node i's output gradient in place (a loss() and the
  // backward passes of the nodes after it) and does nothing for a node that needs none.
  void forward_node(size_t i, bool training);
  void backward_node(size_t i);
  bool node_needs_gradient(size_t i) const { return nodes_[i].needs_grad; }

 private:
  // A gradient written into a temporary by a node's backward, to be added to `to` then.
  struct Accumulation {
    const float* from;
    float* to;
    size_t n;
  };
  struct NodeBuffers {
    std::vector<Tensor> xs, dxs;  // inputs, and where backward writes their gradients
    Tensor y, dy;
    void* scratch = nullptr;
    bool frozen = false;
    bool needs_grad = false;  // false: backward() skips this layer entirely
    std::vector<Tensor> params, grads, buffers;
    std::vector<Tensor> slice_grads;          // sliced: where slices after the first write grads
    std::vector<Accumulation> accumulations;  // after this node's backward
    // Backward fusion (LayerIO): this node takes its input's ReLU backward and bias
    // gradient, or its own were taken by its consumer.
    bool input_relu_backward = false;
    float* input_bias_grad = nullptr;
    bool activation_backward_done = false;
    // Forward fusion (LayerIO): this convolution also computes its pool's output, or this
    // pool's output was computed by its producer.
    std::optional<PooledOutput> pool_output;
    bool forward_done = false, backward_done = false;
  };
  LayerIO io(size_t i, bool training);
  bool sliced() const { return slice_ < batch_; }
  // Points the input, output and parameter-gradient tensors at slice s's.
  void use_slice(int s);
  // The loss of rows [first, first + rows) of the output, of which the first `valid` of the
  // batch count.
  void rows_loss(int first, int rows, int valid, bool training);
  void plan_backward_fusion(const std::vector<bool>& needs_grad);
  void plan_forward_fusion(const std::vector<NodeShapes>& shapes,
                           const std::vector<bool>& needs_grad);

  const Model& model_;
  Parameters& params_;
  Backend& backend_;
  int batch_;
  int slice_;
  int slice_index_ = 0;  // the slice the tensors point at
  bool training_;
  uint64_t seed_;
  DeviceBuffer arena_;
  Tensor input_, output_;          // the whole batch's
  float* output_grad_ = nullptr;   // the whole batch's output gradient (may be null)
  float* slice_grads_ = nullptr;   // sliced training: the later slices' parameter gradients
  int output_pool_producer_ = -1;  // a convolution computing the output (a pool), or -1
  int32_t* labels_ = nullptr;
  float* probs_ = nullptr;
  float* stats_ = nullptr;
  std::vector<NodeBuffers> nodes_;
  std::function<void(int)> slice_done_;
};

}  // namespace plinth
