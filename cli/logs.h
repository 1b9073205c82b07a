// The run's logs as a training hook: JSON history, CSV and TensorBoard, each rewritten or
// appended after every epoch so a crash keeps what was learned so far.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "engine/model.h"
#include "engine/train_hook.h"
#include "engine/trainer.h"

namespace plinth::cli {

class TensorBoardWriter;

class RunLogs : public TrainHook {
 public:
  // --history, --csv and --tensorboard; creates the CSV and TensorBoard files now.
  RunLogs(const Args& args, std::string device, const Model& model);
  ~RunLogs() override;
  bool on_epoch_end(const EpochRecord& record, const TrainState& state) override;
  // The whole run's history with the test result, after the run.
  void finish(const std::vector<EpochRecord>& history, const EvalResult& test);

 private:
  void write_history(const std::vector<EpochRecord>& history, const EvalResult* test) const;
  std::string device_, model_, history_path_, csv_path_;
  std::vector<EpochRecord> seen_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

}  // namespace plinth::cli
