// Saving that never leaves a half-written file behind: a crash, a full disk or a killed job
// in the middle of writing a checkpoint must not destroy the last good one. The new bytes go
// to a temporary file beside the target, are synced to disk, and only then renamed over it;
// rename within a directory is atomic, so readers see the old file or the new one, whole.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace plinth {

// Writes bytes to path + ".tmp.<pid>", fsyncs it, renames it over path and fsyncs the
// directory. On failure throws Error naming path and the system's reason, removes the
// temporary file and leaves whatever was at path untouched.
void write_file_atomically(const std::string& path, std::string_view bytes);

// The whole content of a file. Throws Error if it cannot be opened or read, or if it holds
// more than max_bytes (checked before reading, so a huge file costs nothing).
std::string read_file(const std::string& path, size_t max_bytes);

}  // namespace plinth
