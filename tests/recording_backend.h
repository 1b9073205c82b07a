// A Backend decorator that logs every op called with its arguments before passing it on,
// and that records graphs as a CUDA backend does (capture() keeps the calls with their
// arguments, replay() calls them again), so that the CPU can test what replaying a
// captured step means: a step whose ops or arguments change from call to call would
// replay wrongly here as on a GPU. It can also say it is a CUDA device, so that the
// trainer uses its GPU habits (it looks at the step checks only every few steps).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace plinth::test {

class RecordingBackend final : public Backend {
 public:
  explicit RecordingBackend(Backend& inner, DeviceKind kind_to_report = DeviceKind::cpu)
      : inner_(inner), kind_(kind_to_report) {}

  DeviceKind kind() const override { return kind_; }
  std::string description() const override { return "recording " + inner_.description(); }
  size_t available_memory() const override { return inner_.available_memory(); }

  // One line per op called ("gather_batch(p:0x..., ...)"), per mark() and per capture
  // ("capture {", the captured ops, "}") and replay ("replay").
  const std::vector<std::string>& log() const { return log_; }
  void mark(const std::string& line) { log_.push_back(line); }
  void clear_log() { log_.clear(); }
  int captures() const { return captures_; }

  std::string capture_unavailable() const override { return ""; }
  std::unique_ptr<OpGraph> capture(const std::function<void()>& ops,
                                   std::unique_ptr<OpGraph> reuse) override;

  PLINTH_BACKEND_OPS(PLINTH_DECLARE_OVERRIDE_OP)

 private:
  class Graph;
  // Logs `name(args)`, then runs `run` now or, while capturing, keeps it for the replays.
  template <typename Run, typename... A>
  auto call(const char* name, Run&& run, const A&... args) -> decltype(run());
  // Ops that a capture cannot record (they allocate, or wait for the device) fail during
  // one, as they would on a GPU.
  void refuse_in_capture(const char* name) const;

  Backend& inner_;
  DeviceKind kind_;
  std::vector<std::string> log_;
  Graph* capturing_ = nullptr;
  int captures_ = 0;
};

}  // namespace plinth::test
