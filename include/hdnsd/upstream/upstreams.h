// Which servers a name is forwarded to, pure and control-path (allocates, never on the data
// path except route(), which is a linear scan over a handful of zones with no allocation).
//   - parseResolvConf: the `nameserver` lines of a resolv.conf (port 53)
//   - parseStubZone: "--stub-zone cluster.local=10.96.0.10:53,10.96.0.11:53,tcp"
//   - UpstreamPlan: the default set plus the stub zones, one entry per distinct set (= one c-ares
//     channel each), and route(qname) by longest label-aligned suffix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hdnsd/config/config.h"
#include "hdnsd/util/result.h"
#include "hdnsd/util/sock_addr.h"

namespace hdnsd::upstream {

// Nameservers of resolv.conf text, in order. IPv6 with a %scope and unparsable lines are skipped.
std::vector<SockAddr> parseResolvConf(std::string_view text);

Result<config::Config::StubZone, std::string> parseStubZone(std::string_view text);
std::string stubZoneText(const config::Config::StubZone& z);  // back to the flag's form

struct UpstreamSet {
  std::string name;                // "default" or the stub zone's domain: the metrics label
  std::vector<SockAddr> servers;
  bool tcp = false;
};

class UpstreamPlan {
 public:
  static constexpr size_t kNone = SIZE_MAX;

  // Builds the plan from the config. Default servers: --upstream, else those of `resolvConfText`
  // (the caller read the file). Any server equal to one of `listen` (same address and port, or
  // a wildcard listen on that port) is a forwarding loop: an error naming it.
  static Result<UpstreamPlan, std::string> make(const config::Config& c, std::string_view resolvConfText);

  const std::vector<UpstreamSet>& sets() const noexcept { return sets_; }
  size_t defaultSet() const noexcept { return default_; }  // kNone: nothing to forward to
  // The set for a lower-cased wire name: longest matching stub zone, else the default.
  size_t route(std::string_view qnameWire) const noexcept;
  std::vector<std::string> warnings;  // e.g. resolv.conf servers skipped as our own address

 private:
  struct Zone {
    std::string wire;
    size_t set;
  };
  std::vector<UpstreamSet> sets_;
  std::vector<Zone> zones_;  // longest first
  size_t default_ = kNone;
};

// True if sending to `server` would reach one of our own listening sockets.
bool isOwnAddress(const SockAddr& server, const std::vector<SockAddr>& listen) noexcept;

}  // namespace hdnsd::upstream
