// The hook that applies load spreading to forwarded answers served from the cache (issue 5
// part 4): the cache's lookup() reports where the A/AAAA RRsets of the answer it wrote lie
// (cache::LookupResult::rrsets, each safe to permute), and this rotates them in the output
// buffer. Data path: no allocation, nothing throws, the cache entry itself is never touched.
//
// Call it on a kFresh or kStale hit, after lookup() filled `out` and before the answer is sent:
//
//   auto r = cache.lookup(..., out, ...);
//   if (r.status != cache::Status::kMiss && !r.truncated)
//     policy::rotateCachedAnswer(out.first(r.size), r, responder.spreader(), keyHash);
//
// `qnameHash`: any stable 64-bit hash of the lower-cased question name (the cache key's hash):
// under round-robin each name rotates on its own counter; under random the offset is random;
// under the other policies (no per-record data for names outside the cluster) nothing moves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "hdnsd/cache/cache.h"
#include "hdnsd/policy/spreader.h"

namespace hdnsd::policy {

// Returns how many RRsets were rotated.
size_t rotateCachedAnswer(std::span<uint8_t> msg, const cache::LookupResult& r, Spreader& spreader,
                          uint64_t qnameHash) noexcept;

}  // namespace hdnsd::policy
