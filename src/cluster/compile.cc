// Compiling one service (control path: allocates freely). First a draft with the records as
// strings, keyed like the names they belong to (the Kubernetes DNS rules live here), then
// freeze(): one byte arena with the names and the records' wire tails, and flat arrays that
// point into it (snapshot_impl.h). The draft is thrown away, so a compiled service costs a few
// allocations, not several per record.
#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "snapshot_impl.h"
#include "hdnsd/policy/annotations.h"
#include "hdnsd/policy/rng.h"
#include "hdnsd/util/log.h"

namespace hdnsd::cluster {

namespace {

// Spec 2.1 / deprecated annotation still honoured by CoreDNS and kube-dns.
constexpr const char* kTolerateUnreadyAnnotation =
    "service.alpha.kubernetes.io/tolerate-unready-endpoints";

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

const char* protoLabel(Protocol p) {
  switch (p) {
    case Protocol::kTcp: return "_tcp";
    case Protocol::kUdp: return "_udp";
    case Protocol::kSctp: return "_sctp";
  }
  return "_tcp";
}

// RFC 2782: priority, weight, port, then the target, never compressed.
std::string srvRdata(uint16_t priority, uint16_t weight, uint16_t port, const std::string& targetWire) {
  std::string r;
  appendU16(&r, priority);
  appendU16(&r, weight);
  appendU16(&r, port);
  r += targetWire;
  return r;
}

// ---- The draft: records as strings, names as map keys ---------------------------------------

struct DraftSet {
  uint16_t type = 0;
  dns::RdataKind kind = dns::RdataKind::kOpaque;
  std::vector<std::string> rdatas;
  policy::SetSpread spread;
  std::vector<std::pair<std::string, size_t>> extras;  // (node key, index of the set there)
};

struct DraftNode {
  std::vector<DraftSet> sets;  // empty: an empty non-terminal
  size_t index = 0, firstSet = 0;  // freeze(): this node's place in nodes / sets
  DraftSet* find(uint16_t type) {
    for (auto& s : sets)
      if (s.type == type) return &s;
    return nullptr;
  }
  DraftSet& get(uint16_t type) {
    if (auto* s = find(type)) return *s;
    sets.push_back({});
    sets.back().type = type;
    return sets.back();
  }
};

struct Draft {
  std::string nameWire;
  bool exists = true;
  size_t endpoints = 0;
  std::map<std::string, DraftNode> nodes;  // key: the labels left of nameWire; "" = the service
  std::vector<std::pair<IpAddr, std::string>> ptrs;  // (address, key of the node it names)
};

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

std::string addressRdata(const IpAddr& ip) { return ipKey(ip); }

// Spec 2.3: A/AAAA for the cluster IPs, SRV per named service port, PTR per cluster IP.
void draftClusterIp(const Service& svc, Draft* d) {
  std::vector<IpAddr> ips = svc.clusterIPs;
  std::sort(ips.begin(), ips.end());
  ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
  DraftNode& self = d->nodes[""];
  for (const auto& ip : ips) {
    if (ip.family != 4 && ip.family != 6) continue;
    self.get(ip.family == 4 ? dns::kTypeA : dns::kTypeAAAA).rdatas.push_back(addressRdata(ip));
    d->ptrs.emplace_back(ip, "");
  }
  std::vector<DraftSet*> srvSets;
  for (const auto& p : svc.ports) {
    const std::string portLabel = p.name.empty() ? "" : wireLabel("_" + p.name);
    if (portLabel.empty() || p.port == 0) continue;  // unnamed: no SRV (spec 2.3.2)
    const std::string protoKey = wireLabel(protoLabel(p.protocol));
    if (portLabel.size() + protoKey.size() + d->nameWire.size() > dns::kMaxNameWire) continue;
    d->nodes[protoKey];  // the empty non-terminal _<proto>
    DraftSet& set = d->nodes[portLabel + protoKey].get(dns::kTypeSRV);
    set.rdatas.push_back(srvRdata(0, 100, p.port, d->nameWire));
    srvSets.push_back(&set);  // std::map nodes never move
  }
  const DraftNode& selfNode = d->nodes[""];
  for (DraftSet* set : srvSets) {
    if (!set->extras.empty()) continue;  // two ports with the same name: one set
    for (size_t i = 0; i < selfNode.sets.size(); ++i) set->extras.emplace_back("", i);
  }
}

// Spec 2.4: records for the ready endpoints of all slices of the service, merged.
void draftHeadless(const Service& svc, const SnapshotBuilder::SliceList& slices, const CompileCtx& ctx,
                   const std::string& modelKey, Draft* d) {
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
    for (const auto& e : spread.errors) LOG_WARN("service %s: %s (ignored)", modelKey.c_str(), e.c_str());
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
  DraftNode& self = d->nodes[""];
  for (const auto& [ip, m] : merged) {
    if (!m.ready) continue;
    DraftSet& set = self.get(ip.family == 4 ? dns::kTypeA : dns::kTypeAAAA);
    set.rdatas.push_back(addressRdata(ip));
    addSpread(set.spread, factsOf(ip, m), endpointId(ipKey(ip)));
    ++d->endpoints;
    std::string label = m.hostLabel.empty() ? wireLabel(dashedIp(ip)) : m.hostLabel;
    if (label.size() + d->nameWire.size() > dns::kMaxNameWire) continue;
    Target& t = targets[label];
    t.ips.push_back(ip);
    t.ports.insert(m.ports.begin(), m.ports.end());
    d->ptrs.emplace_back(ip, label);
  }
  if (d->endpoints == 0) {
    d->exists = false;  // spec 2.4.1: NXDOMAIN, and so is everything below it
    d->nodes.clear();
    return;
  }
  for (const auto& [label, t] : targets) {
    DraftNode& n = d->nodes[label];
    for (const auto& ip : t.ips) {
      DraftSet& set = n.get(ip.family == 4 ? dns::kTypeA : dns::kTypeAAAA);
      set.rdatas.push_back(addressRdata(ip));
      addSpread(set.spread, factsOf(ip, merged.at(ip)), endpointId(ipKey(ip)));
    }
  }

  // SRV: one per (ready target, named port), grouped by _<port>._<proto>.
  std::map<std::string, std::vector<std::pair<std::string, uint16_t>>> srv;  // node key -> (target, port)
  for (const auto& [label, t] : targets) {
    for (const auto& [name, proto, port] : t.ports) {
      const std::string key = wireLabel("_" + name) + wireLabel(protoLabel(proto));
      if (key.size() < 4 || key.size() + d->nameWire.size() > dns::kMaxNameWire) continue;
      srv[key].emplace_back(label, port);
    }
  }
  for (auto& [key, entries] : srv) {
    d->nodes[key.substr(1 + static_cast<uint8_t>(key[0]))];  // the empty non-terminal _<proto>
    // Without weights: equal weights that add up to about 100 (RFC 2782: 0 means "rarely";
    // keep it >= 1). With hdnsd.io/weights: the endpoint's weight. Priority: the topology
    // tier when the topology policy applies (RFC 2782: lower is tried first), else 0.
    const uint16_t even = static_cast<uint16_t>(std::max<size_t>(1, 100 / entries.size()));
    DraftSet& set = d->nodes[key].get(dns::kTypeSRV);
    for (const auto& [label, port] : entries) {
      const Target& t = targets.at(label);
      const Facts f = factsOf(t.ips.front(), merged.at(t.ips.front()));
      const uint16_t weight = spread.hasWeights ? static_cast<uint16_t>(f.weight) : even;
      const uint16_t priority = topology ? f.tier : 0;
      set.rdatas.push_back(srvRdata(priority, weight, port, label + d->nameWire));
      std::string idKey = label;
      appendU16(&idKey, port);
      addSpread(set.spread, f, endpointId(idKey));
    }
  }
  // Additional section: the targets' addresses (all nodes exist now), and which of them go
  // with which SRV record, so an answer cut to --max-answers carries only its own.
  for (auto& [key, entries] : srv) {
    DraftSet* set = d->nodes[key].find(dns::kTypeSRV);
    const std::string* last = nullptr;
    for (const auto& [label, port] : entries) {
      const auto first = static_cast<uint32_t>(set->extras.size());
      if (last == nullptr || *last != label) {  // same target, another port: listed once
        last = &label;
        const DraftNode& tn = d->nodes.find(label)->second;
        for (size_t i = 0; i < tn.sets.size(); ++i) set->extras.emplace_back(label, i);
      }
      set->spread.extras.emplace_back(first, static_cast<uint32_t>(set->extras.size()) - first);
    }
  }

  // Finish every set's spreading data: managed, the service's overrides, the counter key;
  // drop per-record vectors that carry nothing (all weight 1, no topology known).
  for (auto& [prefix, node] : d->nodes) {
    for (auto& dset : node.sets) {
      policy::SetSpread& s = dset.spread;
      s.managed = true;
      s.kind = spread.kind;
      s.maxAnswers = spread.maxAnswers;
      std::string keyText = prefix + d->nameWire;
      appendU16(&keyText, dset.type);
      s.key = endpointId(keyText);
      if (!spread.hasWeights) s.invWeights.clear();
      if (!here.known()) s.tiers.clear();
    }
  }
}

// ---- freeze(): the draft into one arena ------------------------------------------------------

void putU16(std::vector<uint8_t>* b, uint16_t v) {
  b->push_back(static_cast<uint8_t>(v >> 8));
  b->push_back(static_cast<uint8_t>(v & 0xFF));
}

bool opaque(const DraftSet& s) { return s.kind == dns::RdataKind::kOpaque; }

constexpr size_t kSrvFixed = 6;  // SRV RDATA: priority, weight, port, then the target

// Where freeze() put one set's records.
struct SetLayout {
  uint32_t base = 0, count = 0;
  uint16_t stride = 0;
  int64_t offsets = -1;  // index into CompiledService::offsets, or -1: fixed stride
  int64_t spread = -1;   // index into CompiledService::spreads, or -1: unmanaged
};

// Appends one set's records to cs->bytes (wire tails for opaque types, RDATA for name types),
// their offsets if they differ in size, and its spreading data to cs->spreads. Notes where
// each SRV target name stands (srvTargets), so the node of that name can use those bytes.
SetLayout layOut(DraftSet& s, uint32_t ttl, CompiledService* cs, std::map<std::string_view, uint32_t>* srvTargets,
                 int64_t* single) {
  SetLayout l;
  l.base = static_cast<uint32_t>(cs->bytes.size());
  l.count = static_cast<uint32_t>(s.rdatas.size());
  std::vector<uint32_t> offs;
  bool sameSize = true;
  for (const auto& r : s.rdatas) {
    offs.push_back(static_cast<uint32_t>(cs->bytes.size()) - l.base);
    if (opaque(s)) {  // the wire tail: TYPE CLASS TTL RDLENGTH RDATA
      putU16(&cs->bytes, s.type);
      putU16(&cs->bytes, dns::kClassIN);
      putU16(&cs->bytes, static_cast<uint16_t>(ttl >> 16));
      putU16(&cs->bytes, static_cast<uint16_t>(ttl & 0xFFFF));
      putU16(&cs->bytes, static_cast<uint16_t>(r.size()));
    }
    if (s.type == dns::kTypeSRV && r.size() > kSrvFixed)
      srvTargets->emplace(std::string_view(r).substr(kSrvFixed), cs->bytes.size() + kSrvFixed);
    cs->bytes.insert(cs->bytes.end(), r.begin(), r.end());
    sameSize = sameSize && r.size() == s.rdatas.front().size();
  }
  offs.push_back(static_cast<uint32_t>(cs->bytes.size()) - l.base);
  if (sameSize) {
    l.stride = static_cast<uint16_t>(offs[1] - offs[0]);
  } else {
    l.offsets = static_cast<int64_t>(cs->offsets.size());
    cs->offsets.insert(cs->offsets.end(), offs.begin(), offs.end());
  }
  if (s.spread.managed && l.count > 1) {
    l.spread = static_cast<int64_t>(cs->spreads.size());
    s.spread.invWeights.shrink_to_fit();
    s.spread.tiers.shrink_to_fit();
    s.spread.ids.shrink_to_fit();
    s.spread.extras.shrink_to_fit();
    cs->spreads.push_back(std::move(s.spread));
  } else if (s.spread.managed) {
    // One record: every policy answers it as it is, so the per-record data, the counter key
    // and the extras ranges (one record: all of them) would never be read. One SetSpread
    // serves all such sets of the service.
    if (*single < 0) {
      *single = static_cast<int64_t>(cs->spreads.size());
      policy::SetSpread one;
      one.managed = true;
      one.kind = s.spread.kind;
      one.maxAnswers = s.spread.maxAnswers;
      cs->spreads.push_back(std::move(one));
    }
    l.spread = *single;
  }
  return l;
}

std::shared_ptr<const CompiledService> freeze(Draft& d, const CompileCtx& ctx, std::string modelKey,
                                              uint8_t svcLabelLen, uint8_t nsLabelLen) {
  auto cs = std::make_shared<CompiledService>();
  cs->modelKey = std::move(modelKey);
  cs->nameWire = d.nameWire;
  cs->svcLabelLen = svcLabelLen;
  cs->nsLabelLen = nsLabelLen;
  cs->exists = d.exists;
  cs->endpoints = d.endpoints;

  // Pass 1: bytes (records, then the names no SRV record holds), offsets and spreads: no
  // pointers yet.
  size_t setCount = 0, extraCount = 0, byteCount = 0;
  for (const auto& [key, node] : d.nodes) {
    byteCount += key.size() + d.nameWire.size();
    for (const auto& s : node.sets) {
      ++setCount;
      extraCount += s.extras.size();
      for (const auto& r : s.rdatas) byteCount += r.size() + (opaque(s) ? Records::kTailHeader : 0);
    }
  }
  cs->bytes.reserve(byteCount);
  std::vector<SetLayout> layouts;
  layouts.reserve(setCount);
  std::map<std::string_view, uint32_t> srvTargets;
  int64_t single = -1;
  size_t nodeIndex = 0;
  for (auto& [key, node] : d.nodes) {
    node.index = nodeIndex++;
    node.firstSet = layouts.size();
    for (auto& s : node.sets) layouts.push_back(layOut(s, ctx.opts->ttl_s, cs.get(), &srvTargets, &single));
  }
  std::vector<uint32_t> nameOffs;
  nameOffs.reserve(d.nodes.size());
  for (const auto& [key, node] : d.nodes) {
    const std::string name = key + d.nameWire;
    if (const auto it = srvTargets.find(name); it != srvTargets.end()) {
      nameOffs.push_back(it->second);
    } else {
      nameOffs.push_back(static_cast<uint32_t>(cs->bytes.size()));
      cs->bytes.insert(cs->bytes.end(), name.begin(), name.end());
    }
  }
  cs->bytes.shrink_to_fit();
  cs->offsets.shrink_to_fit();
  cs->spreads.shrink_to_fit();

  // Pass 2: the arrays that point into pass 1's (sized once: the pointers stay valid).
  const uint8_t* base = cs->bytes.data();
  auto nameView = [&](const DraftNode& n, size_t keyLen) {
    return std::string_view(reinterpret_cast<const char*>(base + nameOffs[n.index]), keyLen + d.nameWire.size());
  };
  cs->sets.reserve(setCount);
  for (const auto& [key, node] : d.nodes) {
    for (const auto& s : node.sets) {
      const SetLayout& l = layouts[cs->sets.size()];
      RrSet set;
      set.type = s.type;
      set.rdatas = Records(base + l.base, l.count, l.stride,
                           l.offsets < 0 ? nullptr : cs->offsets.data() + l.offsets,
                           opaque(s) ? Records::kTailHeader : 0, s.kind);
      if (l.spread >= 0) set.spreadData = &cs->spreads[static_cast<size_t>(l.spread)];
      cs->sets.push_back(set);
    }
  }
  cs->extras.reserve(extraCount);
  cs->nodes.reserve(d.nodes.size());
  for (const auto& [key, node] : d.nodes) {
    Node n;
    n.name = base + nameOffs[node.index];
    n.nameLen = static_cast<uint8_t>(key.size() + d.nameWire.size());
    n.sets = cs->sets.data() + node.firstSet;
    n.setCount = static_cast<uint8_t>(node.sets.size());
    n.extras = cs->extras.data() + cs->extras.size();
    for (const auto& s : node.sets) {
      for (const auto& [targetKey, setIndex] : s.extras) {
        const auto it = d.nodes.find(targetKey);
        cs->extras.push_back({nameView(it->second, targetKey.size()),
                              &cs->sets[it->second.firstSet + setIndex]});
      }
    }
    n.extraCount = static_cast<uint32_t>(cs->extras.data() + cs->extras.size() - n.extras);
    cs->nodes.push_back(n);
  }
  cs->ptrs.reserve(d.ptrs.size());
  for (const auto& [ip, key] : d.ptrs) {
    const DraftNode& target = d.nodes.find(key)->second;
    PtrEntry e;
    e.family = ip.family == 4 ? 4 : 16;
    std::memcpy(e.ip, ip.bytes, ip.size());
    e.set.type = dns::kTypePTR;
    const uint8_t len = static_cast<uint8_t>(key.size() + d.nameWire.size());
    e.set.rdatas = Records(base + nameOffs[target.index], 1, len, nullptr, 0, dns::RdataKind::kName);
    cs->ptrs.push_back(e);
  }
  return cs;
}

}  // namespace

std::string SnapshotBuilder::learnZone(const std::string& nodeName, const SliceList& slices) {
  if (nodeName.empty()) return {};
  for (const EndpointSlice* sl : slices)
    for (const auto& ep : sl->endpoints)
      if (ep.nodeName == nodeName && !ep.zone.empty()) return ep.zone;
  return {};
}

std::string SnapshotBuilder::indexKeyOf(const std::string& serviceKey) {
  const size_t slash = serviceKey.find('/');
  if (slash == std::string::npos) return {};
  const std::string svc = wireLabel(serviceKey.substr(slash + 1)), ns = wireLabel(serviceKey.substr(0, slash));
  return svc.empty() || ns.empty() ? std::string() : svc + ns;
}

std::shared_ptr<const CompiledService> SnapshotBuilder::compile(const Service& svc, const SliceList& slices,
                                                                const CompileCtx& ctx, size_t* skipped) {
  const std::string svcLabel = wireLabel(svc.name), nsLabel = wireLabel(svc.ns);
  if (svcLabel.empty() || nsLabel.empty()) {
    ++*skipped;
    return nullptr;
  }
  Draft d;
  d.nameWire = svcLabel + nsLabel + std::string("\3svc", 4) + ctx.zoneWire;
  if (d.nameWire.size() > dns::kMaxNameWire) {
    ++*skipped;
    return nullptr;
  }
  std::string modelKey = objectKey(svc.ns, svc.name);
  if (svc.type == ServiceType::kExternalName) {
    std::string target;
    if (svc.externalName.empty() || !dns::textToWire(svc.externalName, &target) || target.size() <= 1) {
      ++*skipped;  // nothing to point at: the name does not exist
      return nullptr;
    }
    DraftSet& set = d.nodes[""].get(dns::kTypeCNAME);
    set.kind = dns::RdataKind::kName;
    set.rdatas.push_back(std::move(target));
  } else if (svc.headless) {
    draftHeadless(svc, slices, ctx, modelKey, &d);
  } else {
    draftClusterIp(svc, &d);
  }
  return freeze(d, ctx, std::move(modelKey), static_cast<uint8_t>(svcLabel.size()),
                static_cast<uint8_t>(nsLabel.size()));
}

}  // namespace hdnsd::cluster
