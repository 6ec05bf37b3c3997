#include "hdnsd/util/log.h"

#include <sys/time.h>

#include <atomic>
#include <cstdio>
#include <ctime>

namespace hdnsd::log {
namespace {
std::atomic<int> gLevel{static_cast<int>(Level::kInfo)};
}

void setLevel(Level l) noexcept { gLevel.store(static_cast<int>(l), std::memory_order_relaxed); }
Level level() noexcept { return static_cast<Level>(gLevel.load(std::memory_order_relaxed)); }

std::optional<Level> parseLevel(std::string_view s) noexcept {
  if (s == "error") return Level::kError;
  if (s == "warn") return Level::kWarn;
  if (s == "info") return Level::kInfo;
  if (s == "debug") return Level::kDebug;
  return std::nullopt;
}

const char* levelName(Level l) noexcept {
  switch (l) {
    case Level::kError: return "error";
    case Level::kWarn: return "warn";
    case Level::kInfo: return "info";
    case Level::kDebug: return "debug";
  }
  return "?";
}

void write(Level l, const char* fmt, ...) noexcept {
  char line[2048];
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm utc{};
  gmtime_r(&tv.tv_sec, &utc);
  int n = std::snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s ",
                        utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                        utc.tm_sec, static_cast<int>(tv.tv_usec / 1000), levelName(l));
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof line - 2) len = sizeof line - 2;  // over-long lines are cut, still one line
  line[len++] = '\n';
  // One write(2) per line so concurrent writers never interleave within a line.
  (void)!fwrite(line, 1, len, stderr);
  fflush(stderr);
}

}  // namespace hdnsd::log
