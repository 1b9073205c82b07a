#include "cli/logs.h"

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/tensorboard.h"
#include "engine/atomic_file.h"
#include "engine/error.h"

namespace plinth::cli {

RunLogs::RunLogs(const Args& args, std::string device, const Model& model)
    : device_(std::move(device)),
      model_(model.source),
      history_path_(args.str("history")),
      csv_path_(args.str("csv")) {
  if (!csv_path_.empty())
    write_text_file(csv_path_,
                    "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,samples_per_second\n",
                    false, "CSV log");
  if (args.has("tensorboard"))
    tensorboard_ = std::make_unique<TensorBoardWriter>(args.str("tensorboard"));
}

RunLogs::~RunLogs() = default;

bool RunLogs::on_epoch_end(const EpochRecord& r, const TrainState&) {
  seen_.push_back(r);
  if (!csv_path_.empty())
    write_text_file(
        csv_path_,
        fmt::format("{},{:.6f},{:.6f},{:.6f},{:.6f},{:.6g},{:.3f},{:.1f}\n", r.epoch, r.loss,
                    r.accuracy, r.val_loss, r.val_accuracy, r.lr, r.seconds, r.samples_per_second),
        true, "CSV log");
  if (tensorboard_) {
    tensorboard_->add_scalar("epoch_loss", static_cast<float>(r.loss), r.epoch);
    tensorboard_->add_scalar("epoch_accuracy", static_cast<float>(r.accuracy), r.epoch);
    tensorboard_->add_scalar("epoch_val_loss", static_cast<float>(r.val_loss), r.epoch);
    tensorboard_->add_scalar("epoch_val_accuracy", static_cast<float>(r.val_accuracy), r.epoch);
    tensorboard_->add_scalar("learning_rate", static_cast<float>(r.lr), r.epoch);
    tensorboard_->add_scalar("samples_per_second", static_cast<float>(r.samples_per_second),
                             r.epoch);
    tensorboard_->flush();
  }
  write_history(seen_, nullptr);
  return true;
}

void RunLogs::finish(const std::vector<EpochRecord>& history, const EvalResult& test) {
  write_history(history, &test);
  if (tensorboard_) {
    tensorboard_->add_scalar("test_accuracy", static_cast<float>(test.accuracy),
                             static_cast<int64_t>(history.size()));
    tensorboard_->add_scalar("test_loss", static_cast<float>(test.loss),
                             static_cast<int64_t>(history.size()));
    tensorboard_->close();
  }
}

void RunLogs::write_history(const std::vector<EpochRecord>& history, const EvalResult* test) const {
  if (history_path_.empty()) return;
  nlohmann::json epochs = nlohmann::json::array();
  for (const EpochRecord& r : history) {
    nlohmann::json e{{"epoch", r.epoch},
                     {"loss", r.loss},
                     {"accuracy", r.accuracy},
                     {"val_loss", r.val_loss},
                     {"val_accuracy", r.val_accuracy},
                     {"seconds", r.seconds},
                     {"samples_per_second", r.samples_per_second},
                     {"lr", r.lr}};
    if (r.test_accuracy >= 0) e["test_accuracy"] = r.test_accuracy;
    if (r.above_threshold >= 0) {
      e["unlabelled_loss"] = r.unlabelled_loss;
      e["above_threshold"] = r.above_threshold;
      e["pseudo_labels"] = r.pseudo_labels;
    }
    epochs.push_back(e);
  }
  nlohmann::json j{{"device", device_}, {"model", model_}, {"epochs", epochs}};
  if (test) j["test"] = {{"loss", test->loss}, {"accuracy", test->accuracy}};
  write_file_atomically(history_path_, j.dump(2) + "\n");
}

}  // namespace plinth::cli
