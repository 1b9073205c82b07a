#include "kernels/library_version.h"

#include <fmt/format.h>

namespace plinth {

namespace {

std::string text(LibraryVersion v) { return fmt::format("{}.{}.{}", v.major, v.minor, v.patch); }

}  // namespace

std::string cudnn_version_problem(LibraryVersion built, LibraryVersion loaded) {
  if (loaded.major != built.major)
    return fmt::format(
        "cuDNN version mismatch: plinth was built with cuDNN {} but the loaded libcudnn is {}; "
        "install cuDNN {}.x or rebuild plinth",
        text(built), text(loaded), built.major);
  if (loaded.minor < built.minor)
    return fmt::format(
        "cuDNN {} loaded at run time is older than the cuDNN {} headers plinth was built with; "
        "put cuDNN {}.{} or newer first on the library path (LD_LIBRARY_PATH) or rebuild plinth "
        "against the older headers (-DPLINTH_CUDNN_ROOT=...)",
        text(loaded), text(built), built.major, built.minor);
  return "";
}

}  // namespace plinth
