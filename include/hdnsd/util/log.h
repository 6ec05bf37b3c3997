// One line per event on stderr: "2026-11-24T23:59:00.123Z info  endpoints: loaded 4 services",
// or with --log-format json one object per line:
//   {"ts":"2026-11-24T23:59:00.123Z","level":"info","component":"endpoints","msg":"loaded 4 services"}
// ("component" is the message's leading "word: " when it has one). Control path only (formats with vsnprintf into a stack buffer; the data path logs nothing
// per query). Single process-wide level, set at startup and on reload.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <optional>
#include <string_view>

namespace hdnsd::log {

enum class Level : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void setLevel(Level l) noexcept;
Level level() noexcept;
std::optional<Level> parseLevel(std::string_view s) noexcept;
const char* levelName(Level l) noexcept;

void write(Level l, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

enum class Format : int { kText = 0, kJson = 1 };
void setFormat(Format f) noexcept;
Format format() noexcept;
std::optional<Format> parseFormat(std::string_view s) noexcept;
const char* formatName(Format f) noexcept;

// "2026-11-24T23:59:00.123Z" (UTC, milliseconds) into out (at least 25 bytes); returns its length.
size_t timestamp(char* out, size_t cap) noexcept;
// Appends s to out[pos, cap) as the inside of a JSON string (quotes, backslashes and control
// characters escaped), cut short rather than overflowing; returns the new position.
size_t appendJsonEscaped(char* out, size_t pos, size_t cap, std::string_view s) noexcept;

}  // namespace hdnsd::log

#define HDNSD_LOG(lvl, ...)                                                       \
  do {                                                                            \
    if (static_cast<int>(::hdnsd::log::Level::lvl) <= static_cast<int>(::hdnsd::log::level())) \
      ::hdnsd::log::write(::hdnsd::log::Level::lvl, __VA_ARGS__);                 \
  } while (0)
#define LOG_ERROR(...) HDNSD_LOG(kError, __VA_ARGS__)
#define LOG_WARN(...) HDNSD_LOG(kWarn, __VA_ARGS__)
#define LOG_INFO(...) HDNSD_LOG(kInfo, __VA_ARGS__)
#define LOG_DEBUG(...) HDNSD_LOG(kDebug, __VA_ARGS__)
