#include "engine/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace plinth {
namespace {

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string name_of(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

// "a FIFO", "a directory", ... for a file that is not a regular one.
const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// Refuses a save target that holds something other than a regular file: renaming over a
// symlink, a device node or a directory would replace it, not write where it points.
void refuse_non_regular_target(const std::string& path, const char* doing) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail("{}: {}: it is {}; give the path of a regular file or of none", path, doing,
         kind_of(st.st_mode));
}

// A save killed between creating its temporary and renaming it leaves path.tmp.<pid>
// behind; the next save to the same path removes those whose process is gone.
void remove_stale_temporaries(const std::string& path) {
  DIR* dir = ::opendir(directory_of(path).c_str());
  if (!dir) return;  // the save itself will report why the directory is unusable
  const std::string prefix = name_of(path) + ".tmp.";
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.size() <= prefix.size() || name.size() > prefix.size() + 9 ||
        name.compare(0, prefix.size(), prefix) != 0)
      continue;
    const std::string digits = name.substr(prefix.size());
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH)
      ::unlinkat(::dirfd(dir), name.c_str(), 0);
  }
  ::closedir(dir);
}

// Makes the rename itself durable: without it a power cut can bring back the old name.
void sync_directory(const std::string& path) {
  const std::string dir = directory_of(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    fail("{}: saved, but cannot open its directory to sync it: {}", path, std::strerror(errno));
  // Some file systems cannot sync directories (EINVAL); there is nothing more to do there.
  const bool failed = ::fsync(fd) != 0 && errno != EINVAL;
  const int err = errno;
  ::close(fd);
  if (failed) fail("{}: saved, but syncing its directory failed: {}", path, std::strerror(err));
}

}  // namespace

void write_file_atomically(const std::string& path, std::string_view bytes) {
  refuse_non_regular_target(path, "cannot save");
  remove_stale_temporaries(path);
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail("{}: cannot save: cannot create {}: {}", path, tmp, std::strerror(errno));

  auto abandon = [&](const char* step) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail("{}: cannot save: {} {}: {}", path, step, tmp, std::strerror(err));
  };
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) abandon("writing");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) abandon("syncing");
  const int closed = ::close(fd);
  fd = -1;
  // Network file systems may report a failed write only here.
  if (closed != 0) abandon("closing");
  if (::rename(tmp.c_str(), path.c_str()) != 0) abandon("renaming");
  sync_directory(path);
}

void check_save_target(const std::string& path) {
  refuse_non_regular_target(path, "cannot save there");
  const std::string dir = directory_of(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    fail("{}: cannot save there: its directory {} {}", path, dir,
         errno == ENOENT ? "does not exist" : std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) fail("{}: cannot save there: {} is not a directory", path, dir);
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    fail("{}: cannot save there: its directory {} is not writable ({})", path, dir,
         std::strerror(errno));
}

InputFile::InputFile(const std::string& path) {
  // stat first: opening some devices has effects, and opening a FIFO waits for a writer.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("{}: is {}, not a regular file", path, kind_of(st.st_mode));
  // O_NONBLOCK: should the path be swapped for a FIFO meanwhile, open must not wait.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fail("{}: is {}, not a regular file", path, kind_of(st.st_mode));
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

int InputFile::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

std::string read_file(const std::string& path, size_t max_bytes) {
  const InputFile file(path);
  if (file.size() > max_bytes)
    fail("{}: file is {} bytes, more than the limit of {}", path, file.size(), max_bytes);
  // The extra byte lets the final read see the end; files such as /proc's report size 0
  // and grow the buffer as they are read.
  std::string out(static_cast<size_t>(file.size()) + 1, '\0');
  size_t size = 0;
  for (;;) {
    if (size == out.size()) out.resize(std::max(out.size() * 2, size_t{1} << 16));
    const ssize_t n = ::read(file.fd(), out.data() + size, out.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("{}: cannot read: {}", path, std::strerror(errno));
    if (n == 0) break;
    size += static_cast<size_t>(n);
    if (size > max_bytes) fail("{}: file is more than the limit of {} bytes", path, max_bytes);
  }
  out.resize(size);
  return out;
}

SaveLock::SaveLock(const std::string& path) {
  const std::string lock = path + ".lock";
  fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd_ < 0) fail("{}: cannot create the lock file {}: {}", path, lock, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char holder[16] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) fail("{}: cannot lock {}: {}", path, lock, std::strerror(err));
    const std::string pid(holder, static_cast<size_t>(std::max<ssize_t>(n, 0)));
    const bool known = !pid.empty() && pid.find_first_not_of("0123456789") == pid.npos;
    fail("{}: another run ({}) is saving to this path; wait for it to end or save elsewhere", path,
         known ? "process " + pid : "its process unknown");
  }
  // The holder's process number, for the message of a run refused later; a failure to
  // record it costs only that.
  const std::string pid = std::to_string(::getpid());
  const bool recorded = ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) > 0;
  (void)recorded;
}

SaveLock::~SaveLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

}  // namespace plinth
