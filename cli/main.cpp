// plinth: train, evaluate and benchmark convolutional networks on NVIDIA GPUs or the CPU.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "engine/error.h"
#include "engine/user_text.h"

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
    int status = 2;
    if (command == "train")
      status = train_command(argc - 2, argv + 2);
    else if (command == "eval")
      status = eval_command(argc - 2, argv + 2);
    else if (command == "predict")
      status = predict_command(argc - 2, argv + 2);
    else if (command == "bench")
      status = bench_command(argc - 2, argv + 2);
    else if (command == "info")
      status = info_command(argc - 2, argv + 2);
    else if (command == "layers")
      status = layers_command(argc - 2, argv + 2);
    else if (command == "data")
      status = data_command(argc - 2, argv + 2);
    else if (command == "export")
      status = export_command(argc - 2, argv + 2);
    else
      std::fprintf(stderr, "plinth: unknown command %s\n%s", plinth::quoted_input(command).c_str(),
                   kUsage);
    // Results (eval --json, predict --json) go to stdout: a full disk or a closed pipe
    // there is an error, not a silent success.
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
      plinth::fail("standard output: cannot write the result: {}", std::strerror(errno));
    return status;
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
