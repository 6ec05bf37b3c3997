// Who may query (--allow CIDR, repeatable): a list of IPv4 and IPv6 prefixes checked against the
// client's address on every query. Everything else gets REFUSED (and malformed packets from it
// nothing at all). The default keeps a node with a public address from being an open resolver:
// loopback, link-local and the private ranges only. Built on the control path (config, reload),
// read on the data path: allows() is a loop over at most a few dozen prefixes, no allocation.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hdnsd/util/result.h"

namespace hdnsd::query {

struct Cidr {
  int family = AF_INET;              // AF_INET or AF_INET6
  uint8_t bits = 0;                  // prefix length
  std::array<uint8_t, 16> addr{};    // network bytes, host bits cleared (IPv4 uses the first 4)

  // "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128). The host bits must be zero
  // ("10.1.2.3/8" is refused: probably not what was meant).
  static Result<Cidr, std::string> parse(std::string_view text);
  std::string text() const;
};

// The default allow list: 127.0.0.0/8 ::1/128 (loopback), 169.254.0.0/16 fe80::/10 (link-local),
// 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 (RFC 1918), 100.64.0.0/10 (RFC 6598 shared space, used
// for pod networks), fc00::/7 (unique local).
const std::vector<std::string>& defaultAllowList();

class Acl {
 public:
  Acl();  // the default list
  // Every text must parse (the config parser checked it); an empty list means the default one.
  explicit Acl(const std::vector<std::string>& cidrs);

  // True when `addr` (AF_INET or AF_INET6; an IPv4-mapped IPv6 address is checked as IPv4) is
  // inside one of the prefixes. No address (a unit test calling the responder directly): true.
  bool allows(const sockaddr* addr) const noexcept;
  size_t size() const noexcept { return v4_.size() + v6_.size(); }

 private:
  void add(const Cidr& c);
  std::vector<Cidr> v4_, v6_;
};

}  // namespace hdnsd::query
