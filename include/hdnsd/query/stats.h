// Per-query counters, kept as fixed arrays indexed by enums so the data path increments a
// plain integer (no label lookup, no allocation). Rendered into /metrics at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "hdnsd/dns/query.h"

namespace hdnsd::ops {
class QueryTap;
}

namespace hdnsd::query {

enum class Transport : uint8_t { kUdp = 0, kTcp = 1, kCount };
enum class TypeBucket : uint8_t { kA, kAAAA, kSRV, kPTR, kTXT, kCNAME, kSOA, kNS, kANY, kOther, kCount };
// What happened to a query: the rcode we answered with, or dropped (no answer at all).
enum class Outcome : uint8_t {
  kNoError, kFormErr, kServFail, kNxDomain, kNotImp, kRefused, kBadVers, kDropped, kCount
};

const char* transportName(Transport t) noexcept;
const char* typeBucketName(TypeBucket t) noexcept;
const char* outcomeName(Outcome o) noexcept;
TypeBucket typeBucket(uint16_t qtype) noexcept;

// Relaxed atomics: one loop writes today; several workers may later, and scrapes read.
using Counter = std::atomic<uint64_t>;
inline void bump(Counter& c, uint64_t n = 1) noexcept { c.fetch_add(n, std::memory_order_relaxed); }

struct QueryStats {
  Counter queries[size_t(Transport::kCount)][size_t(TypeBucket::kCount)][size_t(Outcome::kCount)]{};
  Counter parseErrors[size_t(dns::ParseError::kCount)]{};
  Counter truncated[size_t(Transport::kCount)]{};       // answered with TC=1
  Counter udpSendDropped{};                             // socket buffer full, backlog full
  Counter tcpConnectionsAccepted{}, tcpConnectionsRefused{}, tcpIdleClosed{}, tcpBadFrames{};
  Counter aclRefused{};             // queries from clients outside --allow (REFUSED or dropped)
  Counter udpAmplificationCapped{};  // UDP answers truncated by --max-udp-amplification
  Counter tcpPerClientRefused{};    // TCP connections over --max-tcp-connections-per-client
  std::atomic<int64_t> tcpConnectionsOpen{0};
  // Latency histograms and the query log (ops/query_tap.h); nullptr: queries are not timed.
  ops::QueryTap* tap = nullptr;
};

// Scrape time, with one QueryStats per worker (server/worker.h): adds every counter of `part`
// into `total` (not tap), and the queries `s` counted, over every transport, type and outcome.
void addTo(QueryStats& total, const QueryStats& part) noexcept;
uint64_t totalQueries(const QueryStats& s) noexcept;

}  // namespace hdnsd::query
