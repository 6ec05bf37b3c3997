#include "hdnsd/upstream/upstreams.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "hdnsd/dns/name.h"

namespace hdnsd::upstream {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool sameServers(const std::vector<SockAddr>& a, const std::vector<SockAddr>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].text() != b[i].text()) return false;
  return true;
}

bool isWildcard(const SockAddr& a) {
  if (a.family() == AF_INET) return reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr.s_addr == INADDR_ANY;
  if (a.family() == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr);
  return false;
}

bool isLoopback(const SockAddr& a) {
  if (a.family() == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr.s_addr) >> 24) == 127;
  if (a.family() == AF_INET6) return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr);
  return false;
}

}  // namespace

std::vector<SockAddr> parseResolvConf(std::string_view text) {
  std::vector<SockAddr> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    line = trim(line);
    if (line.rfind("nameserver", 0) != 0) continue;
    line = line.substr(10);
    if (line.empty() || (line.front() != ' ' && line.front() != '\t')) continue;
    line = trim(line);
    if (size_t end = line.find_first_of(" \t#;"); end != std::string_view::npos) line = line.substr(0, end);
    if (line.empty() || line.find('%') != std::string_view::npos) continue;  // scoped link-local: no
    std::string hostPort = line.find(':') != std::string_view::npos ? "[" + std::string(line) + "]:53"
                                                                     : std::string(line) + ":53";
    if (auto a = SockAddr::parse(hostPort)) out.push_back(*a);
  }
  return out;
}

Result<config::Config::StubZone, std::string> parseStubZone(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return Unexpected{"expected DOMAIN=ADDR:PORT[,ADDR:PORT...][,tcp] such as cluster.local=10.96.0.10:53, got \"" +
                      std::string(text) + "\""};
  config::Config::StubZone z;
  std::string wire;
  std::string_view domain = text.substr(0, eq);
  if (domain == "." || !dns::textToWire(domain, &wire))
    return Unexpected{"expected a domain name before '=', got \"" + std::string(domain) + "\""};
  z.domain = dns::wireToText(wire);
  z.domain.pop_back();
  std::string_view rest = text.substr(eq + 1);
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    if (item == "tcp") {
      z.tcp = true;
    } else if (item == "udp") {
      z.tcp = false;
    } else {
      auto a = SockAddr::parse(item);
      if (!a) return Unexpected{"expected ADDR:PORT or tcp after '=', got \"" + std::string(item) + "\""};
      z.servers.push_back(*a);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (z.servers.empty()) return Unexpected{"no server given for " + z.domain};
  return z;
}

std::string stubZoneText(const config::Config::StubZone& z) {
  std::string s = z.domain + "=";
  for (size_t i = 0; i < z.servers.size(); ++i) s += (i ? "," : "") + z.servers[i].text();
  if (z.tcp) s += ",tcp";
  return s;
}

bool isOwnAddress(const SockAddr& server, const std::vector<SockAddr>& listen) noexcept {
  for (const auto& l : listen) {
    if (l.port() != server.port() || l.family() != server.family()) continue;
    if (l.text() == server.text()) return true;
    // A wildcard listener answers on every local address; loopback is certainly one of them.
    if (isWildcard(l) && isLoopback(server)) return true;
  }
  return false;
}

Result<UpstreamPlan, std::string> UpstreamPlan::make(const config::Config& c, std::string_view resolvConfText) {
  UpstreamPlan p;
  std::vector<SockAddr> defaults = c.upstreams;
  if (defaults.empty()) {
    for (const auto& a : parseResolvConf(resolvConfText)) {
      if (isOwnAddress(a, c.listen)) {
        p.warnings.push_back("resolv.conf nameserver " + a.text() + " is our own --listen address: skipped");
        continue;
      }
      defaults.push_back(a);
    }
  }
  for (const auto& a : c.upstreams)
    if (isOwnAddress(a, c.listen))
      return Unexpected{"--upstream " + a.text() + " is one of our own --listen addresses (a forwarding loop)"};
  auto addSet = [&p](std::string name, const std::vector<SockAddr>& servers, bool tcp) {
    for (size_t i = 0; i < p.sets_.size(); ++i)
      if (p.sets_[i].tcp == tcp && sameServers(p.sets_[i].servers, servers)) return i;
    p.sets_.push_back(UpstreamSet{std::move(name), servers, tcp});
    return p.sets_.size() - 1;
  };
  if (!defaults.empty()) p.default_ = addSet("default", defaults, c.upstreamTcp);
  for (const auto& z : c.stubZones) {
    for (const auto& a : z.servers)
      if (isOwnAddress(a, c.listen))
        return Unexpected{"--stub-zone " + z.domain + ": " + a.text() + " is one of our own --listen addresses"};
    Zone zone;
    dns::textToWire(z.domain, &zone.wire);
    zone.set = addSet(z.domain, z.servers, z.tcp);
    p.zones_.push_back(std::move(zone));
  }
  std::stable_sort(p.zones_.begin(), p.zones_.end(),
                   [](const Zone& a, const Zone& b) { return a.wire.size() > b.wire.size(); });
  return p;
}

size_t UpstreamPlan::route(std::string_view qnameWire) const noexcept {
  for (const auto& z : zones_)
    if (dns::isAtOrBelow(qnameWire, z.wire)) return z.set;
  return default_;
}

}  // namespace hdnsd::upstream
