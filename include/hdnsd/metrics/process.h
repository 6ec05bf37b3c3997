// Standard process metrics and build info, the series operators expect from any exporter
// (names as in the Prometheus client libraries, so existing dashboards and alerts work):
//   hdnsd_build_info{version="..."} 1         gauge, owned
//   process_cpu_seconds_total                 counter   utime+stime, /proc/self/stat
//   process_resident_memory_bytes             gauge     /proc/self/statm resident * page size
//   process_virtual_memory_bytes              gauge     /proc/self/statm size * page size
//   process_start_time_seconds                gauge     /proc/stat btime + starttime/CLK_TCK
//   process_open_fds, process_max_fds         gauge     /proc/self/fd, RLIMIT_NOFILE
// Read at scrape time by a collector (control path). The parsers are pure functions so the
// tests can feed them hand-written /proc text.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "hdnsd/metrics/registry.h"

namespace hdnsd::metrics {

void addBuildInfo(Registry& reg, std::string_view version);
// Registers the process_* collector. A /proc file that cannot be read or parsed leaves its
// series out of that scrape rather than reporting a made-up 0.
void addProcessCollector(Registry& reg);

// /proc/self/stat (proc(5)): fields 14 utime, 15 stime, 22 starttime, all in clock ticks.
// The command name (field 2) is in parentheses and may hold spaces or ')', so fields are
// counted from the last ')'.
struct ProcStat {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t starttime_ticks = 0;  // since boot
};
std::optional<ProcStat> parseProcStat(std::string_view text) noexcept;

// /proc/self/statm: "size resident shared text lib data dt", in pages.
struct ProcStatm {
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
};
std::optional<ProcStatm> parseProcStatm(std::string_view text) noexcept;

// /proc/stat: the "btime <seconds since epoch>" line (boot time).
std::optional<uint64_t> parseBootTime(std::string_view text) noexcept;

}  // namespace hdnsd::metrics
