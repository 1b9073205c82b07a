#include "cli/signals.h"

#include <csignal>

namespace plinth::cli {

namespace {

volatile std::sig_atomic_t g_received = 0;

void on_signal(int) { g_received = 1; }

}  // namespace

StopOnSignal::StopOnSignal() {
  g_received = 0;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

StopOnSignal::~StopOnSignal() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

bool StopOnSignal::received() const { return g_received != 0; }

}  // namespace plinth::cli
