// The per-query observation point: the responder (answers from the view, the cache, or written
// locally) and the forwarder (answers delivered after an upstream round trip) report every
// answered query here, once, when it is sent. QueryStats::tap points at the one QueryTap of the
// loop (ops::QueryObserver: the latency histograms and the query log); nullptr: nobody listens
// and nothing is timed.
//
// Data path: an event is a handful of pointers and integers on the caller's stack; onQuery
// must not allocate, block or throw. Loop thread only.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <ctime>
#include <string_view>

namespace hdnsd::ops {

// Where the answer came from: the cluster view, the forwarding cache, an upstream round trip
// (stale answers served after every upstream failed count here too: the client waited for it),
// or written locally without looking anything up (FORMERR, NOTIMP, REFUSED, BADVERS, SERVFAIL
// before the first sync, --aaaa nodata).
enum class Source : uint8_t { kView, kCache, kUpstream, kLocal, kCount };
const char* sourceName(Source s) noexcept;  // "view", "cache", "upstream", "local"

struct QueryEvent {
  const sockaddr* client = nullptr;  // nullptr: unknown
  uint8_t transport = 0;             // query::Transport
  std::string_view qnameWire;        // uncompressed wire form; empty: unparsed query
  uint16_t qtype = 0;
  uint8_t outcome = 0;               // query::Outcome
  Source source = Source::kLocal;
  uint64_t received_ns = 0;          // monotonicNs() when the query was read; 0: unknown
};

class QueryTap {
 public:
  virtual void onQuery(const QueryEvent& e) noexcept = 0;

 protected:
  ~QueryTap() = default;
};

// CLOCK_MONOTONIC through the vDSO (what uv_hrtime reads). CLOCK_MONOTONIC_COARSE is cheaper
// but ticks every 4 ms (CONFIG_HZ=250), coarser than most answers take; see bench/ops/.
inline uint64_t monotonicNs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

}  // namespace hdnsd::ops
