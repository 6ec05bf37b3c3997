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

}  // namespace hdnsd::query
