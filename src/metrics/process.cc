#include "hdnsd/metrics/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <string>

namespace hdnsd::metrics {

namespace {

// Reads a whole /proc file. Their st_size is 0, so read until EOF instead of stat-ing.
std::optional<std::string> readFile(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
    if (out.size() > (1u << 20)) break;  // /proc/stat on huge hosts: btime is near the top
  }
  ::close(fd);
  return out;
}

// Splits off the next space-separated token of s.
std::string_view nextToken(std::string_view& s) noexcept {
  size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string_view::npos) {
    s = {};
    return {};
  }
  s.remove_prefix(b);
  size_t e = s.find_first_of(" \t\n");
  std::string_view tok = s.substr(0, e);
  s.remove_prefix(e == std::string_view::npos ? s.size() : e);
  return tok;
}

std::optional<uint64_t> toU64(std::string_view t) noexcept {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size()) return std::nullopt;
  return v;
}

int countOpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory stream's own fd is listed too
}

}  // namespace

std::optional<ProcStat> parseProcStat(std::string_view text) noexcept {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  // rest starts at field 3 (state). Field n is token n-3 of rest.
  ProcStat st;
  for (int field = 3; field <= 22; ++field) {
    std::string_view tok = nextToken(rest);
    if (tok.empty()) return std::nullopt;
    if (field == 14 || field == 15 || field == 22) {
      auto v = toU64(tok);
      if (!v) return std::nullopt;
      (field == 14 ? st.utime_ticks : field == 15 ? st.stime_ticks : st.starttime_ticks) = *v;
    }
  }
  return st;
}

std::optional<ProcStatm> parseProcStatm(std::string_view text) noexcept {
  auto size = toU64(nextToken(text));
  auto resident = toU64(nextToken(text));
  if (!size || !resident) return std::nullopt;
  return ProcStatm{*size, *resident};
}

std::optional<uint64_t> parseBootTime(std::string_view text) noexcept {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.starts_with("btime ")) {
      line.remove_prefix(6);
      return toU64(nextToken(line));
    }
  }
  return std::nullopt;
}

void addBuildInfo(Registry& reg, std::string_view version) {
  reg.gauge("hdnsd_build_info", "A metric with a constant '1' value labeled by the hdnsd version.",
            {{"version", std::string(version)}})
      .set(1);
}

void addProcessCollector(Registry& reg) {
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  // The start time never changes: compute it once instead of reading /proc/stat per scrape.
  std::optional<double> start_s;
  if (auto stat = readFile("/proc/self/stat"); stat && ticks > 0) {
    auto ps = parseProcStat(*stat);
    auto procStat = readFile("/proc/stat");
    auto boot = procStat ? parseBootTime(*procStat) : std::nullopt;
    if (ps && boot) start_s = double(*boot) + double(ps->starttime_ticks) / double(ticks);
  }

  reg.addCollector([ticks, page, start_s](std::vector<FamilyData>& out) {
    if (auto stat = readFile("/proc/self/stat"); stat && ticks > 0) {
      if (auto ps = parseProcStat(*stat)) {
        out.push_back({"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                       Type::kCounter, {}});
        out.back().add({}, double(ps->utime_ticks + ps->stime_ticks) / double(ticks));
      }
    }
    if (auto statm = readFile("/proc/self/statm"); statm && page > 0) {
      if (auto pm = parseProcStatm(*statm)) {
        out.push_back({"process_resident_memory_bytes", "Resident memory size in bytes.",
                       Type::kGauge, {}});
        out.back().add({}, double(pm->resident_pages) * double(page));
        out.push_back({"process_virtual_memory_bytes", "Virtual memory size in bytes.",
                       Type::kGauge, {}});
        out.back().add({}, double(pm->size_pages) * double(page));
      }
    }
    if (start_s) {
      out.push_back({"process_start_time_seconds",
                     "Start time of the process since unix epoch in seconds.", Type::kGauge, {}});
      out.back().add({}, *start_s);
    }
    if (int fds = countOpenFds(); fds >= 0) {
      out.push_back({"process_open_fds", "Number of open file descriptors.", Type::kGauge, {}});
      out.back().add({}, fds);
    }
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
      out.push_back({"process_max_fds", "Maximum number of open file descriptors.", Type::kGauge, {}});
      out.back().add({}, double(rl.rlim_cur));
    }
  });
}

}  // namespace hdnsd::metrics
