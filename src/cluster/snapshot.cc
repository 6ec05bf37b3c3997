// The cluster view's tables (control path: allocates freely): Snapshot::build compiles every
// service (compile.cc) and fills the tables; Snapshot::rebuildService swaps one service in a
// copy-on-write copy. The structure is described in include/hdnsd/cluster/snapshot.h; the
// data path is lookup.cc.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <utility>

#include "snapshot_impl.h"

namespace hdnsd::cluster {

namespace {

void appendU32(std::string* s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s->push_back(static_cast<char>(v >> shift));
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

uint64_t nodeHash(const Node& n) { return dns::nameHash(n.nameWire()); }

}  // namespace

void SnapshotBuilder::addService(Snapshot::Impl* impl, std::shared_ptr<const CompiledService> cs) {
  if (cs->exists) ++impl->namespaces[cs->nsKey()];
  SnapshotBuilder::addNames(impl, *cs);
  impl->services[cs->indexKey()] = std::move(cs);
}

// An address's PTR parts: who names it, whether alone (a service's entry) or with others.
std::vector<const PtrEntry*> SnapshotBuilder::ptrParts(const Snapshot::Impl& impl, std::string_view ip) {
  const PtrEntry* e = impl.reverse.find(dns::nameHash(ip), [ip](const PtrEntry* p) { return p->key() == ip; });
  if (e == nullptr) return {};
  if (const auto* m = impl.merged.find(ip); m != nullptr && &(*m)->entry == e) return (*m)->parts;
  return {e};
}

void SnapshotBuilder::addNames(Snapshot::Impl* impl, const CompiledService& cs) {
  if (!cs.exists) return;  // NXDOMAIN with everything below it
  for (const Node& n : cs.nodes) impl->names.insert(nodeHash(n), &n);
}

void SnapshotBuilder::removeNames(Snapshot::Impl* impl, const CompiledService& cs) {
  if (!cs.exists) return;
  for (const Node& n : cs.nodes) impl->names.erase(nodeHash(n), [&n](const Node* p) { return p == &n; });
}

std::shared_ptr<const MergedPtr> mergePtrs(std::vector<const PtrEntry*> parts) {
  auto target = [](const PtrEntry* p) { return p->set.rdatas[0].bytes; };
  std::sort(parts.begin(), parts.end(), [&](const PtrEntry* a, const PtrEntry* b) { return target(a) < target(b); });
  auto m = std::make_shared<MergedPtr>();
  m->entry.family = parts.front()->family;
  std::memcpy(m->entry.ip, parts.front()->ip, sizeof m->entry.ip);
  std::string_view last;
  for (const PtrEntry* p : parts) {
    const std::string_view t = target(p);
    if (!m->offsets.empty() && t == last) continue;  // the same name twice: once
    last = t;
    m->offsets.push_back(static_cast<uint32_t>(m->bytes.size()));
    m->bytes.insert(m->bytes.end(), t.begin(), t.end());
  }
  const auto count = static_cast<uint32_t>(m->offsets.size());
  m->offsets.push_back(static_cast<uint32_t>(m->bytes.size()));
  m->entry.set.type = dns::kTypePTR;
  m->entry.set.rdatas = Records(m->bytes.data(), count, 0, m->offsets.data(), 0, dns::RdataKind::kName);
  m->parts = std::move(parts);
  return m;
}

// Points the reverse entry of `ip` at its PTR set: the one service that names it, or a merged
// set of several (owned by the merged table); no entry when no service names it.
void SnapshotBuilder::setPtr(Snapshot::Impl* impl, std::string_view ip, std::vector<const PtrEntry*> parts) {
  const uint64_t h = dns::nameHash(ip);
  impl->reverse.erase(h, [ip](const PtrEntry* p) { return p->key() == ip; });
  if (impl->merged.find(ip) != nullptr) impl->merged.erase(ip);
  if (parts.empty()) return;
  if (parts.size() == 1) {
    impl->reverse.insert(h, parts.front());
    return;
  }
  auto m = mergePtrs(std::move(parts));
  impl->reverse.insert(h, &m->entry);
  impl->merged[ip] = std::move(m);
}

void SnapshotBuilder::setSoa(Snapshot* s, std::string rdata) {
  s->soaRdata_ = std::move(rdata);
  s->soa_.type = dns::kTypeSOA;
  s->soa_.rdatas = Records(reinterpret_cast<const uint8_t*>(s->soaRdata_.data()), 1,
                           static_cast<uint16_t>(s->soaRdata_.size()), nullptr, 0, dns::RdataKind::kSoa);
}

void SnapshotBuilder::initCommon(Snapshot* s, const ViewOptions& opts, Snapshot::Impl* impl) {
  s->opts_ = opts;
  s->ttl_s_ = opts.ttl_s;
  if (!dns::textToWire(opts.zone, &s->zoneWire_)) {
    // The config validates the zone; never serve garbage if it did not.
    s->zoneWire_.assign("\7cluster\5local\0", 15);
  }
  impl->zoneLabels = countLabels(s->zoneWire_);
  s->serial_ = opts.serial != 0 ? opts.serial : nextSerial();

  // SOA: ns.dns.<zone> hostmaster.<zone> serial refresh retry expire minimum.
  std::string soa = std::string("\2ns\3dns", 7) + s->zoneWire_ + std::string("\12hostmaster", 11) + s->zoneWire_;
  for (uint32_t v : {s->serial_, kSoaRefresh_s, kSoaRetry_s, kSoaExpire_s, opts.ttl_s}) appendU32(&soa, v);
  setSoa(s, std::move(soa));

  // TXT: one <character-string> (RFC 1035 3.3.14): length byte, then the text; stored as its
  // wire tail like every opaque record.
  const std::string_view v = kSchemaVersion;
  std::string txt("\0\x10\0\x01", 4);
  appendU32(&txt, opts.ttl_s);
  txt.push_back(0);
  txt.push_back(static_cast<char>(1 + v.size()));
  txt.push_back(static_cast<char>(v.size()));
  txt += v;
  impl->versionBytes = std::make_shared<const std::string>(std::move(txt));
  impl->versionTxt.type = dns::kTypeTXT;
  impl->versionTxt.rdatas = Records(reinterpret_cast<const uint8_t*>(impl->versionBytes->data()), 1,
                                    static_cast<uint16_t>(impl->versionBytes->size()), nullptr,
                                    Records::kTailHeader, dns::RdataKind::kOpaque);
}

// Seconds since the epoch, but strictly increasing within the process so that two
// snapshots built within one second still differ (RFC 1982 serial arithmetic).
uint32_t SnapshotBuilder::nextSerial() {
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

std::shared_ptr<const Snapshot> Snapshot::build(const ClusterModel& model, const ViewOptions& opts) {
  auto snap = std::shared_ptr<Snapshot>(new Snapshot());
  auto impl = std::make_shared<Impl>();
  SnapshotBuilder::initCommon(snap.get(), opts, impl.get());

  std::unordered_map<std::string, SnapshotBuilder::SliceList> slicesBySvc;
  for (const auto& [key, sl] : model.slices()) slicesBySvc[objectKey(sl.ns, sl.serviceName)].push_back(&sl);
  static const SnapshotBuilder::SliceList kNoSlices;

  snap->nodeZone_ = opts.nodeZone;
  if (snap->nodeZone_.empty() && !opts.nodeName.empty()) {
    SnapshotBuilder::SliceList all;
    for (const auto& [k, sl] : model.slices()) all.push_back(&sl);
    snap->nodeZone_ = SnapshotBuilder::learnZone(opts.nodeName, all);
  }
  const CompileCtx ctx{snap->zoneWire_, &snap->opts_, snap->nodeZone_, &snap->badAnnotations_};
  std::vector<std::shared_ptr<const CompiledService>> compiled;
  compiled.reserve(model.services.size());
  // Model keys that differ only in letter case name the same service: the last one wins, as
  // a rebuildService() of it would replace the other.
  std::unordered_map<std::string, size_t> byIndex;
  size_t names = 0, ptrs = 0;
  for (const auto& [key, svc] : model.services) {
    auto it = slicesBySvc.find(objectKey(svc.ns, svc.name));
    const auto& slices = it == slicesBySvc.end() ? kNoSlices : it->second;
    auto cs = SnapshotBuilder::compile(svc, slices, ctx, &snap->skipped_);
    if (it != slicesBySvc.end()) {
      for (const auto* sl : it->second)
        if (sl->addressType == AddressType::kFQDN) ++snap->skipped_;
      slicesBySvc.erase(it);  // what remains has no service
    }
    if (!cs) continue;
    ++snap->serviceCount_;
    snap->endpointCount_ += cs->endpoints;
    names += cs->exists ? cs->nodes.size() : 0;
    ptrs += cs->ptrs.size();
    if (auto [at, added] = byIndex.emplace(cs->indexKey(), compiled.size()); !added) {
      compiled[at->second] = std::move(cs);
      continue;
    }
    compiled.push_back(std::move(cs));
  }
  for (const auto& [k, slices] : slicesBySvc) snap->skipped_ += slices.size();

  impl->names.reserve(names);
  impl->reverse.reserve(ptrs);
  // Every service's PTR entries, grouped by address: one service names most addresses.
  std::vector<const PtrEntry*> all;
  all.reserve(ptrs);
  for (const auto& cs : compiled)
    for (const PtrEntry& e : cs->ptrs) all.push_back(&e);
  std::sort(all.begin(), all.end(), [](const PtrEntry* a, const PtrEntry* b) { return a->key() < b->key(); });
  for (size_t i = 0; i < all.size();) {
    size_t j = i + 1;
    while (j < all.size() && all[j]->key() == all[i]->key()) ++j;
    SnapshotBuilder::setPtr(impl.get(), all[i]->key(),
                            {all.begin() + static_cast<ptrdiff_t>(i), all.begin() + static_cast<ptrdiff_t>(j)});
    i = j;
  }
  for (auto& cs : compiled) SnapshotBuilder::addService(impl.get(), std::move(cs));
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
  {
    std::string soa = prev.soaRdata_;
    for (int i = 0; i < 4; ++i) soa[soa.size() - 20 + i] = static_cast<char>(snap->serial_ >> (24 - 8 * i));
    SnapshotBuilder::setSoa(snap.get(), std::move(soa));
  }

  std::set<std::string_view> touched;  // addresses whose PTR entry must be re-merged
  // Withdraw the old version, found by its model key's labels.
  std::shared_ptr<const CompiledService> old;
  const std::string idx = SnapshotBuilder::indexKeyOf(serviceKey);
  if (const auto* it = idx.empty() ? nullptr : impl->services.find(idx)) {
    old = *it;
    impl->services.erase(idx);
  }
  if (old) {
    --snap->serviceCount_;
    snap->endpointCount_ -= old->endpoints;
    if (old->exists) {
      uint32_t* count = impl->namespaces.findMutable(old->nsKey());
      if (count != nullptr && --*count == 0) impl->namespaces.erase(old->nsKey());
    }
    SnapshotBuilder::removeNames(impl.get(), *old);
    for (const PtrEntry& e : old->ptrs) touched.insert(e.key());
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
    const CompileCtx ctx{snap->zoneWire_, &snap->opts_, snap->nodeZone_, &snap->badAnnotations_};
    fresh = SnapshotBuilder::compile(svc, slices, ctx, &snap->skipped_);
  }
  if (fresh) {
    ++snap->serviceCount_;
    snap->endpointCount_ += fresh->endpoints;
    for (const PtrEntry& e : fresh->ptrs) touched.insert(e.key());
    SnapshotBuilder::addService(impl.get(), fresh);
  }
  // Re-merge only the touched addresses: the parts naming them before, minus the old
  // service's, plus the new service's.
  for (const std::string_view ip : touched) {
    std::vector<const PtrEntry*> parts = SnapshotBuilder::ptrParts(*impl, ip);
    if (old) std::erase_if(parts, [&](const PtrEntry* p) { return old->owns(p); });
    if (fresh)
      for (const PtrEntry& e : fresh->ptrs)
        if (e.key() == ip) parts.push_back(&e);
    SnapshotBuilder::setPtr(impl.get(), ip, std::move(parts));
  }
  snap->impl_ = std::move(impl);
  return snap;
}

}  // namespace hdnsd::cluster
