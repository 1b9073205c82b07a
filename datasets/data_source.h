// One entry point for every data set format plinth reads, told apart by what is at the
// path: a packed file (datasets/packed.h), an image folder (datasets/image_folder.h),
// CIFAR-10 binary batches (datasets/cifar.h) or an IDX directory in the MNIST layout
// (datasets/idx.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/image_folder.h"

namespace plinth {

class PackedFile;

enum class DataFormat { idx, image_folder, cifar10, packed };
const char* data_format_name(DataFormat format);

class DataSource {
 public:
  // folder: how an image folder's images are fitted and how strict the reading is (other
  // formats carry their shape). A packed file is mapped and checked here, once.
  DataSource(const std::string& path, const ImageFolderOptions& folder);
  ~DataSource();

  DataFormat format() const { return format_; }
  const std::string& path() const { return path_; }
  // Whether the source has a validation part of its own (image folders' val/, packed
  // files that hold one).
  bool has_validation() const;
  // One part; `skipped` (may be null) receives the images an image folder left out.
  Dataset load(Split split, std::vector<std::string>* skipped = nullptr) const;

 private:
  std::string path_;
  ImageFolderOptions folder_;
  DataFormat format_;
  std::shared_ptr<const PackedFile> packed_;
};

}  // namespace plinth
