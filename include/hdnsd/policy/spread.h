// Load spreading: the names of the policies and the per-RRset data the cluster compiler
// precomputes for them (weights, topology tiers, stable endpoint ids). Plain data, no loop,
// no I/O: every cluster/snapshot.h RrSet points at one (sets of one record share one per
// service, unmanaged sets a shared default); the query path reads it through
// policy::Spreader (spreader.h) and never writes it.
//
// Policies (--policy, and the per-service annotation hdnsd.io/policy):
//   none         stored order (addresses ascending, SRV targets by name)
//   round-robin  each query for a name starts one record later (a per-name counter)
//   random       uniform shuffle
//   weighted     weighted random order, Efraimidis–Spirakis: key_i = ln(u_i) / w_i, largest
//                first, so P(first = i) = w_i / sum(w)
//   topology     tier 0: endpoints on this node, tier 1: in this zone, tier 2: the rest;
//                rotated (round-robin) within each tier
//   consistent   rendezvous (highest random weight) hashing of the client's address over
//                the endpoints: the same client gets the same first record, and removing an
//                endpoint moves only the clients that had it first
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace hdnsd::policy {

enum class Kind : uint8_t { kNone, kRoundRobin, kRandom, kWeighted, kTopology, kConsistent };

inline constexpr Kind kDefaultKind = Kind::kRoundRobin;  // CoreDNS's loadbalance plugin does this

std::optional<Kind> parseKind(std::string_view s) noexcept;  // "round-robin" -> kRoundRobin
const char* kindName(Kind k) noexcept;

// The most records one answer is ordered over. A record in a 64 KiB message takes at least
// 16 bytes (A with a compressed owner), so no answer can carry more than ~4090 records anyway;
// bigger sets are ordered over a rotating window of this many. The order array on the stack
// is kMaxOrdered * 4 bytes (16 KiB).
inline constexpr size_t kMaxOrdered = 4096;

// Topology tiers (also the SRV priority under the topology policy: lower is preferred).
inline constexpr uint8_t kTierNode = 0, kTierZone = 1, kTierOther = 2, kTierCount = 3;

// What the compiler knows about one RRset, for ordering its records. Vectors are either empty
// (the default for every record) or have one entry per record, in the RRset's stored order.
struct SetSpread {
  bool managed = false;        // false: always stored order (SOA, TXT, PTR, CNAME, ClusterIP)
  std::optional<Kind> kind;    // the service's hdnsd.io/policy; empty: the global --policy
  uint32_t maxAnswers = 0;     // the service's hdnsd.io/max-answers; 0: the global --max-answers
  uint64_t key = 0;            // hash of owner name and type: the round-robin counter's slot
  std::vector<float> invWeights;  // 1 / weight (weight 0: +inf, i.e. last); empty: all weight 1
  std::vector<uint8_t> tiers;     // topology tier of each record; empty: all kTierOther
  std::vector<uint64_t> ids;      // stable hash of each record's endpoint (rendezvous hashing)
  // SRV sets: the additional records (Extra entries of the same RrSet's node) that belong to
  // each record: [first, first + count). A record whose target was already listed has count 0.
  std::vector<std::pair<uint32_t, uint32_t>> extras;
};

}  // namespace hdnsd::policy
