// Node-scoped autopath (--autopath, issue 4): a pod's stub resolver walks its search path
// (kubelet's resolv.conf: `search <ns>.svc.<zone> svc.<zone> <zone>`, `options ndots:5`), so a
// lookup of api.example.com costs four queries, three of them NXDOMAIN. When the first one,
// api.example.com.<ns>.svc.<zone>, comes from a pod of this node in namespace <ns>, hdnsd walks
// the rest of the path itself and answers that first query with a CNAME to the first name that
// exists, plus its records: one round trip (what CoreDNS's autopath plugin does with its
// cluster-wide pod watch; here only this node's pods are watched).
//
// This header: the pure parts, bytes in → decisions out (no libuv, unit-tested):
//   PodIndex        immutable client IP → namespace map, built on the control path from the
//                   node's pods, read per query (binary search, no allocation)
//   splitFirstSearch / candidate / plan   the name split and the search-walk decision
// The Responder runs the walk against the view (query/responder.cc, autopath.cc there) and the
// Forwarder the upstream step (upstream/forwarder.h: resolveAutopath).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hdnsd/dns/name.h"

namespace hdnsd::autopath {

// The ndots autopath assumes. Like CoreDNS we cannot see the pod's resolv.conf: a name with
// this many dots or more is asked as-is first by the stub (it reaches us with its search
// suffix only after that failed), so walking it again would only repeat that failure.
inline constexpr size_t kAssumedNdots = 5;

// hdnsd_autopath_hits_total{result}: where a search walk ended.
//   kView      a later search name (or the bare name, in the zone) exists in the view
//   kUpstream  the bare name, forwarded, answered NOERROR
//   kNxDomain  nothing found (or the upstream failed): the first name's own NXDOMAIN is sent,
//              so the client walks on as it would without autopath
enum class Result : uint8_t { kView, kUpstream, kNxDomain, kCount };
const char* resultName(Result r) noexcept;

struct Stats {
  std::atomic<uint64_t> hits[size_t(Result::kCount)]{};
  void count(Result r) noexcept { hits[size_t(r)].fetch_add(1, std::memory_order_relaxed); }
};

// One pod of this node, as the API source decoded it (control path).
struct PodEntry {
  std::string ns;                // metadata.namespace
  std::vector<std::string> ips;  // status.podIPs (or podIP), text form
};

// Client address → namespace. Built once per change of the node's pods (a few hundred at most),
// shared read-only with the loop as a shared_ptr<const PodIndex>.
class PodIndex {
 public:
  // Unparsable IPs are skipped; an IP claimed by pods of two namespaces is dropped (ambiguous:
  // no autopath for it rather than a wrong namespace).
  static std::shared_ptr<const PodIndex> build(const std::vector<PodEntry>& pods);

  // The namespace of the pod with this address (4 or 16 bytes, IPv4-mapped IPv6 given as 4),
  // or "" when unknown. The view stays valid as long as the index. No allocation.
  std::string_view namespaceOf(std::span<const uint8_t> addr) const noexcept;

  size_t pods() const noexcept { return pods_; }
  size_t addresses() const noexcept { return entries_.size(); }
  size_t conflicts() const noexcept { return conflicts_; }

 private:
  struct Entry {
    std::array<uint8_t, 16> addr{};
    uint8_t len = 0;
    uint32_t ns = 0;  // index into namespaces_
  };
  std::vector<Entry> entries_;  // sorted by (len, addr)
  std::vector<std::string> namespaces_;
  size_t pods_ = 0;
  size_t conflicts_ = 0;
};

// If qname is <X>.<ns>.svc.<zone> (zoneWire: the zone in wire form; ns: one label, text),
// returns the number of labels of X (>= 1), else 0.
size_t splitFirstSearch(const dns::NameKey& qname, std::string_view ns, std::string_view zoneWire) noexcept;

// Step `step` of the walk of X = the first xLabels labels of qname:
//   0: X.<ns>.svc.<zone> (qname itself)  1: X.svc.<zone>  2: X.<zone>  3: X
// False if the name would be too long (it then cannot exist).
bool candidate(const dns::NameKey& qname, size_t xLabels, size_t step, std::string_view zoneWire,
               dns::NameKey* out) noexcept;
inline constexpr size_t kSteps = 4;

enum class Step : uint8_t {
  kSkip,      // not an autopath query: answer it as usual
  kView,      // answer CNAME qname → target plus target's answer from the view
  kForward,   // forward target (the bare X, outside the zone) and answer CNAME qname → X plus it
  kOriginal,  // nothing exists: answer qname as usual (its NXDOMAIN)
};
struct Plan {
  Step step = Step::kSkip;
  dns::NameKey target;
  size_t xLabels = 0;
};

// The search-walk decision. exists(const NameKey&) says whether the view has a name (a lookup
// that is not NXDOMAIN: NODATA and empty non-terminals exist, as for a stub they end the walk).
// Applies when qname is <X>.<ns>.svc.<zone>, X has fewer than kAssumedNdots dots, and qname
// itself does not exist. canForward: an upstream is configured for names outside the zone.
template <class Exists>
Plan plan(const dns::NameKey& qname, std::string_view ns, std::string_view zoneWire, bool canForward,
          Exists&& exists) noexcept {
  Plan p;
  const size_t x = splitFirstSearch(qname, ns, zoneWire);
  if (x == 0 || x - 1 >= kAssumedNdots || exists(qname)) return p;
  p.xLabels = x;
  for (size_t step = 1; step < kSteps; ++step) {
    if (!candidate(qname, x, step, zoneWire, &p.target)) continue;
    const bool last = step == kSteps - 1;
    if (last && !dns::isAtOrBelow(p.target.wire(), zoneWire)) {
      p.step = canForward ? Step::kForward : Step::kOriginal;
      return p;
    }
    if (exists(p.target)) {
      p.step = Step::kView;
      return p;
    }
  }
  p.step = Step::kOriginal;
  return p;
}

}  // namespace hdnsd::autopath
