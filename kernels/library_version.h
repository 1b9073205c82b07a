// The run-time check of cuDNN's version against the headers plinth was built with, apart
// from cuDNN (no CUDA header here) so that a test can try versions this machine lacks.
#pragma once

#include <string>

namespace plinth {

struct LibraryVersion {
  int major = 0, minor = 0, patch = 0;
};

// "" when the cuDNN `loaded` at run time serves code built against the `built` headers:
// the same major version (cuDNN keeps its API within one) and a minor version at least the
// headers' (an older minor can lack what they declare). Otherwise one sentence saying what
// is wrong and what to do.
std::string cudnn_version_problem(LibraryVersion built, LibraryVersion loaded);

}  // namespace plinth
