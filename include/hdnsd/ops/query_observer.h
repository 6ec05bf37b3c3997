// The loop's QueryTap: for every answered query, one observation in
// hdnsd_dns_query_duration_seconds{source} (receipt → answer sent; for upstream answers the
// round trip included), and, when --query-log is on, one log line for 1 in --query-log-sample
// queries: client, transport, qname, qtype, rcode, source, duration.
//
// Data path: Histogram::observe (a binary search and relaxed atomics) and, for a logged query,
// formatting into a member buffer and one write(2) to stderr. No allocation, nothing thrown
// (test/unit/server/hot_path_alloc_test.cc runs with the log on). Loop thread only; the
// histograms are registry-owned and outlive nothing but the registry, or (one observer per
// worker, server/worker.h) the observer's own, summed into the family at scrape time
// (metrics::appendHistogram): no cache line shared between workers per query.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "hdnsd/metrics/registry.h"
#include "hdnsd/ops/query_tap.h"
#include "hdnsd/util/log.h"

namespace hdnsd::ops {

// Seconds; DNS answers from memory take microseconds, upstream round trips milliseconds.
inline constexpr double kQueryDurationBuckets[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                                   0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
                                                   0.1,     0.25,     0.5,     1.0,    2.5,     5.0};

struct QueryLogOptions {
  bool enabled = false;          // --query-log
  uint32_t sampleEvery = 1;      // --query-log-sample N: 1 in N queries (1: all)
  log::Format format = log::Format::kText;
  int fd = 2;                    // stderr, like every other log line
};

class QueryObserver final : public QueryTap {
 public:
  explicit QueryObserver(metrics::Registry& reg);
  QueryObserver();  // histograms of its own, not in any registry: read them with duration()

  void setLog(const QueryLogOptions& o) noexcept;
  void onQuery(const QueryEvent& e) noexcept override;

  uint64_t logged() const noexcept { return logged_; }
  const metrics::Histogram& duration(Source s) const noexcept { return *durations_[size_t(s)]; }
  // Formats e as one line (with '\n') into out; returns its length. Exposed for the tests.
  size_t formatLine(const QueryEvent& e, uint64_t duration_ns, char* out, size_t cap) const noexcept;

 private:
  std::array<metrics::Histogram*, size_t(Source::kCount)> durations_{};
  std::array<std::unique_ptr<metrics::Histogram>, size_t(Source::kCount)> own_;  // QueryObserver()
  QueryLogOptions log_;
  uint64_t seen_ = 0, logged_ = 0;
  char line_[2048];  // the longest line (a 255-byte name all \\DDD in JSON) is ~1,700 bytes
};

// "web.demo.svc.cluster.local." from uncompressed wire form; bytes outside printable ASCII
// (and . \ " inside labels) as \DDD (RFC 1035 5.1). Returns the new position in out.
size_t appendNameText(char* out, size_t pos, size_t cap, std::string_view wire) noexcept;
// "A", "AAAA", ... or "TYPE65534".
size_t appendTypeText(char* out, size_t pos, size_t cap, uint16_t qtype) noexcept;

}  // namespace hdnsd::ops
