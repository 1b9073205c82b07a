#include "cpu_fallback/host_memory.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

namespace plinth::cpu {
namespace {

// The first number in a small kernel file; SIZE_MAX for "max", a missing file or no number.
size_t number_in(const std::string& path) {
  std::ifstream in(path);
  unsigned long long value = 0;
  if (!(in >> value)) return SIZE_MAX;
  return static_cast<size_t>(value);
}

std::string text_of(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The memory cgroup directories of this process, innermost first: its own and every
// ancestor up to the mount point, whose limits all apply. cgroup v2 ("0::/path") or the
// v1 memory controller ("N:memory:/path"); with a cgroup namespace the path is "/" and the
// mount point is the process's own cgroup.
std::vector<std::string> memory_cgroups() {
  std::istringstream lines(text_of("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    const size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == line.npos || second == line.npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    std::string mount;
    if (line.compare(0, first, "0") == 0 && controllers.empty())
      mount = "/sys/fs/cgroup";
    else if (("," + controllers + ",").find(",memory,") != std::string::npos)
      mount = "/sys/fs/cgroup/memory";
    else
      continue;
    std::vector<std::string> dirs;
    for (std::string path = line.substr(second + 1); !path.empty() && path != "/";
         path = path.substr(0, path.find_last_of('/')))
      if (::access((mount + path).c_str(), R_OK) == 0) dirs.push_back(mount + path);
    dirs.push_back(mount);
    return dirs;
  }
  return {};
}

}  // namespace

size_t mem_available(const std::string& meminfo) {
  std::istringstream lines(meminfo);
  for (std::string line; std::getline(lines, line);) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kib) == 1)
      return static_cast<size_t>(kib) * 1024;
  }
  return SIZE_MAX;
}

size_t cgroup_room(const std::string& dir) {
  const bool v2 = ::access((dir + "/memory.max").c_str(), R_OK) == 0;
  const size_t limit = number_in(dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"));
  if (limit >= (size_t{1} << 62)) return SIZE_MAX;  // "max", or v1's huge "no limit"
  size_t usage = number_in(dir + (v2 ? "/memory.current" : "/memory.usage_in_bytes"));
  if (usage == SIZE_MAX) return limit;
  // Usage counts the page cache, whose inactive part the kernel reclaims before it would
  // kill anything (what `docker stats` subtracts too).
  std::istringstream stat(text_of(dir + "/memory.stat"));
  std::string key;
  for (unsigned long long value = 0; stat >> key >> value;)
    if (key == (v2 ? "inactive_file" : "total_inactive_file"))
      usage -= std::min<size_t>(usage, static_cast<size_t>(value));
  return usage >= limit ? 0 : limit - usage;
}

size_t available_host_memory() {
  size_t available = mem_available(text_of("/proc/meminfo"));
  for (const std::string& dir : memory_cgroups()) available = std::min(available, cgroup_room(dir));
  if (available == SIZE_MAX)  // no /proc: what the C library says is free
    available =
        static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return available;
}

}  // namespace plinth::cpu
