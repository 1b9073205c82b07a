// One exception type for every failure a user can cause or meet: bad input files, wrong
// shapes, a missing GPU, out of memory. what() is a single line that names the file or
// the operation and says what is wrong; the CLI prints it and exits non-zero. Messages
// speak the library's terms: one about a setting starts with its name as the C++ API
// spells it ("freeze: ...", "device cuda: ..."), which a front end such as the plinth
// tool replaces with the option that set it ("--freeze: ...").
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
