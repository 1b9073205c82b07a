#include "engine/atomic_file.h"

#include <fcntl.h>
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

std::string read_file(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  // Size a regular file up front; pipes and devices are read until they end.
  size_t capacity = 1 << 16;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    const auto size = static_cast<unsigned long long>(st.st_size);
    if (size > max_bytes)
      fail("{}: file is {} bytes, more than the limit of {}", path, size, max_bytes);
    capacity = static_cast<size_t>(size) + 1;  // the extra byte lets the final read see EOF
  }
  std::string out(capacity, '\0');
  size_t size = 0;
  for (;;) {
    if (size == out.size()) out.resize(std::max(out.size() * 2, size_t{1} << 16));
    const ssize_t n = ::read(fd, out.data() + size, out.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("{}: cannot read: {}", path, std::strerror(errno));
    if (n == 0) break;
    size += static_cast<size_t>(n);
    if (size > max_bytes) fail("{}: file is more than the limit of {} bytes", path, max_bytes);
  }
  out.resize(size);
  return out;
}

}  // namespace plinth
