#include "hdnsd/util/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>

namespace hdnsd::log {
namespace {
std::atomic<int> gLevel{static_cast<int>(Level::kInfo)};
std::atomic<int> gFormat{static_cast<int>(Format::kText)};

// The "component" of "endpoints: loaded 4 services": a short lower-case word before ": ".
size_t componentLength(std::string_view msg) noexcept {
  for (size_t i = 0; i < msg.size() && i < 24; ++i) {
    char c = msg[i];
    if (c == ':') return i > 0 && i + 1 < msg.size() && msg[i + 1] == ' ' ? i : 0;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return 0;
  }
  return 0;
}
size_t appendRaw(char* out, size_t pos, size_t cap, std::string_view s) noexcept {
  for (char c : s)
    if (pos < cap) out[pos++] = c;
  return pos;
}
}  // namespace

void setLevel(Level l) noexcept { gLevel.store(static_cast<int>(l), std::memory_order_relaxed); }
Level level() noexcept { return static_cast<Level>(gLevel.load(std::memory_order_relaxed)); }
void setFormat(Format f) noexcept { gFormat.store(static_cast<int>(f), std::memory_order_relaxed); }
Format format() noexcept { return static_cast<Format>(gFormat.load(std::memory_order_relaxed)); }

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

std::optional<Format> parseFormat(std::string_view s) noexcept {
  if (s == "text") return Format::kText;
  if (s == "json") return Format::kJson;
  return std::nullopt;
}

const char* formatName(Format f) noexcept { return f == Format::kJson ? "json" : "text"; }

size_t timestamp(char* out, size_t cap) noexcept {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm utc{};
  gmtime_r(&tv.tv_sec, &utc);
  int n = std::snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                        utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(tv.tv_usec / 1000));
  if (n < 0) return 0;
  return static_cast<size_t>(n) < cap ? static_cast<size_t>(n) : cap - 1;
}

size_t appendJsonEscaped(char* out, size_t pos, size_t cap, std::string_view s) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      if (pos + 2 > cap) break;
      out[pos++] = '\\';
      out[pos++] = static_cast<char>(c);
    } else if (c < 0x20) {
      if (pos + 6 > cap) break;
      const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      for (char e : esc) out[pos++] = e;
    } else {
      if (pos + 1 > cap) break;
      out[pos++] = static_cast<char>(c);
    }
  }
  return pos;
}

void write(Level l, const char* fmt, ...) noexcept {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t msgLen = m < 0 ? 0 : (static_cast<size_t>(m) < sizeof msg ? static_cast<size_t>(m) : sizeof msg - 1);
  std::string_view text(msg, msgLen);

  char line[4096];
  size_t len = 0;
  char ts[40];
  size_t tsLen = timestamp(ts, sizeof ts);
  if (format() == Format::kJson) {
    // One JSON object per line; the closing '}' and '\n' always fit (room kept below).
    constexpr size_t kCap = sizeof line - 3;
    len = static_cast<size_t>(std::snprintf(line, kCap, "{\"ts\":\"%.*s\",\"level\":\"%s\",", int(tsLen), ts,
                                            levelName(l)));
    if (size_t c = componentLength(text)) {
      len = appendRaw(line, len, kCap, "\"component\":\"");
      len = appendJsonEscaped(line, len, kCap, text.substr(0, c));
      if (len + 2 <= kCap) { line[len++] = '"'; line[len++] = ','; }
      text.remove_prefix(c + 2);
    }
    len = appendRaw(line, len, kCap, "\"msg\":\"");
    len = appendJsonEscaped(line, len, kCap - 1, text);
    line[len++] = '"';
    line[len++] = '}';
  } else {
    int n = std::snprintf(line, sizeof line, "%.*s %-5s ", int(tsLen), ts, levelName(l));
    len = static_cast<size_t>(n);
    for (char ch : text) {
      if (len >= sizeof line - 2) break;  // over-long lines are cut, still one line
      line[len++] = ch == '\n' ? ' ' : ch;
    }
  }
  line[len++] = '\n';
  // One write(2) per line so concurrent writers never interleave within a line.
  (void)!::write(2, line, len);
}

}  // namespace hdnsd::log
