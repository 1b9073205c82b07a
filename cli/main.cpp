// plinth: train, evaluate and benchmark convolutional networks on NVIDIA GPUs or the CPU.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "engine/error.h"

namespace {

const char* kUsage =
    "usage: plinth <command> [options]\n"
    "\n"
    "commands:\n"
    "  train     train a model (default: the seed CNN on Fashion-MNIST)\n"
    "  eval      test loss, accuracy, precision, recall, F1, confusion matrix of a checkpoint\n"
    "  predict   top classes with probabilities for images (IDX, PNG, JPEG or PGM)\n"
    "  export    a checkpoint as an ONNX model\n"
    "  data      pack a data set into one memory-mapped file, or describe one\n"
    "  bench     training and inference throughput, per-layer timing, GEMM rate\n"
    "  info      the build (CUDA, cuDNN, cuBLAS, BLAS, threads, MPI, NCCL) and the devices found\n"
    "  layers    the layer types and their fields, or a model's layers with PyTorch equivalents\n"
    "\n"
    "plinth <command> --help shows each command's options; plinth --version prints the version.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace plinth::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("plinth %s\n", PLINTH_VERSION);
    return 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "train") return train_command(argc - 2, argv + 2);
    if (command == "eval") return eval_command(argc - 2, argv + 2);
    if (command == "predict") return predict_command(argc - 2, argv + 2);
    if (command == "bench") return bench_command(argc - 2, argv + 2);
    if (command == "info") return info_command(argc - 2, argv + 2);
    if (command == "layers") return layers_command(argc - 2, argv + 2);
    if (command == "data") return data_command(argc - 2, argv + 2);
    if (command == "export") return export_command(argc - 2, argv + 2);
    std::fprintf(stderr, "plinth: unknown command '%s'\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const plinth::Error& e) {
    std::fprintf(stderr, "plinth: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "plinth: error: out of host memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plinth: internal error: %s\n", e.what());
    return 3;
  }
}
