// The compiled, immutable cluster view that queries read. One Snapshot is built from a
// ClusterModel on the control path (off the loop) and published as shared_ptr<const Snapshot>;
// queries hold the pointer for the duration of one answer and never mutate it.
//
// Answers follow the Kubernetes DNS specification (kubernetes/dns docs/specification.md,
// schema 1.1.0): ClusterIP A/AAAA/SRV/PTR, headless A/AAAA per ready endpoint, hostname records,
// SRV per named port, PTR for endpoint IPs, ExternalName CNAME, dns-version TXT, and the
// deprecated-but-required pod A records (<a-b-c-d>.<ns>.pod.<zone>).
//
// Structure (src/cluster/: compile.cc builds one service, snapshot.cc the tables, lookup.cc
// the data path). Each service compiles into one CompiledService (src/cluster/snapshot_impl.h): a
// byte arena with every name at or below <svc>.<ns>.svc.<zone> and every record, plus flat
// arrays of nodes (names), RrSets, Extras and PTR entries that point into it - a handful of
// allocations per service instead of several per record. Records of A, AAAA, SRV and TXT
// sets are stored as the bytes that follow the owner name on the wire (TYPE CLASS TTL
// RDLENGTH RDATA, the view's TTL included), so an answer is the question pointer plus one
// copy per record; PTR, CNAME and SOA keep their RDATA alone (the writer compresses those
// names). Tables (sharded, copy-on-write, see below):
//   names        the full wire name of every node of every service -> the node; keyed by the
//                  seeded name hash the parse already computed (dns::NameKey::hash()), so a
//                  query for an existing name costs one probe and one compare, no hashing.
//   namespaces   "\4demo" -> number of existing services (empty non-terminal <ns>.svc.<zone>).
//   reverse      4 or 16 raw address bytes -> the PTR entry: the one service naming the address
//                  (its entry points at the target name in that service's arena), or, for an
//                  address several services name, a merged entry (sorted by target) owned by
//                  the `merged` table.
//   services     "\3web\4demo" -> shared_ptr<const CompiledService> (control path only: it
//                  owns everything the other tables point to).
// A watch event for ONE service goes through rebuildService(): it recompiles that service
// only, swaps its entries in the tables, adjusts one namespace count and re-merges only the
// PTR entries of the addresses the old or new version used. Unchanged CompiledServices are
// shared with the previous Snapshot. The tables are sharded (names and reverse 1024 shards,
// services 256, namespaces 16, merged 64; each shard behind a shared_ptr, copy-on-write): an
// update copies the shard pointers and clones only the shards it writes to.
// Measured (-O2, bench.py's 10k headless services of 10 endpoints): build 0.24 s, the view
// ~46 MiB of heap (~470 bytes per endpoint; it was ~1.3 KB with a hash node per name, a
// std::string per record and a shared_ptr'd PTR set per address), hdnsd's RSS 62 MiB (was
// 161); rebuildService of one 10-endpoint service ~0.07 ms; a lookup that hits ~90
// instructions. The names table relies on NameKey::hash() == dns::nameHash(wire()): the
// seed is per process, and a table is only ever read in the process that built it.
//
// Deliberate choices (documented here because the query pipeline relies on them):
// - The apex answers SOA; NS (and any other type) at the apex is kNoData: we are a node-local
//   resolver, not a delegated server, and have no NS host address to give. ANY at the apex: SOA.
// - Empty non-terminals (apex, svc.<zone>, <ns>.svc.<zone> with an existing service,
//   _<proto>.<svc>.<ns>.svc.<zone>, pod.<zone>, <ns>.pod.<zone> for any <ns>) are kNoData
//   (RFC 8020: NXDOMAIN would deny everything below).
// - ANY (RFC 8482 allows a subset) returns the first RrSet of the name (A before AAAA).
// - A headless service with no ready endpoint is NXDOMAIN with all its sub-names (spec 2.4.1).
// - Reverse names (in-addr.arpa, ip6.arpa): kAnswer for PTR/ANY when the address is in the view;
//   everything else there (unknown address, other types, partial names) is kNotInZone so the
//   caller forwards it: we are not authoritative for the reverse zones.
// - ns.dns.<zone> (the SOA mname) has no address records: NXDOMAIN.
// - Headless merge: all slices labelled with the service, deduplicated by address; an address
//   is ready if any copy is (absent conditions.ready = ready), and the first hostname wins.
//   An endpoint without a hostname is named by its dashed address (10-244-2-5, fd00--1). SRV
//   port numbers/names/protocols come from the slices; weight 100/N (at least 1); records are
//   ordered by target label, A/AAAA by address, PTR sets by target wire bytes.
// - Names that cannot be built (a label over 63 bytes or with a dot, a name over 255 bytes,
//   an ExternalName that is not a domain name) are skipped and counted in skippedObjects().
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
#include "hdnsd/policy/spread.h"

namespace hdnsd::cluster {

inline constexpr const char* kSchemaVersion = "1.1.0";

// One record's RDATA in uncompressed wire form: a view into the Snapshot's bytes, valid as
// long as the Snapshot is.
struct Rdata {
  std::string_view bytes;
  dns::RdataKind kind = dns::RdataKind::kOpaque;
  dns::RdataView view() const noexcept { return {bytes, kind}; }
};

// The records of one RrSet, in stored order, packed back to back in the compiled bytes. A
// record of an opaque type (A, AAAA, SRV, TXT) is stored as its wire tail: the bytes that
// follow the owner name (TYPE CLASS TTL RDLENGTH RDATA, TTL = the view's), ready to copy into
// an answer; a record of a name type (PTR, CNAME, SOA) as its RDATA alone. Indexing yields
// the RDATA either way. Read-only; no allocation.
class Records {
 public:
  static constexpr uint8_t kTailHeader = 10;  // TYPE CLASS TTL RDLENGTH

  Records() = default;
  // `offsets`: count + 1 offsets from `base` when the records differ in size, else nullptr
  // and every record is `stride` bytes. `header`: kTailHeader (wire tails) or 0 (RDATA).
  Records(const uint8_t* base, uint32_t count, uint16_t stride, const uint32_t* offsets,
          uint8_t header, dns::RdataKind kind) noexcept
      : base_(base), offs_(offsets), count_(count), stride_(stride), header_(header), kind_(kind) {}

  size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  // True when stored(i) is the record's whole wire tail (TYPE .. RDATA).
  bool hasWireTails() const noexcept { return header_ != 0; }
  // The size of every stored record when they are all alike, else 0.
  size_t fixedSize() const noexcept { return offs_ == nullptr ? stride_ : 0; }
  // Record i as stored: the wire tail, or the RDATA alone.
  std::span<const uint8_t> stored(size_t i) const noexcept {
    if (offs_ == nullptr) return {base_ + i * stride_, stride_};
    return {base_ + offs_[i], offs_[i + 1] - offs_[i]};
  }
  Rdata operator[](size_t i) const noexcept {
    const std::span<const uint8_t> s = stored(i).subspan(header_);
    return {{reinterpret_cast<const char*>(s.data()), s.size()}, kind_};
  }

  class iterator {
   public:
    iterator(const Records* r, size_t i) noexcept : r_(r), i_(i) {}
    Rdata operator*() const noexcept { return (*r_)[i_]; }
    iterator& operator++() noexcept {
      ++i_;
      return *this;
    }
    bool operator==(const iterator& o) const noexcept { return i_ == o.i_; }
    bool operator!=(const iterator& o) const noexcept { return i_ != o.i_; }

   private:
    const Records* r_;
    size_t i_;
  };
  iterator begin() const noexcept { return {this, 0}; }
  iterator end() const noexcept { return {this, count_}; }

 private:
  const uint8_t* base_ = nullptr;
  const uint32_t* offs_ = nullptr;
  uint32_t count_ = 0;
  uint16_t stride_ = 0;
  uint8_t header_ = 0;
  dns::RdataKind kind_ = dns::RdataKind::kOpaque;
};

// The spreading data of every set that has none of its own: not managed, stored order.
inline const policy::SetSpread kUnmanagedSpread{};

// All records of one type at one name, in a stable order (the spreading policy rotates them
// at answer time without touching this).
struct RrSet {
  uint16_t type = 0;
  Records rdatas;
  // Load spreading (policy/spread.h): headless services' A/AAAA/SRV sets are managed, with
  // per-record weights, topology tiers and endpoint ids computed when the view is compiled.
  // Read-only at answer time; the per-name round-robin counters live in the Responder's
  // policy::Spreader, never here. Sets of one record share one SetSpread per service (no
  // policy reorders one record); unmanaged sets point at kUnmanagedSpread.
  const policy::SetSpread* spreadData = &kUnmanagedSpread;
  const policy::SetSpread& spread() const noexcept { return *spreadData; }
};

// A record set that goes into the additional section, with its own owner (e.g. the A records
// of an SRV target).
struct Extra {
  std::string_view ownerWire;
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
  uint8_t synth[16];       // set for kSynthAddress only
};

struct ViewOptions {
  std::string zone = "cluster.local";  // text form
  uint32_t ttl_s = 5;
  uint32_t serial = 0;  // SOA serial; 0: seconds since the epoch, strictly increasing per process
  // The view holds only part of the zone (the API source with --headless-only): a name it does
  // not hold may still exist (a ClusterIP service), so the Responder must not answer NXDOMAIN
  // for it but hand it to the forwarder (see Responder). Lookups are unchanged.
  bool partialZone = false;
  // Load spreading (compiled into RrSet::spread and SRV priority/weight fields):
  std::string nodeName;  // --node-name: topology tier 0
  std::string nodeZone;  // --zone: tier 1; empty: learned from an endpoint on nodeName
  policy::Kind policy = policy::kDefaultKind;  // --policy: SRV priority = tier under topology
  // --terminating-fallback: a headless service with no ready endpoint answers with its
  // serving+terminating ones (kube-proxy's traffic fallback) instead of NXDOMAIN.
  bool terminatingFallback = false;
};

// The SOA timers besides the serial (RFC 1912 2.2 suggestions; minimum is the view's TTL,
// which is also the negative-caching TTL, RFC 2308 5).
inline constexpr uint32_t kSoaRefresh_s = 7200, kSoaRetry_s = 1800, kSoaExpire_s = 86400;

class Snapshot {
 public:
  // Compiles the model. Never fails: objects that cannot be served (e.g. a slice with no
  // service) are skipped and counted.
  static std::shared_ptr<const Snapshot> build(const ClusterModel& model, const ViewOptions& opts);

  // A new Snapshot equal to build(model, opts of prev) where only the service `serviceKey`
  // ("ns/name") and its EndpointSlices may differ from what `prev` was built from (the service
  // may be new, changed or gone from `model`). Cost: that service, plus copying pointer tables.
  static std::shared_ptr<const Snapshot> rebuildService(const Snapshot& prev,
                                                        const ClusterModel& model,
                                                        const std::string& serviceKey);

  // Looks up a lower-cased question name. noexcept, no allocation.
  Lookup lookup(const dns::NameKey& qname, uint16_t qtype) const noexcept;

  std::string_view zoneWire() const noexcept { return zoneWire_; }
  const RrSet& soa() const noexcept { return soa_; }  // the zone's SOA (owner: zoneWire())
  uint32_t ttl() const noexcept { return ttl_s_; }
  size_t serviceCount() const noexcept { return serviceCount_; }
  size_t endpointCount() const noexcept { return endpointCount_; }
  size_t skippedObjects() const noexcept { return skipped_; }
  uint32_t serial() const noexcept { return serial_; }
  // ViewOptions::partialZone: kNxDomain from lookup() means "not in this view", not "absent".
  bool partialZone() const noexcept { return opts_.partialZone; }
  // The zone the topology policy treats as ours: ViewOptions::nodeZone, or else the zone of
  // an endpoint on ViewOptions::nodeName found by build() (or by a rebuildService() that saw
  // one first); empty if unknown.
  const std::string& nodeZone() const noexcept { return nodeZone_; }
  // Services whose hdnsd.io/* spreading annotations were malformed (ignored; logged).
  size_t badAnnotations() const noexcept { return badAnnotations_; }

  // Everything below is the compiler's business (src/cluster): change freely, keeping in
  // mind that a later change (the API watch) must update ONE service at a cost in proportion
  // to that service, not to the cluster.
 private:
  struct Impl;
  friend struct SnapshotBuilder;
  // lookup() of a name that is no node of a service: classified by its labels.
  Lookup lookupByLabels(const dns::NameKey& qname, uint16_t qtype) const noexcept;
  std::shared_ptr<const Impl> impl_;
  std::string zoneWire_;
  std::string soaRdata_;  // soa_'s one record
  RrSet soa_;
  ViewOptions opts_;
  uint32_t ttl_s_ = 5;
  uint32_t serial_ = 0;
  // serviceCount_: services compiled (an empty headless one included: it is NXDOMAIN, but it
  // is there). endpointCount_: endpoint addresses served after merge, dedupe and readiness.
  // skipped_: services that cannot be named (bad labels, bad externalName) and slices with no
  // such service or of addressType FQDN.
  size_t serviceCount_ = 0, endpointCount_ = 0, skipped_ = 0;
  std::string nodeZone_;
  size_t badAnnotations_ = 0;
};

}  // namespace hdnsd::cluster
