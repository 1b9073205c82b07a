// Image folders, the layout of Keras' image_dataset_from_directory and PyTorch's
// ImageFolder: DIR/train/<class>/*.png|jpg|jpeg, DIR/test/<class>/..., and optionally
// DIR/val/<class>/.... The classes are train/'s subfolders in sorted (byte) order, so
// their numbers do not depend on the file system; test/ and val/ may lack a class but may
// not add one. Each class folder's images are read in sorted order; other files
// (no image extension, or hidden) are ignored.
#pragma once

#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace plinth {

struct ImageFolderOptions {
  int channels = 1, height = 28, width = 28;  // every image is fitted to this (fit_image)
  // An unreadable image is an error; otherwise it is skipped and listed in `skipped`.
  bool strict = false;
};

// Whether dir has the layout (a train/ folder).
bool is_image_folder(const std::string& dir);
// The shape of the first image of train/'s first class (in sorted order), as
// ImageFolderOptions (strict false): a default for packing a folder.
ImageFolderOptions first_image_shape(const std::string& dir);
// A missing val/ gives an empty data set; a missing train/ or test/ is an error.
// skipped (may be null) receives "<file>: <problem>" for each image left out.
Dataset load_image_folder(const std::string& dir, Split split, const ImageFolderOptions& options,
                          std::vector<std::string>* skipped = nullptr);

}  // namespace plinth
