// What timing every query costs: clock reads and one Histogram::observe, per call, in ns.
//   g++ -std=c++20 -O2 -Iinclude bench/ops/timing_cost.cc build/libhdnsd.a -o /tmp/timing_cost && /tmp/timing_cost
#include <cstdio>
#include <ctime>

#include "hdnsd/metrics/registry.h"
#include "hdnsd/ops/query_observer.h"

static double perCall(clockid_t id, int n) {
  timespec a, b, t;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; ++i) clock_gettime(id, &t);
  clock_gettime(CLOCK_MONOTONIC, &b);
  return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
}

int main() {
  const int n = 10'000'000;
  timespec res;
  clock_getres(CLOCK_MONOTONIC_COARSE, &res);
  std::printf("clock_gettime(CLOCK_MONOTONIC)        %.1f ns/call\n", perCall(CLOCK_MONOTONIC, n));
  std::printf("clock_gettime(CLOCK_MONOTONIC_COARSE) %.1f ns/call (resolution %ld ns)\n",
              perCall(CLOCK_MONOTONIC_COARSE, n), res.tv_nsec);
  hdnsd::metrics::Registry reg;
  hdnsd::ops::QueryObserver obs(reg);
  hdnsd::ops::QueryEvent e;
  e.source = hdnsd::ops::Source::kView;
  timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; ++i) {
    e.received_ns = hdnsd::ops::monotonicNs();  // what respond() does
    obs.onQuery(e);                             // a second clock read + observe()
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  std::printf("receipt stamp + onQuery (2 clock reads + observe, log off) %.1f ns/query\n",
              ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
}
