// CudaBackend's CUDA graphs: the ops a call queues on the backend's stream are recorded by
// stream capture, instantiated once, and replayed with one cudaGraphLaunch. A recapture of
// the same ops with other arguments updates the instantiated graph in place.
#include <fmt/format.h>

#include "engine/error.h"
#include "kernels/cuda_backend.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_context.h"

namespace plinth {
namespace {

class CudaGraph final : public OpGraph {
 public:
  CudaGraph(cudaStream_t stream, cudaGraph_t graph) : stream_(stream) { adopt(graph); }
  ~CudaGraph() override {  // statuses are ignored: a destructor must not throw
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  void replay() override {
    PLINTH_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));
    cuda::check_launch("cudaGraphLaunch", __FILE__, __LINE__);
  }
  size_t launches() const override { return nodes_; }

  void instantiate() { PLINTH_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0)); }
  // Takes graph's arguments into the instantiated graph; false when its topology differs.
  bool update(cudaGraph_t graph) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(exec_, graph, &info) != cudaSuccess) {
      cudaGetLastError();  // not sticky: the caller instantiates anew instead
      return false;
    }
    adopt(graph);
    return true;
  }

 private:
  // Never throws: the constructor adopts before anything else can fail.
  void adopt(cudaGraph_t graph) {
    if (graph_) cudaGraphDestroy(graph_);
    graph_ = graph;
    if (cudaGraphGetNodes(graph_, nullptr, &nodes_) != cudaSuccess) {
      cudaGetLastError();
      nodes_ = 0;
    }
  }

  cudaStream_t stream_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  size_t nodes_ = 0;
};

}  // namespace

std::string CudaBackend::capture_unavailable() const {
  if (cuda::sync_launches())
    return "launches are synchronised (PLINTH_SYNC_LAUNCHES, a debugging mode), which a capture "
           "cannot record";
  return "";
}

std::unique_ptr<OpGraph> CudaBackend::capture(const std::function<void()>& ops,
                                              std::unique_ptr<OpGraph> reuse) {
  if (const std::string why = capture_unavailable(); !why.empty()) fail("capture: {}", why);
  // Global mode: a call that cannot be captured (an allocation, a synchronisation) fails
  // during the capture, from any thread, instead of corrupting it.
  PLINTH_CUDA_CHECK(cudaStreamBeginCapture(ctx_->stream, cudaStreamCaptureModeGlobal));
  cudaGraph_t graph = nullptr;
  try {
    ops();
  } catch (...) {
    cudaStreamEndCapture(ctx_->stream, &graph);  // leaves capture mode; the graph is dropped
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  const cudaError_t ended = cudaStreamEndCapture(ctx_->stream, &graph);
  if (ended != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    cuda::library_error("CUDA", "cudaStreamEndCapture", __FILE__, __LINE__,
                        cudaGetErrorString(ended));
  }
  if (auto* previous = dynamic_cast<CudaGraph*>(reuse.get()); previous && previous->update(graph))
    return reuse;
  auto fresh = std::make_unique<CudaGraph>(ctx_->stream, graph);
  fresh->instantiate();
  return fresh;
}

}  // namespace plinth
