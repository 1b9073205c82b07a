#include "datasets/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "datasets/image.h"
#include "engine/error.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

const char* split_folder(Split split) {
  return split == Split::train ? "train" : split == Split::test ? "test" : "val";
}

// The sorted names of the entries of dir that pass keep(entry).
template <typename Keep>
std::vector<std::string> sorted_entries(const fs::path& dir, Keep keep) {
  std::vector<std::string> names;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
    if (it->path().filename().string()[0] != '.' && keep(*it))
      names.push_back(it->path().filename().string());
  if (error) fail("{}: cannot list ({})", dir.string(), error.message());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> class_folders(const fs::path& dir) {
  return sorted_entries(dir, [](const fs::directory_entry& e) { return e.is_directory(); });
}

}  // namespace

bool is_image_folder(const std::string& dir) {
  std::error_code error;
  return fs::is_directory(fs::path(dir) / "train", error);
}

ImageFolderOptions first_image_shape(const std::string& dir) {
  const fs::path train = fs::path(dir) / "train";
  for (const std::string& name : class_folders(train))
    for (const std::string& file : sorted_entries(train / name, [](const fs::directory_entry& e) {
           return has_image_extension(e.path().filename().string());
         })) {
      const Image image = read_image((train / name / file).string());
      return {image.channels, image.height, image.width, false};
    }
  fail("{}: no images in train/'s class folders", dir);
}

Dataset load_image_folder(const std::string& dir, Split split, const ImageFolderOptions& options,
                          std::vector<std::string>* skipped) {
  const fs::path root = fs::path(dir) / split_folder(split);
  std::error_code error;
  const std::vector<std::string> classes = class_folders(fs::path(dir) / "train");
  if (classes.empty()) fail("{}: no class folders in train/", dir);
  Dataset data;
  data.channels = options.channels;
  data.height = options.height;
  data.width = options.width;
  data.classes = static_cast<int>(classes.size());
  data.class_names = classes;
  data.name = fmt::format("{} {}", dir, split_folder(split));
  if (!fs::is_directory(root, error)) {
    if (split == Split::val) return data;
    fail("{}: no such folder (an image folder has train/ and test/, and optionally val/)",
         root.string());
  }
  for (const std::string& name : class_folders(root))
    if (!std::binary_search(classes.begin(), classes.end(), name))
      fail("{}: class folder '{}' is not among train/'s classes", root.string(), name);

  std::vector<int32_t> labels;
  for (int c = 0; c < data.classes; ++c) {
    const fs::path folder = root / classes[c];
    if (!fs::is_directory(folder, error)) continue;
    for (const std::string& file : sorted_entries(folder, [](const fs::directory_entry& e) {
           return has_image_extension(e.path().filename().string());
         })) {
      data.files.push_back((folder / file).string());
      labels.push_back(c);
    }
  }
  // Decoding dominates; each file is independent, and the results keep the files' order.
  const int n = static_cast<int>(data.files.size());
  std::vector<std::optional<Image>> images(n);
  std::vector<std::string> problems(n);
#pragma omp parallel for schedule(dynamic, 8)
  for (int i = 0; i < n; ++i) {
    try {
      images[i] =
          fit_image(read_image(data.files[i]), options.channels, options.height, options.width);
    } catch (const Error& e) {
      problems[i] = e.what();
    }
  }
  std::vector<std::string> kept_files;
  for (int i = 0; i < n; ++i) {
    if (!images[i]) {
      if (options.strict) throw Error(problems[i]);
      if (skipped) skipped->push_back(problems[i]);
      continue;
    }
    data.images.insert(data.images.end(), images[i]->pixels.begin(), images[i]->pixels.end());
    data.labels.push_back(labels[i]);
    kept_files.push_back(data.files[i]);
  }
  data.files = std::move(kept_files);
  data.count = static_cast<int>(data.labels.size());
  return data;
}

}  // namespace plinth
