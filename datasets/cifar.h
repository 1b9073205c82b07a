// CIFAR-10's binary version: DIR/data_batch_1.bin ... data_batch_5.bin (training) and
// DIR/test_batch.bin (test), each a run of 3073-byte records: one label byte (0 to 9),
// then a 32x32 image as 1024 red, 1024 green and 1024 blue bytes (row-major), which is
// already plinth's [3, 32, 32] layout. Class names come from batches.meta.txt (one a line)
// when it is there, else CIFAR-10's published names.
#pragma once

#include <string>

#include "datasets/dataset.h"

namespace plinth {

inline constexpr int kCifarRecordBytes = 1 + 3 * 32 * 32;

// Whether dir holds CIFAR-10 binary batches (data_batch_1.bin or test_batch.bin).
bool is_cifar10_dir(const std::string& dir);
// Training: every data_batch_<k>.bin in order of k; test: test_batch.bin; CIFAR-10 has no
// validation part (an empty data set). A file whose size is not a whole number of
// records, or a label above 9, is an error naming the file (and the record).
Dataset load_cifar10(const std::string& dir, Split split);

}  // namespace plinth
