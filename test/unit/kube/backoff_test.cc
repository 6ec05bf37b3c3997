// kube::backoffDelay_ms: exponential schedule, jitter bounds, cap, Retry-After.
#include "hdnsd/kube/backoff.h"

#include <doctest/doctest.h>

#include <random>

using hdnsd::kube::backoffDelay_ms;
using hdnsd::kube::BackoffPolicy;

TEST_CASE("backoff: doubles from the initial delay up to the cap (u = 1: no jitter taken off)") {
  BackoffPolicy p;  // 500 ms, x2, cap 30 s, jitter 0.5
  CHECK(backoffDelay_ms(p, 0, 1.0) == doctest::Approx(500));
  CHECK(backoffDelay_ms(p, 1, 1.0) == doctest::Approx(1000));
  CHECK(backoffDelay_ms(p, 5, 1.0) == doctest::Approx(16000));
  CHECK(backoffDelay_ms(p, 6, 1.0) == doctest::Approx(30000));
  CHECK(backoffDelay_ms(p, 1000000, 1.0) == doctest::Approx(30000));
}

TEST_CASE("backoff: jitter stays within [base * (1 - jitter), base] over many draws") {
  BackoffPolicy p;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  for (uint32_t attempt = 0; attempt < 12; ++attempt) {
    const double base = backoffDelay_ms(p, attempt, 1.0);
    double lo = 1e18, hi = 0;
    for (int i = 0; i < 2000; ++i) {
      double d = backoffDelay_ms(p, attempt, u(rng));
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    CHECK(lo >= base * 0.5);
    CHECK(hi <= base);
    CHECK(hi - lo > base * 0.4);  // the draws actually spread over the range
  }
}

TEST_CASE("backoff: Retry-After is honoured (never shorter, at most 10 % more) and capped") {
  BackoffPolicy p;
  CHECK(backoffDelay_ms(p, 0, 0.0, 7) == doctest::Approx(7000));
  CHECK(backoffDelay_ms(p, 9, 0.99, 7) <= 7700);
  CHECK(backoffDelay_ms(p, 9, 0.99, 7) >= 7000);
  CHECK(backoffDelay_ms(p, 0, 0.5, 0) == doctest::Approx(0));
  CHECK(backoffDelay_ms(p, 0, 0.5, 3600) == doctest::Approx(p.maxRetryAfter_ms));
}
