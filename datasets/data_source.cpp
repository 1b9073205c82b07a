#include "datasets/data_source.h"

#include <filesystem>

#include "datasets/cifar.h"
#include "datasets/packed.h"
#include "engine/error.h"

namespace plinth {

const char* data_format_name(DataFormat format) {
  switch (format) {
    case DataFormat::image_folder:
      return "image folder";
    case DataFormat::cifar10:
      return "CIFAR-10 binary";
    case DataFormat::packed:
      return "packed";
    default:
      return "IDX";
  }
}

DataSource::DataSource(const std::string& path, const ImageFolderOptions& folder)
    : path_(path), folder_(folder) {
  std::error_code error;
  if (is_packed_file(path)) {
    format_ = DataFormat::packed;
    packed_ = std::make_shared<const PackedFile>(path);
  } else if (std::filesystem::is_regular_file(path, error)) {
    fail(
        "{}: a file but not a packed data set (no PLNTPACK magic); expected a packed file or a "
        "folder",
        path);
  } else if (is_image_folder(path)) {
    format_ = DataFormat::image_folder;
  } else if (is_cifar10_dir(path)) {
    format_ = DataFormat::cifar10;
  } else {
    format_ = DataFormat::idx;
  }
}

DataSource::~DataSource() = default;

bool DataSource::has_validation() const {
  std::error_code error;
  if (format_ == DataFormat::packed) return packed_->count(Split::val) > 0;
  return format_ == DataFormat::image_folder &&
         std::filesystem::is_directory(std::filesystem::path(path_) / "val", error);
}

Dataset DataSource::load(Split split, std::vector<std::string>* skipped) const {
  switch (format_) {
    case DataFormat::packed:
      return packed_->part(split);
    case DataFormat::image_folder:
      return load_image_folder(path_, split, folder_, skipped);
    case DataFormat::cifar10:
      return load_cifar10(path_, split);
    default:
      if (split == Split::val) return {};
      return load_idx_dataset(path_, split);
  }
}

}  // namespace plinth
