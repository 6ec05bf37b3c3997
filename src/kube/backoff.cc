#include "hdnsd/kube/backoff.h"

#include <algorithm>
#include <cmath>

namespace hdnsd::kube {

double backoffDelay_ms(const BackoffPolicy& p, uint32_t attempt, double u, long retryAfter_s) noexcept {
  u = std::clamp(u, 0.0, 1.0);
  if (retryAfter_s >= 0) {
    const double asked = double(retryAfter_s) * 1000;
    return std::min(asked * (1 + 0.1 * u), p.maxRetryAfter_ms);
  }
  // initial * factor^attempt, computed without overflow for large attempt counts.
  double base = p.initial_ms;
  for (uint32_t i = 0; i < attempt && base < p.max_ms; ++i) base *= p.factor;
  base = std::min(base, p.max_ms);
  return base * (1 - p.jitter * (1 - u));
}

}  // namespace hdnsd::kube
