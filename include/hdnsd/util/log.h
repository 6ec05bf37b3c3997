// One line per event on stderr: "2026-11-24T23:59:00.123Z info  endpoints: loaded 4 services".
// Control path only (formats with vsnprintf into a stack buffer; the data path logs nothing
// per query). Single process-wide level, set at startup and on reload.
#pragma once

#include <cstdarg>
#include <optional>
#include <string_view>

namespace hdnsd::log {

enum class Level : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void setLevel(Level l) noexcept;
Level level() noexcept;
std::optional<Level> parseLevel(std::string_view s) noexcept;
const char* levelName(Level l) noexcept;

void write(Level l, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

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
