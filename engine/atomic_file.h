// Saving that never leaves a half-written file behind: a crash, a full disk or a killed job
// in the middle of writing a checkpoint must not destroy the last good one. The new bytes go
// to a temporary file beside the target, are synced to disk, and only then renamed over it;
// rename within a directory is atomic, so readers see the old file or the new one, whole.
//
// Reading trusts nothing either: only regular files are opened (a FIFO would block for
// ever, /dev/zero never ends, a directory is no file), and every read has a stated maximum
// for its kind of file, checked against the file's size before anything is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace plinth {

// Writes bytes to path + ".tmp.<pid>", fsyncs it, renames it over path and fsyncs the
// directory. First refuses a path that holds anything but a regular file (a symlink, a
// device, a directory: renaming over it would replace it) and removes the temporaries a
// killed save to this path left behind. On failure throws Error naming path and the
// system's reason, removes the temporary file and leaves whatever was at path untouched.
void write_file_atomically(const std::string& path, std::string_view bytes);

// Throws Error unless path can be saved to: it is absent or a regular file (not a
// symlink, a device or a directory), and its directory exists and is writable. For
// checking a save's target before the work whose result it will hold.
void check_save_target(const std::string& path);

// A file opened for reading that is known to be a regular file (symlinks followed).
// Anything else is an Error that says what the path is ("is a FIFO, not a regular file"),
// found without blocking on it.
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // when opened
  // Hands the descriptor over (e.g. to fdopen); the object no longer closes it.
  int release();

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The whole content of a regular file. Throws Error if it cannot be opened or read, is not
// a regular file, or holds more than max_bytes (checked before reading, so a huge file
// costs nothing).
std::string read_file(const std::string& path, size_t max_bytes);

// An exclusive lock tied to path (flock on path + ".lock"), held while the object lives:
// two runs that would save to one path cannot both hold it, so the second is refused at
// its start, naming the first's process, instead of after all its work.
class SaveLock {
 public:
  explicit SaveLock(const std::string& path);
  ~SaveLock();
  SaveLock(const SaveLock&) = delete;
  SaveLock& operator=(const SaveLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace plinth
