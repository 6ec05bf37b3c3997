#include "hdnsd/query/stats.h"

#include "hdnsd/dns/wire.h"

namespace hdnsd::query {

const char* transportName(Transport t) noexcept { return t == Transport::kTcp ? "tcp" : "udp"; }

const char* typeBucketName(TypeBucket t) noexcept {
  static constexpr const char* kNames[] = {"A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "SOA", "NS", "ANY", "other"};
  return kNames[static_cast<size_t>(t)];
}

const char* outcomeName(Outcome o) noexcept {
  static constexpr const char* kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                           "NOTIMP",  "REFUSED", "BADVERS",  "dropped"};
  return kNames[static_cast<size_t>(o)];
}

TypeBucket typeBucket(uint16_t qtype) noexcept {
  switch (qtype) {
    case dns::kTypeA: return TypeBucket::kA;
    case dns::kTypeAAAA: return TypeBucket::kAAAA;
    case dns::kTypeSRV: return TypeBucket::kSRV;
    case dns::kTypePTR: return TypeBucket::kPTR;
    case dns::kTypeTXT: return TypeBucket::kTXT;
    case dns::kTypeCNAME: return TypeBucket::kCNAME;
    case dns::kTypeSOA: return TypeBucket::kSOA;
    case dns::kTypeNS: return TypeBucket::kNS;
    case dns::kTypeANY: return TypeBucket::kANY;
    default: return TypeBucket::kOther;
  }
}

void addTo(QueryStats& total, const QueryStats& part) noexcept {
  auto add = [](auto& t, const auto& p) { t.fetch_add(p.load(std::memory_order_relaxed), std::memory_order_relaxed); };
  for (size_t t = 0; t < size_t(Transport::kCount); ++t) {
    for (size_t ty = 0; ty < size_t(TypeBucket::kCount); ++ty)
      for (size_t o = 0; o < size_t(Outcome::kCount); ++o) add(total.queries[t][ty][o], part.queries[t][ty][o]);
    add(total.truncated[t], part.truncated[t]);
  }
  for (size_t e = 0; e < size_t(dns::ParseError::kCount); ++e) add(total.parseErrors[e], part.parseErrors[e]);
  for (auto c : {&QueryStats::udpSendDropped, &QueryStats::tcpConnectionsAccepted, &QueryStats::tcpConnectionsRefused,
                  &QueryStats::tcpIdleClosed, &QueryStats::tcpBadFrames, &QueryStats::aclRefused,
                  &QueryStats::udpAmplificationCapped, &QueryStats::tcpPerClientRefused})
    add(total.*c, part.*c);
  add(total.tcpConnectionsOpen, part.tcpConnectionsOpen);
}

uint64_t totalQueries(const QueryStats& s) noexcept {
  uint64_t n = 0;
  for (const auto& byType : s.queries)
    for (const auto& byOutcome : byType)
      for (const auto& c : byOutcome) n += c.load(std::memory_order_relaxed);
  return n;
}

}  // namespace hdnsd::query
