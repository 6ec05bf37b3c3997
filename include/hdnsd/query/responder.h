// The query pipeline, bytes in → bytes out: parse, classify, look up the cluster view, write
// the answer. Runs on the loop thread; no allocation, nothing throws. Transports call
// respond() with a received message and a buffer to write into.
//
//   malformed header / QR=1        → dropped (nothing to answer, or never answer a response)
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

#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/policy/spreader.h"
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

 private:
  size_t answerFromView(const cluster::Snapshot& view, const dns::Query& q, dns::ResponseWriter& w,
                        Transport t, const upstream::Client* client = nullptr) noexcept;
  size_t forward(std::span<const uint8_t> pkt, const dns::Query& q, std::span<uint8_t> out, size_t limit,
                 Transport t, const upstream::Client* client) noexcept;
  size_t done(dns::ResponseWriter& w, const dns::Query* q, Transport t, Outcome o) noexcept;

  QueryStats& stats_;
  std::string zoneWire_;
  uint16_t ednsUdpSize_;
  std::shared_ptr<const cluster::Snapshot> snapshot_;
  upstream::Forwarder* forwarder_ = nullptr;
  policy::Spreader spreader_;
  bool recursionAvailable_ = false;
};

}  // namespace hdnsd::query
