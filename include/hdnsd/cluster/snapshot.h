// The compiled, immutable cluster view that queries read. One Snapshot is built from a
// ClusterModel on the control path (off the loop) and published as shared_ptr<const Snapshot>;
// queries hold the pointer for the duration of one answer and never mutate it.
//
// Answers follow the Kubernetes DNS specification (kubernetes/dns docs/specification.md,
// schema 1.1.0): ClusterIP A/AAAA/SRV/PTR, headless A/AAAA per ready endpoint, hostname records,
// SRV per named port, PTR for endpoint IPs, ExternalName CNAME, dns-version TXT, and the
// deprecated-but-required pod A records (<a-b-c-d>.<ns>.pod.<zone>).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hdnsd/cluster/model.h"
#include "hdnsd/dns/name.h"
#include "hdnsd/dns/wire.h"
#include "hdnsd/dns/writer.h"

namespace hdnsd::cluster {

inline constexpr const char* kSchemaVersion = "1.1.0";

// One record's RDATA, stored in uncompressed wire form.
struct Rdata {
  std::string bytes;
  dns::RdataKind kind = dns::RdataKind::kOpaque;
  dns::RdataView view() const noexcept { return {bytes, kind}; }
};

// All records of one type at one name, in a stable order (the spreading policy rotates them
// at answer time without touching this).
struct RrSet {
  uint16_t type = 0;
  std::vector<Rdata> rdatas;
};

// A record set that goes into the additional section, with its own owner (e.g. the A records
// of an SRV target).
struct Extra {
  std::string ownerWire;
  const RrSet* rrset = nullptr;
};

// What a lookup found. Pointers stay valid as long as the Snapshot does.
struct Lookup {
  enum class Kind : uint8_t {
    kNotInZone,  // the name is outside the cluster zone: the caller forwards or REFUSES
    kAnswer,     // `answer` holds the records (for a CNAME the caller does not chase it)
    kSynthAddress,  // one A/AAAA computed from the name (pod records): `synth`
    kNoData,     // the name exists but has no records of this type: NOERROR + SOA
    kNxDomain,   // no such name in the zone: NXDOMAIN + SOA
  };
  Kind kind = Kind::kNotInZone;
  const RrSet* answer = nullptr;
  std::span<const Extra> additional;
  uint16_t synthType = 0;  // kTypeA (4 bytes) or kTypeAAAA (16 bytes)
  uint8_t synth[16] = {};
};

struct ViewOptions {
  std::string zone = "cluster.local";  // text form
  uint32_t ttl_s = 5;
};

class Snapshot {
 public:
  // Compiles the model. Never fails: objects that cannot be served (e.g. a slice with no
  // service) are skipped and counted.
  static std::shared_ptr<const Snapshot> build(const ClusterModel& model, const ViewOptions& opts);

  // Looks up a lower-cased question name. noexcept, no allocation.
  Lookup lookup(const dns::NameKey& qname, uint16_t qtype) const noexcept;

  std::string_view zoneWire() const noexcept { return zoneWire_; }
  const RrSet& soa() const noexcept { return soa_; }  // the zone's SOA (owner: zoneWire())
  uint32_t ttl() const noexcept { return ttl_s_; }
  size_t serviceCount() const noexcept { return serviceCount_; }
  size_t endpointCount() const noexcept { return endpointCount_; }
  size_t skippedObjects() const noexcept { return skipped_; }

  // Everything below is the compiler's business (src/cluster): change freely, keeping in
  // mind that a later change (the API watch) must update ONE service at a cost in proportion
  // to that service, not to the cluster.
 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
  std::string zoneWire_;
  RrSet soa_;
  uint32_t ttl_s_ = 5;
  size_t serviceCount_ = 0, endpointCount_ = 0, skipped_ = 0;
};

}  // namespace hdnsd::cluster
