// The seed CNN (models/seed_cnn.json) on Fashion-MNIST with plinth's Keras-like API: the
// model, data, recipe and checkpoint of the Keras original, in about as many lines.
//
//   seed_cnn [--epochs N] [--limit N] [--data DIR] [--device auto|cpu|cuda[:N]] [--save FILE]
//
// --limit trains on the first N training images (quick checks); the default is all of them.
#include <cstdio>
#include <string>

#include <plinth/plinth.h>

int main(int argc, char** argv) try {
  int epochs = 10, limit = 0;
  std::string data_dir = plinth::kDefaultFashionMnistDir, device = "auto", save = "cnn.safetensors";
  for (int i = 1; i < argc; i += 2) {
    const std::string option = argv[i];
    if (i + 1 == argc) throw plinth::Error(option + " needs a value");
    const std::string value = argv[i + 1];
    if (option == "--epochs")
      epochs = std::stoi(value);
    else if (option == "--limit")
      limit = std::stoi(value);
    else if (option == "--data")
      data_dir = value;
    else if (option == "--device")
      device = value;
    else if (option == "--save")
      save = value;
    else
      throw plinth::Error("unknown option " + option);
  }

  plinth::Sequential model({1, 28, 28}, "seed_cnn");
  model.add(plinth::conv2d(32, 3, "relu"))
      .add(plinth::maxpool2d(2))
      .add(plinth::conv2d(64, 3, "relu"))
      .add(plinth::maxpool2d(2))
      .add(plinth::conv2d(64, 3, "relu"))
      .add(plinth::flatten())
      .add(plinth::dense(64, "relu"))
      .add(plinth::dense(10, "softmax"));
  model.compile(plinth::adam(1e-3), "categorical_crossentropy", {.device = device});
  std::printf("%s", model.summary().c_str());

  auto data = plinth::load_idx_dataset(data_dir, plinth::Split::train);
  auto test = plinth::load_idx_dataset(data_dir, plinth::Split::test);
  if (limit > 0 && limit < data.count) {
    data.count = limit;
    data.images.resize(static_cast<size_t>(limit) * data.image_size());
    data.labels.resize(limit);
  }
  auto history = model.fit(data, {.epochs = epochs, .batch_size = 32, .validation_split = 0.1});
  auto result = model.evaluate(test);
  std::printf("Test accuracy: %.4f - test loss: %.4f (%d images, %zu epochs)\n", result.accuracy,
              result.loss, result.count, history.epochs.size());
  model.save(save);
  std::printf("saved %s\n", save.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "seed_cnn: %s\n", e.what());
  return 1;
}
