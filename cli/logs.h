// The run's logs: JSON history, CSV and TensorBoard, each rewritten or appended after
// every epoch so a crash keeps what was learned so far.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/cli/args.h"
#include "engine/model.h"
#include "engine/trainer.h"

namespace plinth {
class TensorBoardWriter;
}

namespace plinth::cli {

class RunLogs {
 public:
  RunLogs(const Args& args, std::string device, const Model& model);
  ~RunLogs();
  void epoch(const EpochRecord& r);
  void finish(const std::vector<EpochRecord>& history, const EvalResult& test);

 private:
  void write_history(const std::vector<EpochRecord>& history, const EvalResult* test) const;
  std::string device_, model_, history_path_, csv_path_;
  std::vector<EpochRecord> seen_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

}  // namespace plinth::cli
