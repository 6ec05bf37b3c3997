// Service annotations → ServiceSpread (control path). Errors are collected, never thrown.
#include "hdnsd/policy/annotations.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace hdnsd::policy {

namespace {

// "10.000.0.5" is refused by inet_pton; "FD00::1" and "fd00:0::1" become "fd00::1".
std::optional<std::string> canonicalIp(const std::string& text) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN] = {};
  const int af = text.find(':') == std::string::npos ? AF_INET : AF_INET6;
  if (inet_pton(af, text.c_str(), buf) != 1 || inet_ntop(af, buf, out, sizeof out) == nullptr)
    return std::nullopt;
  return std::string(out);
}

bool contains(const std::vector<std::string>* list, std::string_view v) {
  return list != nullptr && std::find(list->begin(), list->end(), v) != list->end();
}

}  // namespace

ServiceSpread parseServiceAnnotations(const std::map<std::string, std::string>& a) {
  ServiceSpread s;
  if (auto it = a.find(kPolicyAnnotation); it != a.end()) {
    s.kind = parseKind(it->second);
    if (!s.kind)
      s.errors.push_back(std::string(kPolicyAnnotation) + ": unknown policy \"" + it->second +
                         "\" (none, round-robin, random, weighted, topology, consistent)");
  }
  if (auto it = a.find(kMaxAnswersAnnotation); it != a.end()) {
    const std::string& v = it->second;
    uint32_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n > kMaxOrdered)
      s.errors.push_back(std::string(kMaxAnswersAnnotation) + ": expected a whole number 0.." +
                         std::to_string(kMaxOrdered) + ", got \"" + v + "\"");
    else
      s.maxAnswers = n;
  }
  if (auto it = a.find(kWeightsAnnotation); it != a.end()) {
    const std::string where = std::string(kWeightsAnnotation) + ": ";
    nlohmann::json doc = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
      s.errors.push_back(where + "expected a JSON object such as {\"pod/web-0\": 3, \"zone/a\": 2}");
      return s;
    }
    std::map<std::string, uint32_t, std::less<>> w;
    for (auto e = doc.begin(); e != doc.end(); ++e) {
      if (!e->is_number_unsigned() || e->get<uint64_t>() > kMaxWeight) {
        s.errors.push_back(where + "\"" + e.key() + "\": expected a whole number 0..65535");
        return s;  // all or nothing: half a weight table would skew shares silently
      }
      std::string key = e.key();
      const bool prefixed = key == "default" || key.rfind("pod/", 0) == 0 ||
                            key.rfind("hostname/", 0) == 0 || key.rfind("node/", 0) == 0 ||
                            key.rfind("zone/", 0) == 0;
      if (!prefixed) {
        auto ip = canonicalIp(key);
        if (!ip) {
          s.errors.push_back(where + "\"" + key +
                             "\": expected an IP address, pod/NAME, hostname/NAME, node/NAME, "
                             "zone/NAME or default");
          return s;
        }
        key = *ip;
      }
      w[key] = static_cast<uint32_t>(e->get<uint64_t>());
    }
    s.weights = std::move(w);
    s.hasWeights = true;
  }
  return s;
}

uint32_t ServiceSpread::weightOf(const EndpointFacts& ep) const {
  if (!hasWeights) return 1;
  auto find = [&](std::string_view prefix, std::string_view value) -> const uint32_t* {
    if (value.empty()) return nullptr;
    std::string k(prefix);
    k += value;
    auto it = weights.find(k);
    return it == weights.end() ? nullptr : &it->second;
  };
  for (const uint32_t* w : {find("", ep.ipText), find("pod/", ep.podName), find("hostname/", ep.hostname),
                            find("node/", ep.nodeName), find("zone/", ep.zone)})
    if (w != nullptr) return *w;
  if (auto it = weights.find("default"); it != weights.end()) return it->second;
  return 1;
}

uint8_t tierOf(const EndpointFacts& ep, const Locality& here) noexcept {
  if (!here.nodeName.empty() && (ep.nodeName == here.nodeName || contains(ep.forNodes, here.nodeName)))
    return kTierNode;
  if (!here.zone.empty()) {
    // Topology Aware Routing hints say which zones an endpoint should serve; when the
    // controller set them, they decide (an endpoint in our zone may be lent to another).
    const bool hinted = ep.forZones != nullptr && !ep.forZones->empty();
    if (hinted ? contains(ep.forZones, here.zone) : ep.zone == here.zone) return kTierZone;
  }
  return kTierOther;
}

}  // namespace hdnsd::policy
