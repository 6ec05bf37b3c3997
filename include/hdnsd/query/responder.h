// The query pipeline, bytes in → bytes out: parse, classify, look up the cluster view, write
// the answer. Runs on the loop thread; no allocation, nothing throws. Transports call
// respond() with a received message and a buffer to write into.
//
//   malformed header / QR=1        → dropped (nothing to answer, or never answer a response)
//   client not in --allow          → REFUSED (malformed: dropped), counted in aclRefused
//   other parse errors             → FORMERR, header only
//   opcode ≠ QUERY                 → NOTIMP
//   EDNS version ≠ 0               → BADVERS (RFC 6891 6.1.3)
//   class ≠ IN, AXFR/IXFR          → REFUSED (we are no zone-transfer source)
//   cluster zone, view not loaded  → SERVFAIL (never a wrong NXDOMAIN)
//   cluster zone                   → the view's answer, AA set
//   cluster zone, partial view     → (Snapshot::partialZone, --headless-only) a name the view
//                                    lacks (kNxDomain) is treated as outside it: forwarded
//   anything else                  → the forwarder (cache, upstream) when one is set, else REFUSED
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hdnsd/autopath/autopath.h"
#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/dns/writer.h"
#include "hdnsd/ops/query_tap.h"
#include "hdnsd/policy/spreader.h"
#include "hdnsd/query/acl.h"
#include "hdnsd/query/stats.h"

namespace hdnsd::upstream {
class Forwarder;
struct Client;
}  // namespace hdnsd::upstream

namespace hdnsd::query {

struct ResponderOptions {
  std::string zone = "cluster.local";
  uint16_t ednsUdpSize = 1232;  // our advertised size and the largest UDP answer we send
  policy::SpreaderOptions spread;  // --policy, --max-answers (the order of cluster answers)
  std::vector<std::string> allow;  // --allow: who may query (empty: query::defaultAllowList())
  // --max-udp-amplification N: a UDP answer larger than max(512, N × the query's size) is
  // truncated (TC=1, the client retries over TCP, which cannot be spoofed); 0: no such cap.
  uint32_t maxUdpAmplification = 10;
  // --autopath: a pod's first search name <X>.<ns>.svc.<zone> (ns: the namespace of the
  // client's IP in the PodIndex) that does not exist is answered for the whole search walk
  // (autopath/autopath.h; src/query/autopath.cc).
  bool autopath = false;
};

class Responder {
 public:
  Responder(const ResponderOptions& opts, QueryStats& stats);

  void setOptions(const ResponderOptions& opts);
  // Publishes a new view; queries from now on read it. The old one is freed when unreferenced.
  void setSnapshot(std::shared_ptr<const cluster::Snapshot> s) noexcept { snapshot_ = std::move(s); }
  const std::shared_ptr<const cluster::Snapshot>& snapshot() const noexcept { return snapshot_; }

  // Writes the answer to `query` into `out` and returns its size, or 0 to send nothing.
  // `out` must hold at least 512 bytes (UDP) or the largest answer we allow (TCP: 65535).
  // `client` says where a deferred answer goes: a query sent upstream returns 0 here and its
  // answer reaches client->sink later (no client: SERVFAIL instead of waiting).
  size_t respond(std::span<const uint8_t> query, std::span<uint8_t> out, Transport t,
                 const upstream::Client* client = nullptr) noexcept;

  // Names outside the cluster zone (and unknown reverse names) go to `f` (nullptr: REFUSED).
  // Answers carry RA=1 while a forwarder with upstreams is set.
  void setForwarder(upstream::Forwarder* f) noexcept;
  upstream::Forwarder* forwarder() const noexcept { return forwarder_; }

  // Load spreading state of this loop: per-name round-robin counters and the RNG. The
  // forwarding path rotates cached A/AAAA answers with it (policy/forwarded.h).
  policy::Spreader& spreader() noexcept { return spreader_; }

  // --autopath: this node's pods (client IP → namespace), from the API source's pod watch.
  void setPodIndex(std::shared_ptr<const autopath::PodIndex> idx) noexcept { podIndex_ = std::move(idx); }
  const std::shared_ptr<const autopath::PodIndex>& podIndex() const noexcept { return podIndex_; }
  const autopath::Stats& autopathStats() const noexcept { return autopathStats_; }

 private:
  // owner: whose records these are (the question; an autopath answer: the CNAME's target).
  size_t answerFromView(const cluster::Snapshot& view, const dns::Query& q, dns::ResponseWriter& w,
                        Transport t, const upstream::Client* client = nullptr, dns::Owner owner = {}) noexcept;
  // src/query/autopath.cc. False: not an autopath query (answer as usual); true: *n is the answer.
  bool autopathAnswer(const cluster::Snapshot& view, std::span<const uint8_t> pkt, const dns::Query& q,
                      dns::ResponseWriter& w, std::span<uint8_t> out, size_t limit, Transport t,
                      const upstream::Client* client, size_t* n) noexcept;
  // Q's answer without autopath, for the forwarder (not counted: its delivery counts it).
  static size_t originalAnswerCb(void* self, std::span<const uint8_t> query, std::span<uint8_t> out,
                                 size_t limit) noexcept;
  size_t forward(std::span<const uint8_t> pkt, const dns::Query& q, std::span<uint8_t> out, size_t limit,
                 Transport t, const upstream::Client* client) noexcept;
  size_t done(dns::ResponseWriter& w, const dns::Query* q, Transport t, Outcome o) noexcept;
  void report(const dns::Query* q, Transport t, Outcome o) noexcept;  // to stats_.tap

  QueryStats& stats_;
  std::string zoneWire_;
  uint16_t ednsUdpSize_;
  Acl acl_;
  uint32_t maxUdpAmplification_ = 10;
  std::shared_ptr<const cluster::Snapshot> snapshot_;
  upstream::Forwarder* forwarder_ = nullptr;
  policy::Spreader spreader_;
  bool recursionAvailable_ = false;
  // The query being answered, for stats_.tap (set at the top of respond()).
  const upstream::Client* client_ = nullptr;
  uint64_t received_ns_ = 0;
  ops::Source source_ = ops::Source::kLocal;
  bool autopath_ = false;
  std::shared_ptr<const autopath::PodIndex> podIndex_;
  autopath::Stats autopathStats_;
};

}  // namespace hdnsd::query
