// The forwarder: names outside the cluster zone are answered from the cache or sent upstream
// through c-ares, without the loop ever waiting. Loop thread only.
//
//   resolve(query) ── AAAA policy ──▶ NODATA now
//                  ── cache hit ────▶ the answer now (+ a background refresh when prefetch is due)
//                  ── miss ─────────▶ a Pending entry (bounded table) with this client as a waiter;
//                                     an identical miss in flight (same cache key) only adds a
//                                     waiter (bounded per entry): one upstream query for all
//   c-ares callback ─▶ check ID + question ─▶ cache insert ─▶ every waiter gets the answer with
//                      its own ID, question case, RD/CD, EDNS and size (TC if too big for UDP)
//                  ─▶ failed (timeout, SERVFAIL/REFUSED from every server, bad answer) ─▶ the
//                      stale cache entry if there is one (RFC 8767), else SERVFAIL
//
// Ownership: the Pending table and the waiter pool are allocated once (configure()); a miss
// allocates nothing of ours (c-ares copies the query). A waiter points at its ReplySink (a UDP
// listener or a TCP connection); a sink that goes away first calls cancel(sink). The c-ares
// channels are members declared last, so they are destroyed first (their EDESTRUCTION
// callbacks still find the table).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hdnsd/autopath/autopath.h"
#include "hdnsd/cache/cache.h"
#include "hdnsd/metrics/registry.h"
#include "hdnsd/policy/spreader.h"
#include "hdnsd/query/stats.h"
#include "hdnsd/upstream/upstreams.h"
#include "hdnsd/upstream/wire.h"
#include "hdnsd/uvx/ares_channel.h"

namespace hdnsd::upstream {

// Where a deferred answer goes: a UDP listener (to = the client's address) or a TCP connection
// (to = nullptr). `waiting` counts this sink's waiters (kept by the Forwarder) so a sink that
// closes knows whether it must cancel(), and a draining TCP connection when it may close.
class ReplySink {
 public:
  virtual void deliverAnswer(const sockaddr* to, std::span<const uint8_t> answer) noexcept = 0;
  uint32_t waiting = 0;

 protected:
  ~ReplySink() = default;
};

struct Client {
  ReplySink* sink = nullptr;
  const sockaddr* addr = nullptr;  // UDP: copied into the waiter
  query::Transport transport = query::Transport::kUdp;
  uint64_t received_ns = 0;        // ops::monotonicNs() at receipt (0: not timed)

  // The address bytes (4 or 16; empty when unknown), an IPv4-mapped IPv6 address as IPv4 so a
  // dual-stack socket sees a client the same way: the consistent policy hashes it, autopath
  // maps it to a pod's namespace.
  std::span<const uint8_t> addressBytes() const noexcept {
    if (addr == nullptr) return {};
    if (addr->sa_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(addr);
      return {reinterpret_cast<const uint8_t*>(&a->sin_addr), 4};
    }
    if (addr->sa_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(addr);
      const auto* b = reinterpret_cast<const uint8_t*>(&a->sin6_addr);
      if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) return {b + 12, 4};
      return {b, 16};
    }
    return {};
  }
};

struct ForwarderOptions {
  uint32_t timeout_ms = 2000;
  uint32_t tries = 2;
  uint16_t ednsUdpSize = 1232;
  config::Config::Aaaa aaaa = config::Config::Aaaa::kAuto;
  size_t maxPending = 2048;         // upstream queries in flight; more → SERVFAIL (counted)
  size_t maxWaiters = 8192;         // clients waiting over all of them
  size_t maxWaitersPerQuery = 256;  // clients coalesced onto one upstream query; more → SERVFAIL
};

enum class ErrorKind : uint8_t {
  kTimeout, kServfail, kRefused, kNotImp, kConnRefused, kBadAnswer, kIdMismatch, kQuestionMismatch,
  kOverloaded, kWaitersFull, kOther, kCount
};
const char* errorKindName(ErrorKind k) noexcept;

class Forwarder {
 public:
  Forwarder(uv_loop_t* loop, query::QueryStats& stats, cache::Cache* cache) noexcept;
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Control path: one c-ares channel per upstream set; metrics series registered in `reg`.
  Result<void, std::string> configure(const UpstreamPlan& plan, const ForwarderOptions& o, metrics::Registry& reg);
  bool enabled() const noexcept { return !sets_.empty(); }
  // The loop's spreading policy: cached A/AAAA RRsets are rotated with it on every hit (issue 5
  // part 4, like Unbound's rrset-roundrobin). Null: answers keep the upstream's order.
  void setSpreader(policy::Spreader* s) noexcept { spreader_ = s; }

  // Answers a query for a name we do not serve ourselves. Returns the answer's size in `out`, or 0
  // when it is pending (the client's sink gets it later) or dropped. *outcome says which rcode
  // was written (or kDropped for pending: the delivery counts the query).
  // *fromCache (if given) is set when the answer came from the cache.
  size_t resolve(std::span<const uint8_t> pkt, const dns::Query& q, std::span<uint8_t> out, size_t limit,
                 const Client* client, query::Outcome* outcome, bool* fromCache = nullptr) noexcept;

  // Autopath (--autopath, autopath/autopath.h): the client asked Q = X.<ns>.svc.<zone> (pkt, q)
  // and the Responder's walk ended at the bare name X outside the zone; xpkt/xq is the same query
  // for X (built on its stack). X is resolved like any name (cache, coalescing with plain queries
  // for X, one upstream query), and a NOERROR answer reaches the client as Q CNAME X (TTL capped
  // at cnameTtlCap_s) plus X's records (autopath::prependCname). Anything else, NXDOMAIN or a
  // failure, gives the client Q's own answer, as without autopath (CoreDNS returns the first
  // search name's NXDOMAIN too, so the stub walks on): kAnswerOriginal when that is known at
  // once (the caller writes it), else the OriginalAnswerFn writes it when the upstream answers.
  // Same bounds as resolve(): a pending entry or a waiter, no allocation.
  static constexpr size_t kAnswerOriginal = SIZE_MAX;
  size_t resolveAutopath(std::span<const uint8_t> pkt, const dns::Query& q, std::span<const uint8_t> xpkt,
                         const dns::Query& xq, std::span<uint8_t> out, size_t limit, const Client* client,
                         uint32_t cnameTtlCap_s, query::Outcome* outcome) noexcept;
  // Writes Q's answer without autopath (the view's NXDOMAIN) for `query` (the client's query as
  // rebuilt from its waiter) into out, at most `limit` bytes; returns its size (0: nothing).
  using OriginalAnswerFn = size_t (*)(void* ctx, std::span<const uint8_t> query, std::span<uint8_t> out,
                                      size_t limit) noexcept;
  void setAutopath(OriginalAnswerFn fn, void* ctx, autopath::Stats* stats) noexcept {
    originalAnswer_ = fn;
    originalCtx_ = ctx;
    autopathStats_ = stats;
  }

  // A sink going away: its waiters are dropped (their answers go nowhere).
  void cancel(ReplySink* sink) noexcept;
  // Shutdown: no new upstream queries; channels are destroyed once nothing is in flight (or now).
  void drainThenClose() noexcept;
  void closeNow() noexcept;

  // Read by /metrics scrapes from the control thread while a worker's loop counts (relaxed).
  size_t inFlight() const noexcept { return inFlight_.load(std::memory_order_relaxed); }
  uint64_t coalesced() const noexcept { return coalesced_.load(std::memory_order_relaxed); }
  uint64_t prefetchesStarted() const noexcept { return prefetches_.load(std::memory_order_relaxed); }
  const std::vector<UpstreamSet>& sets() const noexcept { return plan_.sets(); }

 private:
  struct Waiter;
  struct Pending;
  struct SetState;

  static void onAnswerCb(void* arg, int status, int timeouts, unsigned char* abuf, int alen) noexcept;
  void onAnswer(Pending* p, int status, const uint8_t* abuf, size_t alen) noexcept;
  Pending* findPending(const cache::Key& key) noexcept;
  Pending* startPending(const cache::Key& key, const dns::Query& q, size_t set, bool prefetch) noexcept;
  bool addWaiter(Pending* p, std::span<const uint8_t> pkt, const dns::Query& q, size_t limit,
                 const Client& c) noexcept;
  void finish(Pending* p) noexcept;  // frees the entry and its waiters
  void deliverFresh(Pending* p, std::span<const uint8_t> normalized) noexcept;
  void deliverFailure(Pending* p) noexcept;
  void deliver(Waiter& w, uint16_t qtype, std::span<const uint8_t> bytes) noexcept;
  // An autopath waiter's answer: CNAME + X's answer when `normalized` is NOERROR, else Q's own.
  size_t autopathAnswer(const Waiter& w, uint16_t qtype, uint16_t qclass, std::span<const uint8_t> normalized,
                        std::span<uint8_t> out) noexcept;
  void countError(size_t set, ErrorKind k) noexcept;
  void scheduleRebuild(size_t set) noexcept;
  void armDeferred() noexcept;
  void onDeferred() noexcept;
  void maybeCloseChannels() noexcept;
  uint16_t randomId() noexcept;
  uint64_t now_ms() const noexcept { return uv_now(loop_); }

  uv_loop_t* loop_;
  query::QueryStats& stats_;
  cache::Cache* cache_;
  policy::Spreader* spreader_ = nullptr;
  ForwarderOptions opts_;
  UpstreamPlan plan_;
  std::array<uint64_t, 2> keySeed_{};  // for keys when the cache is off
  uint64_t rng_ = 0;

  std::unique_ptr<Pending[]> pending_;
  std::vector<int32_t> buckets_;     // key hash → first Pending index (-1: none)
  int32_t freePending_ = -1;
  std::unique_ptr<Waiter[]> waiters_;
  int32_t freeWaiters_ = -1;
  std::atomic<size_t> inFlight_{0};  // atomics: see inFlight(); they move per upstream query only
  std::atomic<uint64_t> coalesced_{0}, prefetches_{0};
  bool closing_ = false, closed_ = false;
  std::unique_ptr<uint8_t[]> scratch_;  // the normalized upstream answer
  std::unique_ptr<uint8_t[]> out_;      // one client's answer
  std::unique_ptr<uint8_t[]> apBuf_;    // resolveAutopath: X's cached answer, then the client's (2 × 64 KiB)
  OriginalAnswerFn originalAnswer_ = nullptr;
  void* originalCtx_ = nullptr;
  autopath::Stats* autopathStats_ = nullptr;
  uvx::UvPtr<uv_timer_t> rebuildTimer_;
  std::vector<std::unique_ptr<SetState>> sets_;  // channels inside: declared last, destroyed first
};

}  // namespace hdnsd::upstream

namespace hdnsd::upstream {
// Scrape-time families for /metrics: hdnsd_cache_* from the cache's Stats and the forwarder's
// gauges and counters (either may be null: forwarding off). The per-upstream counters and the
// latency histogram are registry-owned series, registered by Forwarder::configure.
// With several workers (server/worker.h) each has its own forwarder and cache: the families hold
// their sums. Null entries are skipped.
void collectMetrics(std::vector<metrics::FamilyData>& out, std::span<const Forwarder* const> fs,
                    std::span<const cache::Cache* const> cs);
inline void collectMetrics(std::vector<metrics::FamilyData>& out, const Forwarder* f, const cache::Cache* c) {
  collectMetrics(out, std::span<const Forwarder* const>(&f, f ? 1 : 0), std::span<const cache::Cache* const>(&c, c ? 1 : 0));
}
}  // namespace hdnsd::upstream
