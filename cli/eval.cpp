// plinth eval: a checkpoint on the test part of --data.
#include <algorithm>
#include <limits>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/checkpoint_model.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "engine/error.h"
#include "engine/metrics.h"
#include "engine/trainer.h"
#include "engine/user_text.h"

namespace plinth::cli {

namespace {

Args eval_args() {
  Args a("eval",
         "Evaluate a checkpoint on the test set: loss, accuracy, top-k accuracy, precision, recall "
         "and F1 per class with macro and weighted averages, confusion matrix, most confident "
         "mistakes.");
  add_checkpoint_options(a);
  a.flag(
       "json",
       "print the result on stdout as one JSON object: loss, accuracy, count, class_names, "
       "per_class_accuracy, precision, recall, f1, support, macro, weighted, top_k, "
       "top_k_accuracy, confusion (rows: true class), mistakes; an autoencoder's: loss, loss_name, "
       "count")
      .option("top-k", "K", "also report how often the true class is among the K most probable",
              "5")
      .range(1, std::numeric_limits<int>::max())
      .option("mistakes", "N", "list the N most confident wrong predictions", "10")
      .range(0, std::numeric_limits<int>::max());
  add_device_options(a);
  add_data_options(a);
  return a;
}

nlohmann::json metrics_json(const ClassMetrics& m) {
  return {{"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1}, {"support", m.support}};
}

// What names a sample in the mistakes: its file, or its index in the test part.
std::string sample_source(const Dataset& data, int i) {
  return data.files.empty() ? fmt::format("test sample {}", i) : data.files[i];
}

void print_json(const EvalResult& r, const ClassificationReport& report, const Dataset& test,
                const std::vector<std::string>& names) {
  nlohmann::json j{
      {"loss", r.loss}, {"accuracy", r.accuracy}, {"count", r.count}, {"class_names", names}};
  std::vector<double> precision, recall, f1;
  std::vector<int64_t> support;
  for (const ClassMetrics& m : report.per_class) {
    precision.push_back(m.precision);
    recall.push_back(m.recall);
    f1.push_back(m.f1);
    support.push_back(m.support);
  }
  j["per_class_accuracy"] = recall;  // the share of each class's samples classified right
  j["precision"] = precision;
  j["recall"] = recall;
  j["f1"] = f1;
  j["support"] = support;
  j["macro"] = metrics_json(report.macro);
  j["weighted"] = metrics_json(report.weighted);
  j["top_k"] = report.top_k;
  j["top_k_accuracy"] = report.top_k_accuracy;
  j["confusion"] = report.confusion;
  nlohmann::json mistakes = nlohmann::json::array();
  for (const Mistake& m : report.mistakes) {
    nlohmann::json e{{"index", m.index},
                     {"true", m.truth},
                     {"predicted", m.predicted},
                     {"confidence", m.confidence}};
    if (!test.files.empty()) e["file"] = test.files[m.index];
    mistakes.push_back(e);
  }
  j["mistakes"] = mistakes;
  std::printf("%s\n", j.dump().c_str());
}

// The class subset to evaluate on: --classes, else the one the checkpoint was trained on
// (its run's "classes"); both given must agree, or the accuracy would be of another task.
std::vector<int> eval_classes(const Args& a, const CheckpointModel& l) {
  std::vector<int> saved;
  const nlohmann::json& config = l.meta.config;
  if (config.is_object() && config.contains("classes")) {
    const nlohmann::json& c = config["classes"];
    if (!c.is_array()) fail("{}: malformed plinth metadata: 'config.classes'", a.str("checkpoint"));
    for (const nlohmann::json& v : c) {
      if (!v.is_number_unsigned() || v.get<uint64_t>() >= (uint64_t{1} << 30))
        fail("{}: malformed plinth metadata: 'config.classes' holds {}", a.str("checkpoint"),
             quoted_input(v.dump()));
      saved.push_back(v.get<int>());
    }
  }
  const std::vector<int> asked = parse_classes(a);
  if (!asked.empty() && !saved.empty() && asked != saved)
    fail("--classes {} differs from the classes {} was trained on ({}); evaluate on those",
         quoted_input(a.str("classes")), a.str("checkpoint"), fmt::join(saved, ","));
  return asked.empty() ? saved : asked;
}

void print_text(const EvalResult& r, const ClassificationReport& report, const Dataset& test,
                const std::vector<std::string>& names) {
  std::printf("test loss: %.4f - accuracy: %.4f - top-%d accuracy: %.4f (%d images)\n", r.loss,
              r.accuracy, report.top_k, report.top_k_accuracy, r.count);
  std::printf("\n%-18s %9s %9s %9s %9s\n", "class", "precision", "recall", "f1", "support");
  auto row = [](const std::string& label, const ClassMetrics& m) {
    std::printf("%-18s %9.4f %9.4f %9.4f %9lld\n", label.c_str(), m.precision, m.recall, m.f1,
                static_cast<long long>(m.support));
  };
  for (size_t c = 0; c < report.per_class.size(); ++c)
    row(fmt::format("{:>3} {}", c, names[c]).substr(0, 18), report.per_class[c]);
  row("macro avg", report.macro);
  row("weighted avg", report.weighted);
  std::printf("\nconfusion matrix (rows: true class, columns: predicted):\n     ");
  for (size_t c = 0; c < report.confusion.size(); ++c) std::printf("%6zu", c);
  std::printf("\n");
  for (size_t t = 0; t < report.confusion.size(); ++t) {
    std::printf("  %2zu ", t);
    for (int64_t v : report.confusion[t]) std::printf("%6lld", static_cast<long long>(v));
    std::printf("\n");
  }
  if (report.mistakes.empty()) return;
  std::printf("\nmost confident mistakes:\n");
  for (const Mistake& m : report.mistakes)
    std::printf("  %s: true %d %s, predicted %d %s (%.4f)\n", sample_source(test, m.index).c_str(),
                m.truth, names[m.truth].c_str(), m.predicted, names[m.predicted].c_str(),
                m.confidence);
}

}  // namespace

int eval_command(int argc, char** argv) {
  Args a = eval_args();
  if (!a.parse(argc, argv)) return 0;
  const CheckpointModel l = load_checkpoint_model(a);
  const std::vector<int> classes = eval_classes(a, l);
  DeviceChoice device = open_device_from(a);
  Parameters params(l.model, *device.backend);
  load_weights(a.str("checkpoint"), params, true);
  const Dataset test = load_part(a, open_data(a, l.model), l.model, Split::test, classes);
  TrainOptions options = inference_options(l.model);
  options.data_memory = data_memory(a);
  options.cuda_graphs = cuda_graphs_from(a);
  Trainer trainer(l.model, *device.backend, params, options);
  trainer.set_normalization(l.meta.normalization);
  const EvalResult r = trainer.evaluate(test);
  if (l.model.loss != LossKind::categorical_crossentropy) {
    // An autoencoder has no classes: what it has is how well it reconstructs its input.
    if (a.on("json")) {
      const nlohmann::json j{
          {"loss", r.loss}, {"loss_name", loss_name(l.model.loss)}, {"count", r.count}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("test reconstruction loss (%s): %.6f (%d images)\n", loss_name(l.model.loss),
                  r.loss, r.count);
    }
    return 0;
  }
  const int outputs = model_classes(l.model);
  const ClassificationReport report =
      classification_report(trainer.predict(test), test.labels, outputs,
                            std::min(a.integer("top-k"), outputs), a.integer("mistakes"));
  std::vector<std::string> names;
  for (int c = 0; c < outputs; ++c) names.push_back(class_name(l, outputs, c));
  if (a.on("json"))
    print_json(r, report, test, names);
  else
    print_text(r, report, test, names);
  return 0;
}

}  // namespace plinth::cli
