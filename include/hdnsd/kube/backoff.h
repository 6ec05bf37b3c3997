// Retry delays for the API watch: exponential with jitter, capped, and Retry-After honoured.
// Pure: the random draw is passed in (tests pin it; the source draws from its own Rng).
#pragma once

#include <cstdint>

namespace hdnsd::kube {

struct BackoffPolicy {
  double initial_ms = 500;   // first retry
  double max_ms = 30'000;    // cap of the exponential part
  double factor = 2;
  double jitter = 0.5;       // the delay is drawn from [base * (1 - jitter), base]
  double maxRetryAfter_ms = 300'000;  // a server's Retry-After is believed up to this
};

// The delay before retry number `attempt` (0 = first retry after a failure), for a uniform draw
// u in [0, 1). With retryAfter_s >= 0 (a 429 or 503 that said so) the delay is that many
// seconds plus up to 10 % jitter (so a fleet of nodes does not come back in step), capped at
// maxRetryAfter_ms (below the cap it is never shorter than what the server asked).
double backoffDelay_ms(const BackoffPolicy& p, uint32_t attempt, double u, long retryAfter_s = -1) noexcept;

}  // namespace hdnsd::kube
