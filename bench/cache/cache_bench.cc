// Micro-benchmark of the answer cache's eviction policies (SIEVE vs LRU) on a Zipf trace, and of
// its memory per entry. A standalone program, not a test: bench/cache/run.sh builds and runs it,
// and the numbers go to bench/RESULTS.md.
//
// Trace: names n<rank>.bench.example. drawn from a universe of U names with Zipf(alpha)
// popularity (seeded, so every policy sees the same trace). Each request is a client query: build
// the packet, parse it, make the key, lookup; on a miss insert a synthetic upstream answer (two A
// records, TTL 3600, so nothing expires: capacity alone decides). The clock advances 0.1 ms per
// request. ns/op is the whole loop minus a baseline loop that only builds, parses and keys.
//
// Memory: RSS (from /proc/self/statm) before and after filling one cache with 100,000 names.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "hdnsd/cache/cache.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"

using namespace hdnsd;

namespace {

// "n<rank>.bench.example." A IN as a client query (RD, EDNS 1232); returns its size.
size_t buildQuery(uint32_t rank, uint8_t* q) {
  const uint8_t head[12] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
  std::memcpy(q, head, 12);
  char label[16];
  const int n = std::snprintf(label, sizeof label, "n%u", rank);
  size_t p = 12;
  q[p++] = uint8_t(n);
  std::memcpy(q + p, label, size_t(n));
  p += size_t(n);
  const uint8_t rest[] = {5, 'b', 'e', 'n', 'c', 'h', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1,
                          0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
  std::memcpy(q + p, rest, sizeof rest);
  return p + sizeof rest;
}

// The upstream's answer to that query: `records` A records (TTL 3600) after the question, plus
// its OPT. Returns its size.
size_t buildAnswer(const uint8_t* query, size_t qEnd, uint32_t rank, size_t records, uint8_t* a) {
  std::memcpy(a, query, qEnd);
  dns::putU16(a + 2, 0x8180);
  dns::putU16(a + 6, uint16_t(records));
  size_t p = qEnd;
  for (size_t i = 0; i < records; ++i) {
    const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4,
                          10, uint8_t(rank >> 16), uint8_t(rank >> 8), uint8_t(i)};
    std::memcpy(a + p, rr, sizeof rr);
    p += sizeof rr;
  }
  const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
  std::memcpy(a + p, opt, sizeof opt);
  return p + sizeof opt;
}

std::vector<uint32_t> zipfTrace(size_t universe, double alpha, size_t n, uint64_t seed) {
  std::vector<double> cdf(universe);
  double sum = 0;
  for (size_t i = 0; i < universe; ++i) cdf[i] = (sum += 1.0 / std::pow(double(i + 1), alpha));
  for (double& c : cdf) c /= sum;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<uint32_t> trace(n);
  for (auto& t : trace) {
    t = uint32_t(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
  }
  return trace;
}

double nowNs() {
  return double(std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count());
}

long rssKiB() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

uint8_t gQuery[512], gAnswer[4096], gOut[65535];
volatile uint64_t gSink;

struct RunResult {
  double hitRatio, nsPerOp;
};

RunResult run(cache::Policy policy, size_t capacity, const std::vector<uint32_t>& trace, double baselineNs) {
  cache::Config cfg;
  cfg.maxEntries = capacity;
  cfg.maxBytes = size_t{1} << 30;
  cfg.policy = policy;
  cfg.prefetchPercent = 0;
  cache::Cache c(cfg);
  uint64_t hits = 0;
  const double t0 = nowNs();
  for (size_t i = 0; i < trace.size(); ++i) {
    const size_t n = buildQuery(trace[i], gQuery);
    dns::Query q;
    (void)dns::parseQuery(std::span<const uint8_t>(gQuery, n), &q);
    const cache::Key key = c.makeKey(q);
    const uint64_t now = i / 10;
    auto r = c.lookup(key, std::span<const uint8_t>(gQuery, n), q, now, gOut, sizeof gOut);
    if (r.status == cache::Status::kFresh) {
      ++hits;
    } else {
      const size_t a = buildAnswer(gQuery, q.questionEnd, trace[i], 2, gAnswer);
      c.insert(key, std::span<const uint8_t>(gAnswer, a), now);
    }
  }
  const double t1 = nowNs();
  gSink = hits;
  return {double(hits) / double(trace.size()), (t1 - t0 - baselineNs) / double(trace.size())};
}

// Hits only: every name of the trace (ranks folded into [0, names)) inserted first, then timed
// lookups, each one a fresh hit copied into the output buffer. Minus the same baseline.
double hitPathNs(cache::Policy policy, size_t names, const std::vector<uint32_t>& trace, double baselineNs) {
  cache::Config cfg;
  cfg.maxEntries = names;
  cfg.maxBytes = size_t{1} << 30;
  cfg.policy = policy;
  cfg.prefetchPercent = 0;
  cache::Cache c(cfg);
  for (uint32_t i = 0; i < names; ++i) {
    const size_t n = buildQuery(i, gQuery);
    dns::Query q;
    (void)dns::parseQuery(std::span<const uint8_t>(gQuery, n), &q);
    const size_t a = buildAnswer(gQuery, q.questionEnd, i, 2, gAnswer);
    c.insert(c.makeKey(q), std::span<const uint8_t>(gAnswer, a), 0);
  }
  uint64_t hits = 0;
  const double t0 = nowNs();
  for (size_t i = 0; i < trace.size(); ++i) {
    const size_t n = buildQuery(uint32_t(trace[i] % names), gQuery);
    dns::Query q;
    (void)dns::parseQuery(std::span<const uint8_t>(gQuery, n), &q);
    const cache::Key key = c.makeKey(q);
    hits += c.lookup(key, std::span<const uint8_t>(gQuery, n), q, 1, gOut, sizeof gOut).status ==
            cache::Status::kFresh;
  }
  const double t1 = nowNs();
  if (hits != trace.size()) std::printf("hit path: only %lu hits of %zu\n", (unsigned long)hits, trace.size());
  return (t1 - t0 - baselineNs) / double(trace.size());
}

double baseline(const std::vector<uint32_t>& trace) {
  cache::Cache c(cache::Config{});
  uint64_t x = 0;
  const double t0 = nowNs();
  for (size_t i = 0; i < trace.size(); ++i) {
    const size_t n = buildQuery(trace[i], gQuery);
    dns::Query q;
    (void)dns::parseQuery(std::span<const uint8_t>(gQuery, n), &q);
    x += c.makeKey(q).hash;
  }
  const double t1 = nowNs();
  gSink = x;
  return t1 - t0;
}

// S3-FIFO (Yang et al., SOSP '23), hit ratio only, as a reference point for the policies the
// cache implements: a small FIFO (10 %), a main FIFO (90 %) with up to 3 reinsertions, and a ghost
// FIFO of keys recently evicted from the small one (hits there go straight to main).
double s3fifoHitRatio(size_t capacity, const std::vector<uint32_t>& trace) {
  struct Obj { uint8_t freq; bool inMain; };
  std::unordered_map<uint32_t, Obj> objs;
  std::unordered_map<uint32_t, uint64_t> ghost;  // key -> ghost sequence number
  std::deque<uint32_t> small, main, ghostQ;
  const size_t smallCap = std::max<size_t>(1, capacity / 10), mainCap = capacity - smallCap;
  uint64_t hits = 0, ghostSeq = 0;
  auto evictMain = [&] {
    while (!main.empty()) {
      const uint32_t k = main.front();
      main.pop_front();
      Obj& o = objs[k];
      if (o.freq > 0) { --o.freq; main.push_back(k); continue; }
      objs.erase(k);
      return;
    }
  };
  auto evictSmall = [&] {
    while (!small.empty()) {
      const uint32_t k = small.front();
      small.pop_front();
      Obj& o = objs[k];
      if (o.freq > 0) {  // accessed again while in small: promote
        o.freq = 0; o.inMain = true; main.push_back(k);
        if (main.size() > mainCap) evictMain();
        continue;
      }
      objs.erase(k);
      ghost[k] = ++ghostSeq;
      ghostQ.push_back(k);
      while (ghostQ.size() > mainCap) {
        const uint32_t g = ghostQ.front();
        ghostQ.pop_front();
        auto it = ghost.find(g);
        if (it != ghost.end() && ghostQ.size() + 1 > mainCap) ghost.erase(it);
      }
      return;
    }
  };
  for (uint32_t k : trace) {
    auto it = objs.find(k);
    if (it != objs.end()) { ++hits; if (it->second.freq < 3) ++it->second.freq; continue; }
    if (small.size() + main.size() >= capacity) {
      if (small.size() >= smallCap || main.empty()) evictSmall(); else evictMain();
    }
    if (ghost.erase(k)) { objs[k] = {0, true}; main.push_back(k); }
    else { objs[k] = {0, false}; small.push_back(k); }
  }
  return double(hits) / double(trace.size());
}

void memory(size_t names, size_t records) {
  cache::Config cfg;
  cfg.maxEntries = names;
  cfg.maxBytes = size_t{1} << 30;
  const long before = rssKiB();
  size_t stored = 0;
  {
    cache::Cache c(cfg);
    for (uint32_t i = 0; i < names; ++i) {
      const size_t n = buildQuery(i, gQuery);
      dns::Query q;
      (void)dns::parseQuery(std::span<const uint8_t>(gQuery, n), &q);
      const size_t a = buildAnswer(gQuery, q.questionEnd, i, records, gAnswer);
      c.insert(c.makeKey(q), std::span<const uint8_t>(gAnswer, a), 0);
      stored = a - 11;  // without the upstream's OPT
    }
    const long after = rssKiB();
    std::printf("memory: %zu names x %zu A records (stored message %zu B): RSS +%.1f MiB, "
                "accounted (cache-max-bytes) %.1f MiB, %.0f B/entry RSS\n",
                names, records, stored,
                double(after - before) / 1024, double(c.bytes()) / 1048576.0,
                double(after - before) * 1024 / double(names));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const size_t requests = argc > 1 ? size_t(std::atol(argv[1])) : 2'000'000;
  const size_t universe = 1'000'000;
  std::printf("cache bench: %zu requests, universe %zu names, Zipf, seed 42\n", requests, universe);
  memory(100'000, 2);
  memory(100'000, 8);
  for (double alpha : {0.8, 1.0}) {
    const auto trace = zipfTrace(universe, alpha, requests, 42);
    const double base = baseline(trace);
    std::printf("alpha %.1f: baseline (build + parse + key) %.0f ns/op\n", alpha, base / double(requests));
    for (size_t cap : {size_t{10'000}, size_t{100'000}}) {
      for (auto p : {cache::Policy::kLru, cache::Policy::kSieve}) {
        const auto r = run(p, cap, trace, base);
        std::printf("  %-7s capacity %6zu: hit ratio %.4f, %.0f ns/op (lookup + insert on miss)\n",
                    p == cache::Policy::kLru ? "LRU" : "SIEVE", cap, r.hitRatio, r.nsPerOp);
      }
      std::printf("  %-7s capacity %6zu: hit ratio %.4f (simulated, not in the cache)\n", "S3-FIFO", cap,
                  s3fifoHitRatio(cap, trace));
    }
    if (alpha == 1.0) {
      for (auto p : {cache::Policy::kLru, cache::Policy::kSieve}) {
        std::printf("  %-7s hits only, 100000 cached: %.0f ns/lookup (copy, ID, case, aged TTLs, OPT)\n",
                    p == cache::Policy::kLru ? "LRU" : "SIEVE", hitPathNs(p, 100'000, trace, base));
      }
    }
  }
  return 0;
}
