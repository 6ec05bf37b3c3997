// Rotating cached A/AAAA RRsets in the output buffer (see include/hdnsd/policy/forwarded.h).
#include "hdnsd/policy/forwarded.h"

namespace hdnsd::policy {

size_t rotateCachedAnswer(std::span<uint8_t> msg, const cache::LookupResult& r, Spreader& spreader,
                          uint64_t qnameHash) noexcept {
  const Kind k = spreader.options().kind;
  if (k != Kind::kRoundRobin && k != Kind::kRandom) return 0;
  size_t rotated = 0;
  const size_t n = r.rrsetCount < r.rrsets.size() ? r.rrsetCount : r.rrsets.size();
  for (size_t i = 0; i < n; ++i) {
    const cache::RrsetSpan& s = r.rrsets[i];
    if (s.count < 2 || size_t(s.offset) + size_t(s.count) * s.recordSize > msg.size()) continue;
    // A and AAAA of one name keep separate counters (the type is mixed into the key).
    const uint32_t shift = spreader.forwardedShift(qnameHash ^ (uint64_t(s.type) << 48), s.count);
    if (shift == 0) continue;
    cache::rotateRrset(msg, s, shift);
    ++rotated;
  }
  return rotated;
}

}  // namespace hdnsd::policy
