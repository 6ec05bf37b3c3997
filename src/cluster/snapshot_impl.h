// The compiled form of the cluster view (private to src/cluster): one CompiledService per
// service, and the sharded copy-on-write tables of a Snapshot that point into them. Built on
// the control path (compile.cc, snapshot.cc), read by lookups (lookup.cc) without allocation.
// Lifetime: a Snapshot's `services` table holds every CompiledService its other tables point
// into, so raw pointers in those tables stay valid as long as the Snapshot.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "hdnsd/cluster/snapshot.h"

namespace hdnsd::cluster {

// One name at or below a service, e.g. web-0.web.demo.svc.cluster.local.
struct Node {
  const uint8_t* name = nullptr;  // full wire name, lower case (in the service's bytes)
  const RrSet* sets = nullptr;    // [sets, sets + setCount), in creation order (A before AAAA)
  const Extra* extras = nullptr;  // an SRV set's additional records
  uint32_t extraCount = 0;
  uint8_t nameLen = 0;
  uint8_t setCount = 0;           // 0: an empty non-terminal (kNoData for every type)

  std::string_view nameWire() const noexcept {
    return {reinterpret_cast<const char*>(name), nameLen};
  }
};

// One address a service names, and its PTR set (the target name, in that service's bytes;
// or, in a MergedPtr, the names of every service that uses the address).
struct PtrEntry {
  uint8_t family = 0;  // 4 or 16 bytes of `ip` used
  uint8_t ip[16] = {};
  RrSet set;
  std::string_view key() const noexcept {
    return {reinterpret_cast<const char*>(ip), family == 4 ? size_t{4} : size_t{16}};
  }
};

// Everything at or below <svc>.<ns>.svc.<zone>. Neither copied nor moved once built: the
// pointers inside (RrSet -> bytes/offsets/spreads, Node -> sets/extras, Extra -> sets) point
// into its own vectors, which are sized once (compile.cc) and never touched again.
struct CompiledService {
  CompiledService() = default;
  CompiledService(const CompiledService&) = delete;
  CompiledService& operator=(const CompiledService&) = delete;

  std::string modelKey;  // "ns/name"
  std::string nameWire;  // <svc>.<ns>.svc.<zone>
  uint8_t svcLabelLen = 0, nsLabelLen = 0;  // wire lengths of the first two labels
  bool exists = true;    // false: headless with no ready endpoint (spec 2.4.1: NXDOMAIN)
  size_t endpoints = 0;

  std::vector<uint8_t> bytes;       // records, then the names no SRV record already holds
  std::vector<uint32_t> offsets;    // record offsets of sets whose records differ in size
  std::vector<policy::SetSpread> spreads;
  std::vector<RrSet> sets;
  std::vector<Extra> extras;
  std::vector<Node> nodes;          // nodes[0]: the service name itself (if it exists)
  std::vector<PtrEntry> ptrs;       // the addresses it names, one entry each

  // "\3web\4demo": the key of the services table; "\4demo": of the namespaces table.
  std::string_view indexKey() const noexcept { return std::string_view(nameWire).substr(0, svcLabelLen + nsLabelLen); }
  std::string_view nsKey() const noexcept { return std::string_view(nameWire).substr(svcLabelLen, nsLabelLen); }
  bool owns(const PtrEntry* e) const noexcept {  // std::less: a total order on any pointers
    const std::less<const PtrEntry*> before;
    return !ptrs.empty() && !before(e, ptrs.data()) && before(e, ptrs.data() + ptrs.size());
  }
};

// The PTR set of an address named by several services: the targets sorted by wire bytes.
struct MergedPtr {
  PtrEntry entry;
  std::vector<const PtrEntry*> parts;  // the services' own entries (kept for re-merging)
  std::vector<uint8_t> bytes;          // the target names back to back
  std::vector<uint32_t> offsets;
};

// ---- Tables -------------------------------------------------------------------------------

// Heterogeneous lookup for the control-path maps: find() takes a string_view.
struct WireHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using WireMap = std::unordered_map<std::string, V, WireHash, std::equal_to<>>;

// A hash table split into kShards tables behind shared_ptrs, copy-on-write per shard: a copy
// of the whole thing copies kShards pointers, and an update then clones only the shards it
// writes to. Measured at 10k services / 100k endpoints: copying flat tables made one service
// update cost ~60 ms; sharded, a 10-endpoint service update costs well under 1 ms.
template <class V, size_t kShards>
class Sharded {
 public:
  Sharded() {
    for (auto& s : shards_) s = std::make_shared<WireMap<V>>();
    owned_.fill(true);
  }
  Sharded(const Sharded& o) : shards_(o.shards_) { owned_.fill(false); }
  Sharded& operator=(const Sharded&) = delete;

  const V* find(std::string_view key) const noexcept {
    const WireMap<V>& m = *shards_[shardOf(key)];
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }
  // Writers get a shard this object owns alone.
  V* findMutable(std::string_view key) {
    WireMap<V>& m = writable(key);
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }
  V& operator[](std::string_view key) { return writable(key)[std::string(key)]; }
  void erase(std::string_view key) {
    WireMap<V>& m = writable(key);
    if (auto it = m.find(key); it != m.end()) m.erase(it);
  }

 private:
  static size_t shardOf(std::string_view key) noexcept {
    // The top bits: the table inside the shard uses the hash modulo a prime bucket count.
    return (WireHash{}(key) >> 24) % kShards;
  }
  WireMap<V>& writable(std::string_view key) {
    const size_t i = shardOf(key);
    if (!owned_[i]) {
      shards_[i] = std::make_shared<WireMap<V>>(*shards_[i]);
      owned_[i] = true;
    }
    return *shards_[i];
  }

  std::array<std::shared_ptr<WireMap<V>>, kShards> shards_;  // never written once published
  std::array<bool, kShards> owned_;  // shards this (unpublished) copy may write to
};

// The data-path table: open addressing (linear probing, 16-byte slots of hash + pointer, at
// most 3/4 full), split like Sharded into kShards copy-on-write shards. The caller supplies
// the hash (dns::nameHash of the key bytes: the name tables reuse the hash the query parse
// computed) and a predicate that compares the full key, so the table stores no key bytes:
// each value points at its own. Hash 0 marks an empty slot (a real 0 is stored as 1).
template <class T, size_t kShardBits>
class HashShards {
  static_assert(std::is_pointer_v<T>);
  static constexpr size_t kShards = size_t{1} << kShardBits;
  struct Slot {
    uint64_t hash = 0;
    T value = nullptr;
  };
  // A power of two of slots (an empty shard has one empty slot: a probe needs no size check).
  struct Shard {
    std::vector<Slot> slots = std::vector<Slot>(1);
    size_t mask = 0;  // slots.size() - 1
  };

 public:
  HashShards() {
    for (auto& s : shards_) s = empty();
    owned_.fill(false);
  }
  HashShards(const HashShards& o) : shards_(o.shards_), counts_(o.counts_) { owned_.fill(false); }
  HashShards& operator=(const HashShards&) = delete;

  template <class Eq>
  T find(uint64_t h, Eq&& eq) const noexcept {
    h = norm(h);
    const Shard& s = *shards_[shardOf(h)];
    const Slot* slots = s.slots.data();
    for (size_t i = h & s.mask;; i = (i + 1) & s.mask) {
      const Slot& slot = slots[i];
      if (slot.hash == 0) return nullptr;  // never full: at most 3/4 of the slots are used
      if (slot.hash == h && eq(slot.value)) return slot.value;
    }
  }

  // Adds (h, v); the key must not be in the table.
  void insert(uint64_t h, T v) {
    h = norm(h);
    const size_t si = shardOf(h);
    place(writable(si, counts_[si] + 1), h, v);
    ++counts_[si];
  }

  // Removes the entry whose value satisfies eq; false if there is none.
  template <class Eq>
  bool erase(uint64_t h, Eq&& eq) {
    h = norm(h);
    const size_t si = shardOf(h);
    if (counts_[si] == 0) return false;
    std::vector<Slot>& s = writable(si, counts_[si]).slots;
    const size_t mask = s.size() - 1;
    size_t i = h & mask;
    for (;; i = (i + 1) & mask) {
      if (s[i].hash == 0) return false;
      if (s[i].hash == h && eq(s[i].value)) break;
    }
    // Backward-shift deletion: move up every later slot of the run that may live at i.
    for (size_t j = (i + 1) & mask; s[j].hash != 0; j = (j + 1) & mask) {
      const size_t home = s[j].hash & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        s[i] = s[j];
        i = j;
      }
    }
    s[i] = Slot{};
    --counts_[si];
    return true;
  }

  // Sizes every shard for `total` entries spread evenly (a full build, before inserting).
  void reserve(size_t total) {
    for (size_t i = 0; i < kShards; ++i) writable(i, total / kShards + total / (4 * kShards) + 1);
  }

  size_t size() const noexcept {
    size_t n = 0;
    for (size_t c : counts_) n += c;
    return n;
  }

 private:
  static uint64_t norm(uint64_t h) noexcept { return h == 0 ? 1 : h; }
  static size_t shardOf(uint64_t h) noexcept { return static_cast<size_t>(h >> (64 - kShardBits)); }
  static const std::shared_ptr<Shard>& empty() {
    static const std::shared_ptr<Shard> kEmpty = std::make_shared<Shard>();
    return kEmpty;
  }
  static void place(Shard& s, uint64_t h, T v) noexcept {
    size_t i = h & s.mask;
    while (s.slots[i].hash != 0) i = (i + 1) & s.mask;
    s.slots[i] = Slot{h, v};
  }
  // Shard i, owned by this copy and with room for `need` entries at most 3/4 full.
  Shard& writable(size_t i, size_t need) {
    const size_t cap = shards_[i]->slots.size();
    size_t want = cap < 8 ? 8 : cap;
    while (need * 4 > want * 3) want *= 2;
    if (!owned_[i] || want != cap) {
      auto grown = std::make_shared<Shard>();
      if (want == cap) {
        *grown = *shards_[i];
      } else {
        grown->slots.assign(want, Slot{});
        grown->mask = want - 1;
        for (const Slot& slot : shards_[i]->slots)
          if (slot.hash != 0) place(*grown, slot.hash, slot.value);
      }
      shards_[i] = std::move(grown);
      owned_[i] = true;
    }
    return *shards_[i];
  }

  std::array<std::shared_ptr<Shard>, kShards> shards_;  // never written once published
  std::array<uint32_t, kShards> counts_{};
  std::array<bool, kShards> owned_;
};

struct Snapshot::Impl {
  size_t zoneLabels = 0;
  std::shared_ptr<const std::string> versionBytes;  // versionTxt's record (shared by copies)
  RrSet versionTxt;
  HashShards<const Node*, 10> names;
  HashShards<const PtrEntry*, 10> reverse;
  Sharded<std::shared_ptr<const CompiledService>, 256> services;
  Sharded<uint32_t, 16> namespaces;
  Sharded<std::shared_ptr<const MergedPtr>, 64> merged;
};

// What compiling one service needs from the snapshot being built.
struct CompileCtx {
  const std::string& zoneWire;
  const ViewOptions* opts;
  std::string nodeZone;  // ViewOptions::nodeZone, or learned
  size_t* badAnnotations;
};

// The compiler (compile.cc, snapshot.cc). A friend of Snapshot so it can fill the private members.
struct SnapshotBuilder {
  using SliceList = std::vector<const EndpointSlice*>;

  // One service, or nullptr if it cannot be named (counted in *skipped). compile.cc.
  static std::shared_ptr<const CompiledService> compile(const Service& svc, const SliceList& slices,
                                                        const CompileCtx& ctx, size_t* skipped);
  // The zone of an endpoint on our node, the first found in slice order; "" if none.
  static std::string learnZone(const std::string& nodeName, const SliceList& slices);
  // "\3web\4demo" for "demo/web"; empty if it cannot be a name.
  static std::string indexKeyOf(const std::string& serviceKey);

  // snapshot.cc
  static void initCommon(Snapshot* s, const ViewOptions& opts, Snapshot::Impl* impl);
  static void setSoa(Snapshot* s, std::string rdata);
  static uint32_t nextSerial();
  static void addService(Snapshot::Impl* impl, std::shared_ptr<const CompiledService> cs);
  static std::vector<const PtrEntry*> ptrParts(const Snapshot::Impl& impl, std::string_view ip);
  static void addNames(Snapshot::Impl* impl, const CompiledService& cs);
  static void removeNames(Snapshot::Impl* impl, const CompiledService& cs);
  static void setPtr(Snapshot::Impl* impl, std::string_view ip, std::vector<const PtrEntry*> parts);
};

// The PTR set of several services' entries for one address (sorted by target, deduplicated).
std::shared_ptr<const MergedPtr> mergePtrs(std::vector<const PtrEntry*> parts);

}  // namespace hdnsd::cluster
