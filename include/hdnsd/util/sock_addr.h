// A socket address parsed from "ADDR:PORT" text ("127.0.0.1:5353", "[::1]:5353").
// Control path: used for --listen, --metrics and later --upstream.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace hdnsd {

struct SockAddr {
  sockaddr_storage ss{};
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&ss); }
  int family() const noexcept { return ss.ss_family; }
  uint16_t port() const noexcept;
  std::string text() const;  // "127.0.0.1:5353" / "[::1]:5353"

  // Numeric addresses only (no DNS lookups at startup). The port must be given, 0..65535.
  static std::optional<SockAddr> parse(std::string_view hostPort);
};

}  // namespace hdnsd
