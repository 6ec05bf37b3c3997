#include "hdnsd/util/cpus.h"

#include <uv.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace hdnsd::util {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  if (in) ss << in.rdbuf();
  return ss.str();
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

std::optional<long long> parseLong(std::string_view s) noexcept {
  s = trim(s);
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<unsigned> keepLower(std::optional<unsigned> a, std::optional<unsigned> b) noexcept {
  if (!a) return b;
  if (!b) return a;
  return *a < *b ? a : b;
}

// The limit of this process's cgroup and its ancestors (the lowest wins), v2 and v1 alike. With a
// cgroup namespace (a container) /proc/self/cgroup says "/" and the mount's root is ours; without
// one the host path may not exist inside the container's mount, so its root is read too.
std::optional<unsigned> cgroupLimit() {
  std::optional<unsigned> cpus;
  std::istringstream lines(readFile("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string controllers = "," + line.substr(c1 + 1, c2 - c1 - 1) + ",";
    std::string path = line.substr(c2 + 1);
    const bool v2 = line.compare(0, c1, "0") == 0 && controllers == ",,";
    if (!v2 && controllers.find(",cpu,") == std::string::npos) continue;
    const std::string root = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/cpu";
    for (;;) {  // path, its parents, then the mount's root
      std::string dir = root + (path == "/" ? "" : path);
      cpus = keepLower(cpus, v2 ? cpusOfQuota(readFile(dir + "/cpu.max"))
                                : cpusOfQuota(readFile(dir + "/cpu.cfs_quota_us"),
                                              readFile(dir + "/cpu.cfs_period_us")));
      if (path.empty() || path == "/") break;
      auto slash = path.rfind('/');
      path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
    }
  }
  return cpus;
}

}  // namespace

std::optional<unsigned> cpusOfQuota(std::string_view quota_us, std::string_view period_us) noexcept {
  auto q = parseLong(quota_us), p = parseLong(period_us);
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;
  return unsigned((*q + *p - 1) / *p);
}

std::optional<unsigned> cpusOfQuota(std::string_view cpuMax) noexcept {
  cpuMax = trim(cpuMax);
  auto space = cpuMax.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  return cpusOfQuota(cpuMax.substr(0, space), cpuMax.substr(space + 1));  // "max" does not parse
}

unsigned usableCpus() noexcept {
  unsigned n = uv_available_parallelism();
  try {
    if (auto quota = cgroupLimit(); quota && *quota < n) n = *quota;
  } catch (...) {  // std::bad_alloc reading a few small files: keep the affinity count
  }
  return n > 0 ? n : 1;
}

}  // namespace hdnsd::util
