// One exception type for every failure a user can cause or meet: bad input files, wrong
// shapes, a missing GPU, out of memory. what() is a single line that names the file or
// the operation and says what is wrong; the CLI prints it and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace plinth {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace plinth
