// The cluster view compiler (control path: allocates freely) and the lookup (data path:
// noexcept, no allocation). The structure is described in include/hdnsd/cluster/snapshot.h.
#include "hdnsd/cluster/snapshot.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "hdnsd/policy/annotations.h"
#include "hdnsd/policy/rng.h"
#include "hdnsd/util/check.h"
#include "hdnsd/util/log.h"

namespace hdnsd::cluster {

namespace {

// Heterogeneous lookup: find() takes a string_view into the question's wire bytes.
struct WireHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using WireMap = std::unordered_map<std::string, V, WireHash, std::equal_to<>>;

// Spec 2.1 / deprecated annotation still honoured by CoreDNS and kube-dns.
constexpr const char* kTolerateUnreadyAnnotation =
    "service.alpha.kubernetes.io/tolerate-unready-endpoints";

constexpr std::string_view kInAddrArpa{"\7in-addr\4arpa\0", 14};
constexpr std::string_view kIp6Arpa{"\3ip6\4arpa\0", 10};

// ---- Control-path helpers: wire names -------------------------------------------------------

char lowerChar(char c) { return static_cast<char>(dns::lowerAscii(static_cast<uint8_t>(c))); }

// One wire label ("\5web-0") for a DNS label text, lower-cased; empty if it cannot be one.
// Kubernetes names are RFC 1123 labels already; we only refuse what would break the wire
// form (empty, > 63 bytes, a dot that would silently make two labels).
std::string wireLabel(std::string_view text) {
  if (text.empty() || text.size() > dns::kMaxLabel || text.find('.') != std::string_view::npos)
    return {};
  std::string out(1, static_cast<char>(text.size()));
  for (char c : text) out.push_back(lowerChar(c));
  return out;
}

// The dashed form of an address used as the generated hostname of an endpoint without one
// (and in pod names): 10.3.0.1 -> "10-3-0-1"; IPv6: the RFC 5952 text with ':' -> '-', as
// CoreDNS does ("fd00::1" -> "fd00--1").
std::string dashedIp(const IpAddr& ip) {
  std::string t = ip.text();
  std::replace(t.begin(), t.end(), '.', '-');
  std::replace(t.begin(), t.end(), ':', '-');
  return t;
}

// A stable 64-bit id (never 0) for spreading: endpoints' rendezvous ids, counter keys.
uint64_t endpointId(std::string_view bytes) {
  return policy::mix64(std::hash<std::string_view>{}(bytes)) | 1;
}

std::string ipKey(const IpAddr& ip) {
  return std::string(reinterpret_cast<const char*>(ip.bytes), ip.size());
}

void appendU16(std::string* s, uint16_t v) {
  s->push_back(static_cast<char>(v >> 8));
  s->push_back(static_cast<char>(v & 0xFF));
}
void appendU32(std::string* s, uint32_t v) {
  appendU16(s, static_cast<uint16_t>(v >> 16));
  appendU16(s, static_cast<uint16_t>(v & 0xFFFF));
}

const char* protoLabel(Protocol p) {
  switch (p) {
    case Protocol::kTcp: return "_tcp";
    case Protocol::kUdp: return "_udp";
    case Protocol::kSctp: return "_sctp";
  }
  return "_tcp";
}

Rdata addressRdata(const IpAddr& ip) {
  return {std::string(reinterpret_cast<const char*>(ip.bytes), ip.size()), dns::RdataKind::kOpaque};
}

// RFC 2782: priority, weight, port, then the target, never compressed.
Rdata srvRdata(uint16_t priority, uint16_t weight, uint16_t port, const std::string& targetWire) {
  Rdata r;
  appendU16(&r.bytes, priority);
  appendU16(&r.bytes, weight);
  appendU16(&r.bytes, port);
  r.bytes += targetWire;
  r.kind = dns::RdataKind::kOpaque;
  return r;
}

// Counts labels of a valid wire name.
size_t countLabels(std::string_view wire) {
  size_t n = 0, pos = 0;
  while (pos < wire.size() && wire[pos] != 0) {
    pos += 1 + static_cast<uint8_t>(wire[pos]);
    ++n;
  }
  return n;
}

}  // namespace

// ---- Compiled objects ----------------------------------------------------------------------

// One RrSet at a name, with the additional records that go with it (SRV targets' addresses).
struct CompiledSet {
  RrSet rrset;
  std::vector<Extra> extras;  // points into the same CompiledService
};

struct Node {
  std::vector<CompiledSet> sets;  // empty: an empty non-terminal (kNoData for every type)
  CompiledSet* find(uint16_t type) {
    for (auto& s : sets)
      if (s.rrset.type == type) return &s;
    return nullptr;
  }
  CompiledSet& get(uint16_t type) {
    if (auto* s = find(type)) return *s;
    sets.push_back({});
    sets.back().rrset.type = type;
    return sets.back();
  }
};

// Everything at or below <svc>.<ns>.svc.<zone>. Neither copied nor moved once built: Extras
// hold pointers to RrSets inside `nodes` (unordered_map nodes never move; the `sets` vectors
// are not touched after the pointers are taken).
struct CompiledService {
  CompiledService() = default;
  CompiledService(const CompiledService&) = delete;
  CompiledService& operator=(const CompiledService&) = delete;

  std::string modelKey;   // "ns/name"
  std::string indexKey;   // "\3web\4demo"
  std::string nsKey;      // "\4demo"
  std::string nameWire;   // <svc>.<ns>.svc.<zone>
  bool exists = true;     // false: headless with no ready endpoint (spec 2.4.1: NXDOMAIN)
  WireMap<Node> nodes;    // key: the labels left of nameWire; "" is the service name itself
  std::vector<std::pair<std::string, std::string>> ptrs;  // (address bytes, PTR target wire)
  size_t endpoints = 0;

  Lookup lookup(std::string_view prefix, uint16_t qtype) const noexcept {
    Lookup r;
    if (!exists) {
      r.kind = Lookup::Kind::kNxDomain;
      return r;
    }
    auto it = nodes.find(prefix);
    if (it == nodes.end()) {
      r.kind = Lookup::Kind::kNxDomain;
      return r;
    }
    const Node& n = it->second;
    const CompiledSet* hit = nullptr;
    for (const auto& s : n.sets) {
      // A CNAME owns its name: it answers every type (RFC 1034 3.6.2); the caller does not chase.
      if (s.rrset.type == qtype || s.rrset.type == dns::kTypeCNAME ||
          (qtype == dns::kTypeANY && hit == nullptr)) {
        hit = &s;
        if (s.rrset.type == qtype || s.rrset.type == dns::kTypeCNAME) break;
      }
    }
    if (hit == nullptr) {
      r.kind = Lookup::Kind::kNoData;
      return r;
    }
    r.kind = Lookup::Kind::kAnswer;
    r.answer = &hit->rrset;
    r.additional = hit->extras;
    return r;
  }
};

// A hash table split into kShards tables behind shared_ptrs, copy-on-write per shard: a copy
// of the whole thing copies kShards pointers, and an update then clones only the shards it
// writes to. Measured at 10k services / 100k endpoints: copying the flat tables made one
// service update cost ~60 ms; sharded, a 10-endpoint service update costs ~0.5 ms, mostly
// cloning the reverse shards its addresses fall into (~100 entries each at 1024 shards).
template <class V, size_t kShards>
class Sharded {
 public:

  Sharded() {
    for (auto& s : shards_) s = std::make_shared<WireMap<V>>();
    owned_.fill(true);
  }
  Sharded(const Sharded& o) : shards_(o.shards_) { owned_.fill(false); }
  Sharded& operator=(const Sharded&) = delete;

  // Data path.
  const V* find(std::string_view key) const noexcept {
    const WireMap<V>& m = *shards_[shardOf(key)];
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }

  // Control path: writers get a shard this object owns alone.
  V* findMutable(std::string_view key) {
    WireMap<V>& m = writable(key);
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }
  V& operator[](const std::string& key) { return writable(key)[key]; }
  void erase(std::string_view key) {
    WireMap<V>& m = writable(key);
    if (auto it = m.find(key); it != m.end()) m.erase(it);
  }
  void reserve(size_t n) {
    for (size_t i = 0; i < kShards; ++i)
      if (owned_[i]) shards_[i]->reserve(n / kShards + 1);
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

struct Snapshot::Impl {
  size_t zoneLabels = 0;
  RrSet versionTxt;
  Sharded<std::shared_ptr<const CompiledService>, 256> services;
  Sharded<uint32_t, 16> namespaces;
  Sharded<std::shared_ptr<const RrSet>, 1024> reverse;  // the largest: one entry per address
};

// The compiler. A friend of Snapshot so it can fill the private members.
struct SnapshotBuilder {
  using SliceList = std::vector<const EndpointSlice*>;

  // Per-address view of a headless service after merging its slices.
  struct Merged {
    bool ready = false;
    std::string hostLabel;  // wire label of the endpoint hostname, or empty
    std::set<std::tuple<std::string, Protocol, uint16_t>> ports;  // (name, proto, port), named
    const Endpoint* ep = nullptr;  // a ready copy if any: node, zone, pod and hints for spreading
  };
  // One hostname (or generated name) under a headless service.
  struct Target {
    std::vector<IpAddr> ips;
    std::set<std::tuple<std::string, Protocol, uint16_t>> ports;
  };

  // What every service's compile needs from the snapshot being built.
  struct CompileCtx {
    const std::string& zoneWire;
    const ViewOptions* opts;
    std::string nodeZone;  // ViewOptions::nodeZone, or learned
    size_t* badAnnotations;
  };

  // The zone of an endpoint on our node, the first found in slice order; "" if none.
  static std::string learnZone(const std::string& nodeName, const SliceList& slices) {
    if (nodeName.empty()) return {};
    for (const EndpointSlice* sl : slices)
      for (const auto& ep : sl->endpoints)
        if (ep.nodeName == nodeName && !ep.zone.empty()) return ep.zone;
    return {};
  }

  static std::shared_ptr<CompiledService> compile(const Service& svc, const SliceList& slices,
                                                  const CompileCtx& ctx, size_t* skipped) {
    const std::string& zoneWire = ctx.zoneWire;
    const std::string svcLabel = wireLabel(svc.name), nsLabel = wireLabel(svc.ns);
    if (svcLabel.empty() || nsLabel.empty()) {
      ++*skipped;
      return nullptr;
    }
    auto cs = std::make_shared<CompiledService>();
    cs->modelKey = objectKey(svc.ns, svc.name);
    cs->indexKey = svcLabel + nsLabel;
    cs->nsKey = nsLabel;
    cs->nameWire = svcLabel + nsLabel + std::string("\3svc", 4) + zoneWire;
    if (cs->nameWire.size() > dns::kMaxNameWire) {
      ++*skipped;
      return nullptr;
    }
    if (svc.type == ServiceType::kExternalName) {
      Rdata target;
      if (svc.externalName.empty() || !dns::textToWire(svc.externalName, &target.bytes) ||
          target.bytes.size() <= 1) {
        ++*skipped;  // nothing to point at: the name does not exist
        return nullptr;
      }
      target.kind = dns::RdataKind::kName;
      cs->nodes[""].get(dns::kTypeCNAME).rrset.rdatas.push_back(std::move(target));
      return cs;
    }
    if (svc.headless) {
      compileHeadless(svc, slices, ctx, cs.get());
    } else {
      compileClusterIp(svc, cs.get());
    }
    return cs;
  }

  // Spec 2.3: A/AAAA for the cluster IPs, SRV per named service port, PTR per cluster IP.
  static void compileClusterIp(const Service& svc, CompiledService* cs) {
    std::vector<IpAddr> ips = svc.clusterIPs;
    std::sort(ips.begin(), ips.end());
    ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
    Node& self = cs->nodes[""];
    for (const auto& ip : ips) {
      if (ip.family != 4 && ip.family != 6) continue;
      self.get(ip.family == 4 ? dns::kTypeA : dns::kTypeAAAA).rrset.rdatas.push_back(addressRdata(ip));
      cs->ptrs.emplace_back(ipKey(ip), cs->nameWire);
    }
    std::vector<CompiledSet*> srvSets;
    for (const auto& p : svc.ports) {
      const std::string portLabel = p.name.empty() ? "" : wireLabel("_" + p.name);
      if (portLabel.empty() || p.port == 0) continue;  // unnamed: no SRV (spec 2.3.2)
      const std::string protoKey = wireLabel(protoLabel(p.protocol));
      if (portLabel.size() + protoKey.size() + cs->nameWire.size() > dns::kMaxNameWire) continue;
      cs->nodes[protoKey];  // the empty non-terminal _<proto>
      CompiledSet& set = cs->nodes[portLabel + protoKey].get(dns::kTypeSRV);
      set.rrset.rdatas.push_back(srvRdata(0, 100, p.port, cs->nameWire));
      srvSets.push_back(&set);
    }
    // All nodes exist now; pointers into them stay valid.
    const Node& selfNode = cs->nodes[""];
    for (CompiledSet* set : srvSets) {
      if (!set->extras.empty()) continue;  // two ports with the same name: one set
      for (const auto& s : selfNode.sets) set->extras.push_back({cs->nameWire, &s.rrset});
    }
  }

  // Spec 2.4: records for the ready endpoints of all slices of the service, merged.
  static void compileHeadless(const Service& svc, const SliceList& slices, const CompileCtx& ctx,
                              CompiledService* cs) {
    bool tolerate = svc.publishNotReadyAddresses;
    if (auto it = svc.annotations.find(kTolerateUnreadyAnnotation);
        it != svc.annotations.end() && it->second == "true")
      tolerate = true;

    // Merge: the same address may appear in several slices (e.g. while the controller moves
    // it); it is ready if any copy is, and the first hostname wins.
    std::map<IpAddr, Merged> merged;
    auto mergeAll = [&](auto&& isReady) {
      merged.clear();
      size_t ready = 0;
      for (const EndpointSlice* sl : slices) {
        if (sl->addressType == AddressType::kFQDN) continue;
        for (const auto& ep : sl->endpoints) {
          const bool epReady = isReady(ep);
          const std::string host = wireLabel(ep.hostname);
          for (const auto& ip : ep.addresses) {
            if (ip.family != 4 && ip.family != 6) continue;
            Merged& m = merged[ip];
            if (m.hostLabel.empty() && !host.empty() && (epReady || !m.ready)) m.hostLabel = host;
            if (m.ep == nullptr || (epReady && !m.ready)) m.ep = &ep;  // spreading facts
            if (!epReady) continue;
            if (!m.ready) ++ready;
            m.ready = true;
            for (const auto& p : sl->ports) {
              if (p.name.empty() || p.port == 0) continue;
              m.ports.emplace(p.name, p.protocol, p.port);
            }
          }
        }
      }
      return ready;
    };
    // discovery.k8s.io/v1: "nil should be interpreted as ready".
    const size_t readyCount = mergeAll([&](const Endpoint& ep) { return tolerate || ep.ready.value_or(true); });
    if (readyCount == 0 && ctx.opts->terminatingFallback) {
      // kube-proxy's fallback during a rollout: no ready endpoint, but some still serving
      // while terminating (KEP-1669). Off by default: the specification says NXDOMAIN.
      mergeAll([](const Endpoint& ep) {
        return ep.serving.value_or(false) && ep.terminating.value_or(false);
      });
    }

    // Spreading facts per address: the service's annotations, our node and zone.
    const policy::ServiceSpread spread = policy::parseServiceAnnotations(svc.annotations);
    if (!spread.errors.empty()) {
      ++*ctx.badAnnotations;
      for (const auto& e : spread.errors)
        LOG_WARN("service %s: %s (ignored)", cs->modelKey.c_str(), e.c_str());
    }
    const policy::Locality here{ctx.opts->nodeName, ctx.nodeZone};
    const bool topology = spread.kind.value_or(ctx.opts->policy) == policy::Kind::kTopology;
    struct Facts {
      uint32_t weight = 1;
      uint8_t tier = policy::kTierOther;
    };
    auto factsOf = [&](const IpAddr& ip, const Merged& m) {
      Facts f;
      const std::string ipText = ip.text();
      policy::EndpointFacts e{ipText, {}, {}, {}, {}, nullptr, nullptr};
      if (m.ep != nullptr) {
        e = {ipText, m.ep->podName, m.ep->hostname, m.ep->nodeName, m.ep->zone, &m.ep->forZones, &m.ep->forNodes};
      }
      f.weight = spread.weightOf(e);
      f.tier = policy::tierOf(e, here);
      return f;
    };
    // One record's spreading data, appended in the same order as its RDATA.
    auto addSpread = [&](policy::SetSpread& s, const Facts& f, uint64_t id) {
      s.invWeights.push_back(f.weight == 0 ? std::numeric_limits<float>::infinity() : 1.0f / float(f.weight));
      s.tiers.push_back(f.tier);
      s.ids.push_back(id);
    };

    // Targets: hostname, or the generated (dashed) name for endpoints without one.
    std::map<std::string, Target> targets;  // by wire label: a stable order
    Node& self = cs->nodes[""];
    for (const auto& [ip, m] : merged) {
      if (!m.ready) continue;
      CompiledSet& set = self.get(ip.family == 4 ? dns::kTypeA : dns::kTypeAAAA);
      set.rrset.rdatas.push_back(addressRdata(ip));
      addSpread(set.rrset.spread, factsOf(ip, m), endpointId(ipKey(ip)));
      ++cs->endpoints;
      std::string label = m.hostLabel.empty() ? wireLabel(dashedIp(ip)) : m.hostLabel;
      if (label.size() + cs->nameWire.size() > dns::kMaxNameWire) continue;
      Target& t = targets[label];
      t.ips.push_back(ip);
      t.ports.insert(m.ports.begin(), m.ports.end());
      cs->ptrs.emplace_back(ipKey(ip), label + cs->nameWire);
    }
    if (cs->endpoints == 0) {
      cs->exists = false;  // spec 2.4.1: NXDOMAIN, and so is everything below it
      cs->nodes.clear();
      return;
    }
    for (const auto& [label, t] : targets) {
      Node& n = cs->nodes[label];
      for (const auto& ip : t.ips) {
        CompiledSet& set = n.get(ip.family == 4 ? dns::kTypeA : dns::kTypeAAAA);
        set.rrset.rdatas.push_back(addressRdata(ip));
        addSpread(set.rrset.spread, factsOf(ip, merged.at(ip)), endpointId(ipKey(ip)));
      }
    }

    // SRV: one per (ready target, named port), grouped by _<port>._<proto>.
    std::map<std::string, std::vector<std::pair<std::string, uint16_t>>> srv;  // node key -> (target, port)
    for (const auto& [label, t] : targets) {
      for (const auto& [name, proto, port] : t.ports) {
        const std::string key = wireLabel("_" + name) + wireLabel(protoLabel(proto));
        if (key.size() < 4 || key.size() + cs->nameWire.size() > dns::kMaxNameWire) continue;
        srv[key].emplace_back(label, port);
      }
    }
    for (auto& [key, entries] : srv) {
      cs->nodes[key.substr(1 + static_cast<uint8_t>(key[0]))];  // the empty non-terminal _<proto>
      // Without weights: equal weights that add up to about 100 (RFC 2782: 0 means "rarely";
      // keep it >= 1). With hdnsd.io/weights: the endpoint's weight. Priority: the topology
      // tier when the topology policy applies (RFC 2782: lower is tried first), else 0.
      const uint16_t even = static_cast<uint16_t>(std::max<size_t>(1, 100 / entries.size()));
      CompiledSet& set = cs->nodes[key].get(dns::kTypeSRV);
      for (const auto& [label, port] : entries) {
        const Target& t = targets.at(label);
        const Facts f = factsOf(t.ips.front(), merged.at(t.ips.front()));
        const uint16_t weight = spread.hasWeights ? static_cast<uint16_t>(f.weight) : even;
        const uint16_t priority = topology ? f.tier : 0;
        set.rrset.rdatas.push_back(srvRdata(priority, weight, port, label + cs->nameWire));
        std::string idKey = label;
        appendU16(&idKey, port);
        addSpread(set.rrset.spread, f, endpointId(idKey));
      }
    }
    // Additional section: the targets' addresses (all nodes exist now), and which of them go
    // with which SRV record, so an answer cut to --max-answers carries only its own.
    for (auto& [key, entries] : srv) {
      CompiledSet* set = cs->nodes[key].find(dns::kTypeSRV);
      const std::string* last = nullptr;
      for (const auto& [label, port] : entries) {
        const auto first = static_cast<uint32_t>(set->extras.size());
        if (last == nullptr || *last != label) {  // same target, another port: listed once
          last = &label;
          const Node& tn = cs->nodes.find(label)->second;
          for (const auto& s : tn.sets) set->extras.push_back({label + cs->nameWire, &s.rrset});
        }
        set->rrset.spread.extras.emplace_back(first, static_cast<uint32_t>(set->extras.size()) - first);
      }
    }

    // Finish every set's spreading data: managed, the service's overrides, the counter key;
    // drop per-record vectors that carry nothing (all weight 1, no topology known).
    for (auto& [prefix, node] : cs->nodes) {
      for (auto& cset : node.sets) {
        policy::SetSpread& s = cset.rrset.spread;
        s.managed = true;
        s.kind = spread.kind;
        s.maxAnswers = spread.maxAnswers;
        std::string keyText = prefix + cs->nameWire;
        appendU16(&keyText, cset.rrset.type);
        s.key = endpointId(keyText);
        if (!spread.hasWeights) s.invWeights.clear();
        if (!here.known()) s.tiers.clear();
        s.invWeights.shrink_to_fit();
        s.tiers.shrink_to_fit();
        s.ids.shrink_to_fit();
      }
    }
  }

  static void groupSlices(const ClusterModel& model, std::unordered_map<std::string, SliceList>* out) {
    for (const auto& [key, sl] : model.slices()) (*out)[objectKey(sl.ns, sl.serviceName)].push_back(&sl);
  }

  // Re-merges the PTR set of one address from the services that list it.
  static void remergePtr(Snapshot::Impl* impl, const std::string& ip,
                         const std::vector<std::string>& targets) {
    if (targets.empty()) {
      impl->reverse.erase(ip);
      return;
    }
    auto set = std::make_shared<RrSet>();
    set->type = dns::kTypePTR;
    for (const auto& t : targets) set->rdatas.push_back({t, dns::RdataKind::kName});
    impl->reverse[ip] = std::move(set);
  }

  static void addService(Snapshot::Impl* impl, std::shared_ptr<const CompiledService> cs) {
    if (cs->exists) ++impl->namespaces[cs->nsKey];
    impl->services[cs->indexKey] = std::move(cs);
  }

  static void initCommon(Snapshot* s, const ViewOptions& opts, Snapshot::Impl* impl) {
    s->opts_ = opts;
    s->ttl_s_ = opts.ttl_s;
    if (!dns::textToWire(opts.zone, &s->zoneWire_)) {
      // The config validates the zone; never serve garbage if it did not.
      s->zoneWire_.assign("\7cluster\5local\0", 15);
    }
    impl->zoneLabels = countLabels(s->zoneWire_);
    s->serial_ = opts.serial != 0 ? opts.serial : nextSerial();

    // SOA: ns.dns.<zone> hostmaster.<zone> serial refresh retry expire minimum.
    Rdata soa;
    soa.kind = dns::RdataKind::kSoa;
    soa.bytes = std::string("\2ns\3dns", 7) + s->zoneWire_ + std::string("\12hostmaster", 11) +
                s->zoneWire_;
    for (uint32_t v : {s->serial_, kSoaRefresh_s, kSoaRetry_s, kSoaExpire_s, opts.ttl_s})
      appendU32(&soa.bytes, v);
    s->soa_.type = dns::kTypeSOA;
    s->soa_.rdatas = {std::move(soa)};

    // TXT RDATA: one <character-string> (RFC 1035 3.3.14): length byte, then the text.
    const std::string_view v = kSchemaVersion;
    impl->versionTxt.type = dns::kTypeTXT;
    impl->versionTxt.rdatas = {{std::string(1, static_cast<char>(v.size())) + std::string(v),
                                dns::RdataKind::kOpaque}};
  }

  // Seconds since the epoch, but strictly increasing within the process so that two
  // snapshots built within one second still differ (RFC 1982 serial arithmetic).
  static uint32_t nextSerial() {
    static std::atomic<uint32_t> last{0};
    const auto now = static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::now().time_since_epoch()).count());
    uint32_t prev = last.load();
    uint32_t next;
    do {
      next = std::max(now, prev + 1);
    } while (!last.compare_exchange_weak(prev, next));
    return next;
  }
};

std::shared_ptr<const Snapshot> Snapshot::build(const ClusterModel& model, const ViewOptions& opts) {
  auto snap = std::shared_ptr<Snapshot>(new Snapshot());
  auto impl = std::make_shared<Impl>();
  SnapshotBuilder::initCommon(snap.get(), opts, impl.get());

  std::unordered_map<std::string, SnapshotBuilder::SliceList> slicesBySvc;
  SnapshotBuilder::groupSlices(model, &slicesBySvc);
  static const SnapshotBuilder::SliceList kNoSlices;

  std::unordered_map<std::string, std::vector<std::string>> ptrs;  // address -> targets
  snap->nodeZone_ = opts.nodeZone;
  if (snap->nodeZone_.empty() && !opts.nodeName.empty()) {
    SnapshotBuilder::SliceList all;
    for (const auto& [k, sl] : model.slices()) all.push_back(&sl);
    snap->nodeZone_ = SnapshotBuilder::learnZone(opts.nodeName, all);
  }
  const SnapshotBuilder::CompileCtx ctx{snap->zoneWire_, &snap->opts_, snap->nodeZone_, &snap->badAnnotations_};
  impl->services.reserve(model.services.size());
  for (const auto& [key, svc] : model.services) {
    auto it = slicesBySvc.find(objectKey(svc.ns, svc.name));
    const auto& slices = it == slicesBySvc.end() ? kNoSlices : it->second;
    std::shared_ptr<CompiledService> cs =
        SnapshotBuilder::compile(svc, slices, ctx, &snap->skipped_);
    if (it != slicesBySvc.end()) {
      for (const auto* sl : it->second)
        if (sl->addressType == AddressType::kFQDN) ++snap->skipped_;
      slicesBySvc.erase(it);  // what remains has no service
    }
    if (!cs) continue;
    ++snap->serviceCount_;
    snap->endpointCount_ += cs->endpoints;
    for (const auto& [ip, target] : cs->ptrs) ptrs[ip].push_back(target);
    SnapshotBuilder::addService(impl.get(), std::move(cs));
  }
  for (const auto& [k, slices] : slicesBySvc) snap->skipped_ += slices.size();
  impl->reverse.reserve(ptrs.size());
  for (auto& [ip, targets] : ptrs) {
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    SnapshotBuilder::remergePtr(impl.get(), ip, targets);
  }
  snap->impl_ = std::move(impl);
  return snap;
}

std::shared_ptr<const Snapshot> Snapshot::rebuildService(const Snapshot& prev,
                                                         const ClusterModel& model,
                                                         const std::string& serviceKey) {
  auto snap = std::shared_ptr<Snapshot>(new Snapshot());
  auto impl = std::make_shared<Impl>(*prev.impl_);  // copies pointer tables only
  snap->zoneWire_ = prev.zoneWire_;
  snap->opts_ = prev.opts_;
  snap->ttl_s_ = prev.ttl_s_;
  snap->serviceCount_ = prev.serviceCount_;
  snap->endpointCount_ = prev.endpointCount_;
  snap->skipped_ = prev.skipped_;  // approximate after an update; exact after build()
  snap->badAnnotations_ = prev.badAnnotations_;  // likewise
  snap->nodeZone_ = prev.nodeZone_;
  // A new serial: the zone content changed (unless the caller pinned one).
  snap->serial_ = prev.opts_.serial != 0 ? prev.opts_.serial : SnapshotBuilder::nextSerial();
  snap->soa_ = prev.soa_;
  {
    std::string& b = snap->soa_.rdatas[0].bytes;
    for (int i = 0; i < 4; ++i)
      b[b.size() - 20 + i] = static_cast<char>(snap->serial_ >> (24 - 8 * i));
  }

  std::set<std::string> touched;  // addresses whose PTR set must be re-merged
  // Withdraw the old version, found by its model key's labels.
  std::shared_ptr<const CompiledService> old;
  if (auto slash = serviceKey.find('/'); slash != std::string::npos) {
    const std::string idx =
        wireLabel(serviceKey.substr(slash + 1)) + wireLabel(serviceKey.substr(0, slash));
    if (auto* it = impl->services.find(idx)) {
      old = *it;
      impl->services.erase(idx);
    }
  }
  if (old) {
    --snap->serviceCount_;
    snap->endpointCount_ -= old->endpoints;
    if (old->exists) {
      uint32_t* count = impl->namespaces.findMutable(old->nsKey);
      if (count != nullptr && --*count == 0) impl->namespaces.erase(old->nsKey);
    }
    for (const auto& [ip, target] : old->ptrs) touched.insert(ip);
  }
  // Compile the new version, if the service still exists.
  std::shared_ptr<const CompiledService> fresh;
  if (auto it = model.services.find(serviceKey); it != model.services.end()) {
    const Service& svc = it->second;
    // The model's per-service index: cost in proportion to this service's slices.
    SnapshotBuilder::SliceList slices;
    for (const auto& key : model.sliceKeysOf(serviceKey))
      if (auto s = model.slices().find(key); s != model.slices().end()) slices.push_back(&s->second);
    if (snap->nodeZone_.empty()) snap->nodeZone_ = SnapshotBuilder::learnZone(snap->opts_.nodeName, slices);
    const SnapshotBuilder::CompileCtx ctx{snap->zoneWire_, &snap->opts_, snap->nodeZone_, &snap->badAnnotations_};
    fresh = SnapshotBuilder::compile(svc, slices, ctx, &snap->skipped_);
  }
  if (fresh) {
    ++snap->serviceCount_;
    snap->endpointCount_ += fresh->endpoints;
    for (const auto& [ip, target] : fresh->ptrs) touched.insert(ip);
    SnapshotBuilder::addService(impl.get(), fresh);
  }
  // Re-merge only the touched addresses: old PTR set minus the old service's targets, plus
  // the new service's targets.
  for (const auto& ip : touched) {
    std::vector<std::string> targets;
    if (const auto* set = impl->reverse.find(ip))
      for (const auto& r : (*set)->rdatas) targets.push_back(r.bytes);
    if (old)
      for (const auto& [oip, t] : old->ptrs)
        if (oip == ip) targets.erase(std::remove(targets.begin(), targets.end(), t), targets.end());
    if (fresh)
      for (const auto& [fip, t] : fresh->ptrs)
        if (fip == ip) targets.push_back(t);
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    SnapshotBuilder::remergePtr(impl.get(), ip, targets);
  }
  snap->impl_ = std::move(impl);
  return snap;
}

// ---- Data path ------------------------------------------------------------------------------

namespace {

// Parses a decimal octet label ("0".."255", no leading zero) into *v.
bool parseOctet(std::string_view l, uint8_t* v) noexcept {
  if (l.empty() || l.size() > 3 || (l.size() > 1 && l[0] == '0')) return false;
  unsigned x = 0;
  for (char c : l) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + static_cast<unsigned>(c - '0');
  }
  if (x > 255) return false;
  *v = static_cast<uint8_t>(x);
  return true;
}

int hexNibble(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "10-3-0-1" -> 4 bytes; false if it is not exactly that form.
bool parseDashedV4(std::string_view l, uint8_t out[4]) noexcept {
  size_t part = 0, start = 0;
  for (size_t i = 0; i <= l.size(); ++i) {
    if (i == l.size() || l[i] == '-') {
      if (part == 4 || !parseOctet(l.substr(start, i - start), &out[part])) return false;
      ++part;
      start = i + 1;
    }
  }
  return part == 4;
}

// Parses dash-separated groups of 1..4 hex digits ("fd00-10-96"; "" is no group) into
// groups[*n...]. False on an empty group or more than `max` groups in total.
bool parseGroups(std::string_view s, uint16_t* groups, size_t* n, size_t max) noexcept {
  if (s.empty()) return true;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] != '-') continue;
    const std::string_view g = s.substr(start, i - start);
    if (g.empty() || g.size() > 4 || *n == max) return false;
    unsigned v = 0;
    for (char c : g) {
      const int h = hexNibble(c);
      if (h < 0) return false;
      v = (v << 4) | static_cast<unsigned>(h);
    }
    groups[(*n)++] = static_cast<uint16_t>(v);
    start = i + 1;
  }
  return true;
}

// "fd00--1" -> 16 bytes: the dashed IPv6 text ('-' for ':', so "--" is "::"), RFC 4291 2.2
// forms without the embedded IPv4 tail (its dots would be separate labels anyway).
bool parseDashedV6(std::string_view l, uint8_t out[16]) noexcept {
  uint16_t head[8] = {}, tail[8] = {};
  size_t nh = 0, nt = 0;
  const size_t gap = l.find("--");
  if (gap == std::string_view::npos) {
    if (!parseGroups(l, head, &nh, 8) || nh != 8) return false;
  } else {
    const std::string_view right = l.substr(gap + 2);
    if (right.find("--") != std::string_view::npos) return false;  // two "::"
    if (!parseGroups(l.substr(0, gap), head, &nh, 7) || !parseGroups(right, tail, &nt, 7) ||
        nh + nt > 7)
      return false;
  }
  uint16_t full[8] = {};
  for (size_t k = 0; k < nh; ++k) full[k] = head[k];
  for (size_t k = 0; k < nt; ++k) full[8 - nt + k] = tail[k];
  for (size_t k = 0; k < 8; ++k) {
    out[2 * k] = static_cast<uint8_t>(full[k] >> 8);
    out[2 * k + 1] = static_cast<uint8_t>(full[k] & 0xFF);
  }
  return true;
}

}  // namespace

Lookup Snapshot::lookup(const dns::NameKey& qname, uint16_t qtype) const noexcept {
  Lookup r;  // kNotInZone
  if (!impl_) return r;
  const std::string_view w = qname.wire();
  // Label offsets, left to right (at most 127 labels fit in 255 bytes).
  std::array<uint8_t, 128> off;
  size_t n = 0, pos = 0;
  while (pos < w.size() && w[pos] != 0) {
    if (n == off.size()) return r;
    off[n++] = static_cast<uint8_t>(pos);
    pos += 1 + static_cast<uint8_t>(w[pos]);
  }
  if (pos + 1 != w.size()) return r;  // not a well-formed key: nothing of ours
  auto label = [&](size_t i) { return w.substr(off[i] + 1, static_cast<uint8_t>(w[off[i]])); };
  auto suffixFrom = [&](size_t i) { return i < n ? w.substr(off[i]) : w.substr(w.size() - 1); };

  const Impl& im = *impl_;
  if (n >= im.zoneLabels && suffixFrom(n - im.zoneLabels) == zoneWire_) {
    const size_t rel = n - im.zoneLabels;  // labels above the zone
    if (rel == 0) {  // the apex
      if (qtype == dns::kTypeSOA || qtype == dns::kTypeANY) {
        r.kind = Lookup::Kind::kAnswer;
        r.answer = &soa_;
      } else {
        r.kind = Lookup::Kind::kNoData;
      }
      return r;
    }
    const std::string_view top = label(rel - 1);
    r.kind = Lookup::Kind::kNxDomain;
    if (top == "svc") {
      if (rel == 1) {
        r.kind = Lookup::Kind::kNoData;
      } else if (rel == 2) {
        if (im.namespaces.find(w.substr(off[0], off[1] - off[0])) != nullptr)
          r.kind = Lookup::Kind::kNoData;
      } else {
        const auto* svc = im.services.find(w.substr(off[rel - 3], off[rel - 1] - off[rel - 3]));
        if (svc != nullptr) return (*svc)->lookup(w.substr(0, off[rel - 3]), qtype);
      }
    } else if (top == "pod") {
      // Spec 2.6 (CoreDNS "pods insecure"): any address, no check that a pod has it.
      if (rel <= 2) {
        r.kind = Lookup::Kind::kNoData;  // pod.<zone>, <ns>.pod.<zone>: empty non-terminals
      } else if (rel == 3) {
        const std::string_view l = label(0);
        if (parseDashedV4(l, r.synth)) {
          r.synthType = dns::kTypeA;
        } else if (parseDashedV6(l, r.synth)) {
          r.synthType = dns::kTypeAAAA;
        } else {
          std::memset(r.synth, 0, sizeof r.synth);
          return r;  // malformed: NXDOMAIN
        }
        r.kind = (qtype == r.synthType || qtype == dns::kTypeANY) ? Lookup::Kind::kSynthAddress
                                                                   : Lookup::Kind::kNoData;
      }
    } else if (rel == 1 && top == "dns-version") {
      if (qtype == dns::kTypeTXT || qtype == dns::kTypeANY) {
        r.kind = Lookup::Kind::kAnswer;
        r.answer = &im.versionTxt;
      } else {
        r.kind = Lookup::Kind::kNoData;
      }
    }
    return r;
  }

  // Reverse names: answered only for addresses in the view, only for PTR.
  if (qtype != dns::kTypePTR && qtype != dns::kTypeANY) return r;
  char key[16];
  size_t keyLen = 0;
  if (n == 6 && suffixFrom(4) == kInAddrArpa) {
    for (size_t i = 0; i < 4; ++i) {
      uint8_t b;
      if (!parseOctet(label(i), &b)) return r;
      key[3 - i] = static_cast<char>(b);
    }
    keyLen = 4;
  } else if (n == 34 && suffixFrom(32) == kIp6Arpa) {
    for (size_t i = 0; i < 32; ++i) {  // label 0 is the lowest nibble (RFC 3596 2.5)
      const std::string_view l = label(i);
      const int h = l.size() == 1 ? hexNibble(l[0]) : -1;
      if (h < 0) return r;
      char& b = key[15 - i / 2];
      b = (i % 2 == 0) ? static_cast<char>(h) : static_cast<char>(b | (h << 4));
    }
    keyLen = 16;
  } else {
    return r;
  }
  const auto* set = im.reverse.find(std::string_view(key, keyLen));
  if (set == nullptr) return r;
  r.kind = Lookup::Kind::kAnswer;
  r.answer = set->get();
  return r;
}

}  // namespace hdnsd::cluster
