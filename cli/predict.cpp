// plinth predict: a checkpoint's top classes for images.
#include <algorithm>
#include <limits>
#include <numeric>

#include <nlohmann/json.hpp>

#include "cli/checkpoint_model.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "datasets/idx.h"
#include "datasets/image.h"
#include "engine/error.h"
#include "engine/trainer.h"

namespace plinth::cli {

namespace {

Args predict_args() {
  Args a("predict",
         "Top classes with probabilities for images: an IDX file (--images), or PNG, JPEG or PGM "
         "files.");
  add_checkpoint_options(a);
  a.flag("json",
         "print one JSON object per image: image, top (class, name, probability), and logits "
         "with --logits");
  add_device_options(a);
  a.option("images", "FILE", "IDX image file (raw or .gz)")
      .option("limit", "N", "predict only the first N images of --images", "10")
      .range(0, std::numeric_limits<int>::max())
      .option("top", "K", "classes to show per image", "3")
      .range(1, std::numeric_limits<int>::max())
      .flag("logits",
            "with --json: also print the raw outputs of the last layer (before the softmax)")
      .positional("[IMAGE ...]",
                  "PNG or JPEG images (fitted to the model's input: converted to its channels, "
                  "resized), or binary PGM (P5) images of the model's input size");
  return a;
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

// Image files in the order given: PGM as it is, PNG and JPEG fitted to the model's input.
Dataset load_image_files(const std::vector<std::string>& paths, const Model& model) {
  const int c = model.input[0], h = model.input[1], w = model.input[2];
  Dataset d;
  d.channels = c;
  d.height = h;
  d.width = w;
  d.name = "images";
  for (const std::string& path : paths) {
    const std::vector<uint8_t> pixels = has_image_extension(path)
                                            ? fit_image(read_image(path), c, h, w).pixels
                                            : load_pgm_images({path}, h, w).images;
    if (static_cast<int64_t>(pixels.size()) != d.image_size())
      fail("{}: a PGM image has one channel, the model takes {}", path, c);
    d.images.insert(d.images.end(), pixels.begin(), pixels.end());
    d.files.push_back(path);
  }
  d.count = static_cast<int>(paths.size());
  return d;
}

}  // namespace

int predict_command(int argc, char** argv) {
  Args a = predict_args();
  if (!a.parse(argc, argv)) return 0;
  if (a.on("logits") && !a.on("json"))
    fail("plinth predict: --logits needs --json (logits are printed in the JSON lines)");
  const CheckpointModel l = load_checkpoint_model(a);
  Dataset images;
  if (a.has("images") && !a.positionals().empty())
    fail("plinth predict: give --images FILE or image files, not both");
  if (a.has("images")) {
    images = load_idx_images(a.str("images"));
    const int limit = std::min(images.count, std::max(0, a.integer("limit")));
    images.images.resize(static_cast<size_t>(limit) * images.image_size());
    images.count = limit;
  } else if (!a.positionals().empty()) {
    images = load_image_files(a.positionals(), l.model);
  } else {
    fail("plinth predict: give --images FILE or image files");
  }
  const auto& in = l.model.input;
  if (images.channels != in[0] || images.height != in[1] || images.width != in[2])
    fail("the model takes {}x{}x{} images, these are {}x{}x{}", in[0], in[1], in[2],
         images.channels, images.height, images.width);
  DeviceChoice device = open_device_from(a);
  Parameters params(l.model, *device.backend);
  load_weights(a.str("checkpoint"), params, true);
  Trainer trainer(l.model, *device.backend, params, inference_options(l.model));
  trainer.set_normalization(l.meta.normalization);
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
        a.has("images") ? fmt::format("{}[{}]", a.str("images"), i) : images.files[i];
    if (a.on("json")) {
      nlohmann::json tops = nlohmann::json::array();
      for (int k = 0; k < top; ++k)
        tops.push_back({{"class", order[k]},
                        {"name", class_name(l, classes, order[k])},
                        {"probability", p[order[k]]}});
      nlohmann::json j{{"image", source}, {"top", tops}};
      if (!logits.empty())
        j["logits"] = std::vector<float>(logits.begin() + static_cast<ptrdiff_t>(i) * classes,
                                         logits.begin() + static_cast<ptrdiff_t>(i + 1) * classes);
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::string line = source + ":";
      for (int k = 0; k < top; ++k) {
        const std::string name = class_name(l, classes, order[k]);
        line += fmt::format(" {}{} {:.4f}", order[k], name.empty() ? "" : " (" + name + ")",
                            p[order[k]]);
      }
      std::printf("%s\n", line.c_str());
    }
  }
  return 0;
}

}  // namespace plinth::cli
