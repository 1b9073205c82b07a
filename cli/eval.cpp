// plinth eval and plinth predict: use a checkpoint.
#include <algorithm>
#include <limits>
#include <numeric>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "datasets/idx.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "engine/trainer.h"
#include "engine/user_text.h"

namespace plinth::cli {

namespace {

const char* kFashionNames[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                               "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// The model comes from the checkpoint's metadata, or from --model for weights saved
// elsewhere (e.g. by PyTorch) that carry none.
struct Loaded {
  Model model;
  CheckpointMeta meta;
};

Loaded load_checkpoint_model(const Args& a) {
  if (!a.has("checkpoint")) fail("plinth: --checkpoint is required");
  const std::string path = a.str("checkpoint");
  Loaded l;
  const SafetensorsFile f = load_safetensors(path);
  const bool has_meta = f.metadata().count("model") > 0;
  // The saved input normalisation applies whichever model definition is used.
  if (has_meta) l.meta = read_checkpoint_meta(path);
  if (a.has("model")) {
    l.model = load_model(find_model_file(a.str("model")));
  } else {
    if (!has_meta)
      fail("{}: the checkpoint carries no model definition; name one with --model FILE", path);
    l.model = parse_model(l.meta.model, path + ":model");
  }
  return l;
}

Dataset load_idx_images(const std::string& path) {
  IdxArray idx = read_idx(path);
  if (idx.dims.size() != 3 && idx.dims.size() != 4)
    fail("{}: expected images [n, h, w] or [n, c, h, w], got {} dimensions", path, idx.dims.size());
  Dataset d;
  d.count = idx.dims[0];
  d.channels = idx.dims.size() == 4 ? idx.dims[1] : 1;
  d.height = idx.dims[idx.dims.size() - 2];
  d.width = idx.dims.back();
  d.images = std::move(idx.data);
  d.name = path;
  return d;
}

// The class subset to evaluate on: --classes, else the one the checkpoint was trained on
// (its run's "classes"); both given must agree, or the accuracy would be of another task.
std::vector<int> eval_classes(const Args& a, const Loaded& l) {
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

// Evaluation and prediction run at the batch size the model was trained with (or less, if
// the device cannot hold it): never a fixed large batch the model did not need.
TrainOptions eval_options(const Model& model) {
  TrainOptions o;
  o.batch_size = model.training.batch_size;
  return o;
}

void add_checkpoint_options(Args& a) {
  a.option("checkpoint", "CKPT",
           "safetensors checkpoint (plinth's, or PyTorch's with --model); required")
      .option("model", "FILE",
              "model file to use instead of the checkpoint's own (needed for checkpoints without "
              "plinth metadata)");
}

}  // namespace

int eval_command(int argc, char** argv) {
  Args a("eval",
         "Evaluate a checkpoint on the test set: loss, accuracy, per-class accuracy, confusion "
         "matrix (an autoencoder: its reconstruction loss).");
  add_checkpoint_options(a);
  a.flag("json",
         "print the result on stdout as one JSON object: loss, accuracy, count, "
         "per_class_accuracy, confusion (rows: true class); an autoencoder's: loss, loss_name, "
         "count");
  add_device_options(a);
  add_data_options(a);
  if (!a.parse(argc, argv)) return 0;
  Loaded l = load_checkpoint_model(a);
  const std::vector<int> classes = eval_classes(a, l);
  Dataset test = load_idx_dataset(data_dir(a), Split::test);
  check_labels_for(test, classes, model_classes(l.model));
  if (!classes.empty()) test = restrict_classes(test, classes);
  DeviceChoice device = open_device_from(a);
  Parameters params(l.model, *device.backend);
  load_weights(a.str("checkpoint"), params, true);
  Trainer trainer(l.model, *device.backend, params, eval_options(l.model));
  trainer.set_normalization(l.meta.mean, l.meta.std);
  const EvalResult r = trainer.evaluate(test, true);
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
  std::vector<double> per_class;
  for (const auto& row : r.confusion) {
    const int64_t total = std::accumulate(row.begin(), row.end(), int64_t{0});
    per_class.push_back(total ? static_cast<double>(row[&row - &r.confusion[0]]) / total : 0.0);
  }
  if (a.on("json")) {
    const nlohmann::json j{{"loss", r.loss},
                           {"accuracy", r.accuracy},
                           {"count", r.count},
                           {"per_class_accuracy", per_class},
                           {"confusion", r.confusion}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("test loss: %.4f - accuracy: %.4f (%d images)\n", r.loss, r.accuracy, r.count);
  const bool fashion = per_class.size() == 10 && classes.empty();
  std::printf("\nper-class accuracy:\n");
  for (size_t c = 0; c < per_class.size(); ++c)
    std::printf("  %2zu %-12s %.4f\n", c, fashion ? kFashionNames[c] : "", per_class[c]);
  std::printf("\nconfusion matrix (rows: true class, columns: predicted):\n     ");
  for (size_t c = 0; c < per_class.size(); ++c) std::printf("%6zu", c);
  std::printf("\n");
  for (size_t t = 0; t < r.confusion.size(); ++t) {
    std::printf("  %2zu ", t);
    for (int64_t v : r.confusion[t]) std::printf("%6lld", static_cast<long long>(v));
    std::printf("\n");
  }
  return 0;
}

int predict_command(int argc, char** argv) {
  Args a("predict",
         "Top classes with probabilities for images: an IDX file (--images) or PGM files.");
  add_checkpoint_options(a);
  a.flag(
      "json",
      "print one JSON object per image: image, top (class, probability), and logits with --logits");
  add_device_options(a);
  a.option("images", "FILE", "IDX image file (raw or .gz)")
      .option("limit", "N", "predict only the first N images of --images", "10")
      .range(0, std::numeric_limits<int>::max())
      .option("top", "K", "classes to show per image", "3")
      .range(1, std::numeric_limits<int>::max())
      .flag("logits",
            "with --json: also print the raw outputs of the last layer (before the softmax)")
      .positional("[IMAGE.pgm ...]", "PGM (P5) images of the model's input size");
  if (!a.parse(argc, argv)) return 0;
  if (a.on("logits") && !a.on("json"))
    fail("plinth predict: --logits needs --json (logits are printed in the JSON lines)");
  Loaded l = load_checkpoint_model(a);
  Dataset images;
  const int h = l.model.input[1], w = l.model.input[2];
  if (a.has("images") && !a.positionals().empty())
    fail("plinth predict: give --images FILE or PGM files, not both");
  if (a.has("images")) {
    images = load_idx_images(a.str("images"));
    const int limit = std::min(images.count, std::max(0, a.integer("limit")));
    images.images.resize(static_cast<size_t>(limit) * images.image_size());
    images.count = limit;
  } else if (!a.positionals().empty()) {
    images = load_pgm_images(a.positionals(), h, w);
  } else {
    fail("plinth predict: give --images FILE or PGM files");
  }
  if (images.channels != l.model.input[0] || images.height != h || images.width != w)
    fail("the model takes {}x{}x{} images, these are {}x{}x{}", l.model.input[0], h, w,
         images.channels, images.height, images.width);
  DeviceChoice device = open_device_from(a);
  Parameters params(l.model, *device.backend);
  load_weights(a.str("checkpoint"), params, true);
  Trainer trainer(l.model, *device.backend, params, eval_options(l.model));
  trainer.set_normalization(l.meta.mean, l.meta.std);
  const std::vector<float> probs = trainer.predict(images);
  const std::vector<float> logits =
      a.on("logits") ? trainer.predict(images, true) : std::vector<float>();
  const int classes = images.count ? static_cast<int>(probs.size() / images.count) : 0;
  const int top = std::clamp(a.integer("top"), 1, std::max(1, classes));
  for (int i = 0; i < images.count; ++i) {
    const float* p = probs.data() + static_cast<size_t>(i) * classes;
    std::vector<int> order(classes);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return p[x] > p[y]; });
    const std::string source =
        a.has("images") ? fmt::format("{}[{}]", a.str("images"), i) : a.positionals()[i];
    if (a.on("json")) {
      nlohmann::json tops = nlohmann::json::array();
      for (int k = 0; k < top; ++k)
        tops.push_back({{"class", order[k]}, {"probability", p[order[k]]}});
      nlohmann::json j{{"image", source}, {"top", tops}};
      if (!logits.empty())
        j["logits"] = std::vector<float>(logits.begin() + static_cast<ptrdiff_t>(i) * classes,
                                         logits.begin() + static_cast<ptrdiff_t>(i + 1) * classes);
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::string line = source + ":";
      for (int k = 0; k < top; ++k)
        line += fmt::format(" {}{} {:.4f}", order[k],
                            classes == 10 ? fmt::format(" ({})", kFashionNames[order[k]]) : "",
                            p[order[k]]);
      std::printf("%s\n", line.c_str());
    }
  }
  return 0;
}

}  // namespace plinth::cli
