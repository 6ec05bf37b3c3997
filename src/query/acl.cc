#include "hdnsd/query/acl.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace hdnsd::query {
namespace {

bool inPrefix(const uint8_t* addr, const Cidr& c) noexcept {
  const size_t full = c.bits / 8;
  if (std::memcmp(addr, c.addr.data(), full) != 0) return false;
  const unsigned rest = c.bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xFF00u >> rest);
  return (addr[full] & mask) == c.addr[full];
}

}  // namespace

Result<Cidr, std::string> Cidr::parse(std::string_view text) {
  const std::string bad = "expected an address or ADDR/BITS such as 10.0.0.0/8 or fd00::/8, got \"" +
                          std::string(text) + "\"";
  std::string_view addrText = text, bitsText;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addrText = text.substr(0, slash);
    bitsText = text.substr(slash + 1);
    if (bitsText.empty()) return Unexpected{bad};
  }
  if (addrText.empty() || addrText.size() >= INET6_ADDRSTRLEN) return Unexpected{bad};
  const std::string a(addrText);
  Cidr c;
  unsigned maxBits;
  if (inet_pton(AF_INET, a.c_str(), c.addr.data()) == 1) {
    c.family = AF_INET;
    maxBits = 32;
  } else if (inet_pton(AF_INET6, a.c_str(), c.addr.data()) == 1) {
    c.family = AF_INET6;
    maxBits = 128;
  } else {
    return Unexpected{bad};
  }
  unsigned bits = maxBits;
  if (!bitsText.empty()) {
    auto [end, ec] = std::from_chars(bitsText.data(), bitsText.data() + bitsText.size(), bits);
    if (ec != std::errc() || end != bitsText.data() + bitsText.size() || bits > maxBits) return Unexpected{bad};
  }
  c.bits = static_cast<uint8_t>(bits);
  // Host bits set: "10.1.2.3/8" is more likely a typo than a wish for 10.0.0.0/8.
  for (unsigned i = bits; i < maxBits; ++i)
    if (c.addr[i / 8] & (0x80u >> (i % 8)))
      return Unexpected{"host bits set in \"" + std::string(text) + "\" (the prefix would be " +
                        [&] {
                          Cidr n = c;
                          for (unsigned j = bits; j < maxBits; ++j) n.addr[j / 8] &= ~(0x80u >> (j % 8));
                          return n.text();
                        }() +
                        ")"};
  return c;
}

std::string Cidr::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, addr.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(bits);
}

const std::vector<std::string>& defaultAllowList() {
  static const std::vector<std::string> kDefault = {
      "127.0.0.0/8",  "::1/128",       "169.254.0.0/16", "fe80::/10",     "10.0.0.0/8",
      "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",  "fc00::/7"};
  return kDefault;
}

Acl::Acl() : Acl(std::vector<std::string>{}) {}

Acl::Acl(const std::vector<std::string>& cidrs) {
  for (const auto& t : cidrs.empty() ? defaultAllowList() : cidrs)
    if (auto c = Cidr::parse(t)) add(*c);
}

void Acl::add(const Cidr& c) { (c.family == AF_INET ? v4_ : v6_).push_back(c); }

bool Acl::allows(const sockaddr* sa) const noexcept {
  if (sa == nullptr) return true;
  const uint8_t* bytes = nullptr;
  bool v4 = false;
  if (sa->sa_family == AF_INET) {
    bytes = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr);
    v4 = true;
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    bytes = reinterpret_cast<const uint8_t*>(in6);
    if (IN6_IS_ADDR_V4MAPPED(in6)) {  // a dual-stack socket's IPv4 client
      bytes += 12;
      v4 = true;
    }
  } else {
    return false;
  }
  for (const Cidr& c : v4 ? v4_ : v6_)
    if (inPrefix(bytes, c)) return true;
  return false;
}

}  // namespace hdnsd::query
