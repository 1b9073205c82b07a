// How much memory the host can still give this process: the kernel's estimate of what can
// be allocated without swapping (MemAvailable), lowered to the room left under the memory
// limit of any cgroup the process is in (containers, systemd, job schedulers), whose OOM
// killer acts on that limit rather than on the machine's memory.
#pragma once

#include <cstddef>
#include <string>

namespace plinth::cpu {

size_t available_host_memory();

// The parts, for tests: MemAvailable in bytes from /proc/meminfo's text (SIZE_MAX if
// absent), and limit - usage of one cgroup directory (SIZE_MAX if it sets no limit).
size_t mem_available(const std::string& meminfo);
size_t cgroup_room(const std::string& dir);

}  // namespace plinth::cpu
