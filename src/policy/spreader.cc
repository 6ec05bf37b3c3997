// Answer-time ordering (data path: noexcept, no allocation). See include/hdnsd/policy/spreader.h.
#include "hdnsd/policy/spreader.h"

#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>

namespace hdnsd::policy {

namespace {

// A float key as an unsigned integer with the same order (IEEE 754 sign-magnitude → biased).
uint32_t orderable(float f) noexcept {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// A uniform float in (0, 1) from 23 random bits: never 0 (log would be -inf for every weight)
// and never 1 (log 0 times an infinite inverse weight would be NaN).
float unitOpen(uint64_t r) noexcept {
  return (static_cast<float>(r >> 41) + 0.5f) * (1.0f / 8388608.0f);
}

// Sort key: the 32-bit score high, the record index low (inverted: on equal scores the record
// stored first wins), so one descending sort of uint64 orders by score then by stored order.
uint64_t composite(uint32_t score, uint32_t index) noexcept {
  return (static_cast<uint64_t>(score) << 32) | (0xFFFFFFFFu - index);
}

uint64_t hashBytes(std::span<const uint8_t> b) noexcept {
  uint64_t h = 0x6A09E667F3BCC908ull ^ b.size();
  for (uint8_t c : b) h = mix64(h ^ c);
  return h;
}

uint64_t entropySeed() noexcept {
  uint64_t s = 0;
  if (getrandom(&s, sizeof s, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof s) || s == 0) {
    // No entropy yet (early boot): the clock and an address still differ per process.
    s = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
        reinterpret_cast<uintptr_t>(&s);
  }
  return s;
}

}  // namespace

std::optional<Kind> parseKind(std::string_view s) noexcept {
  if (s == "none") return Kind::kNone;
  if (s == "round-robin") return Kind::kRoundRobin;
  if (s == "random") return Kind::kRandom;
  if (s == "weighted") return Kind::kWeighted;
  if (s == "topology") return Kind::kTopology;
  if (s == "consistent") return Kind::kConsistent;
  return std::nullopt;
}

const char* kindName(Kind k) noexcept {
  switch (k) {
    case Kind::kNone: return "none";
    case Kind::kRoundRobin: return "round-robin";
    case Kind::kRandom: return "random";
    case Kind::kWeighted: return "weighted";
    case Kind::kTopology: return "topology";
    case Kind::kConsistent: return "consistent";
  }
  return "none";
}

Spreader::Spreader(const SpreaderOptions& opts) noexcept : opts_(opts) {
  rng_.reseed(opts.seed != 0 ? opts.seed : entropySeed());
}

void Spreader::setOptions(const SpreaderOptions& opts) noexcept {
  const uint64_t seed = opts_.seed;
  opts_ = opts;
  if (opts.seed != 0 && opts.seed != seed) rng_.reseed(opts.seed);
}

void Spreader::claim(Slot& s, uint32_t tag) noexcept {
  s.tag = tag;
  s.count = static_cast<uint32_t>(rng_.next() >> 32);  // a random start: no herd on record 0
}

uint32_t Spreader::forwardedShift(uint64_t nameHash, size_t n) noexcept {
  if (n < 2) return 0;
  switch (opts_.kind) {
    case Kind::kRoundRobin: return static_cast<uint32_t>(nextCount(mix64(nameHash) | 1) % n);
    case Kind::kRandom: return rng_.below(static_cast<uint32_t>(n));
    default: return 0;
  }
}

size_t Spreader::sortByKeys(size_t m, size_t k, std::span<uint32_t> out) noexcept {
  // partial_sort (a heap) is O(m log k) and wins for a small cap (--max-answers 8 over 300
  // records); for most of the set, introsort is ~4x faster than a heap (measured: 300 records
  // fully ordered, 13 µs with partial_sort).
  auto first = keys_.begin(), last = keys_.begin() + static_cast<ptrdiff_t>(m);
  if (k * 4 >= m)
    std::sort(first, last, std::greater<uint64_t>());
  else
    std::partial_sort(first, first + static_cast<ptrdiff_t>(k), last, std::greater<uint64_t>());
  for (size_t i = 0; i < k; ++i) out[i] = 0xFFFFFFFFu - static_cast<uint32_t>(keys_[i]);
  return k;
}

size_t Spreader::order(const SetSpread& s, size_t n, std::span<const uint8_t> client,
                       std::span<uint32_t> out) noexcept {
  const Rotation r = rotation(s, n, out.size());
  if (r.count == 0) return 0;
  if (r.rotates() || n == 1) {  // none, round-robin: a rotation by r.first
    for (size_t i = 0, j = r.first; i < r.count; ++i, j = j + 1 == n ? 0 : j + 1) out[i] = static_cast<uint32_t>(j);
    return r.count;
  }
  return orderBy(r.kind, s, n, std::min(n, kMaxOrdered), r.count, client, out);
}

size_t Spreader::orderBy(Kind kind, const SetSpread& s, size_t n, size_t m, size_t k,
                         std::span<const uint8_t> client, std::span<uint32_t> out) noexcept {
  // The other policies order a window of m candidates; for n <= kMaxOrdered it is every
  // record, for bigger sets it moves on by one per query.
  const size_t wstart = n > m ? nextCount(s.key) % n : 0;
  auto cand = [&](size_t j) { return static_cast<uint32_t>((wstart + j) % n); };
  const bool weighted = s.invWeights.size() == n;

  switch (kind) {
    case Kind::kRandom: {
      // Fisher–Yates, stopped after the k positions we answer with.
      for (size_t j = 0; j < m; ++j) cand_[j] = cand(j);
      for (size_t i = 0; i < k; ++i) {
        const size_t r = i + rng_.below(static_cast<uint32_t>(m - i));
        std::swap(cand_[i], cand_[r]);
        out[i] = cand_[i];
      }
      return k;
    }
    case Kind::kWeighted: {
      // Efraimidis & Spirakis (2006): the largest u^(1/w) first; ln(u)/w has the same order
      // and costs one logf. P(first = i) = w_i / sum(w); weight 0 (1/w = inf) goes last.
      for (size_t j = 0; j < m; ++j) {
        const uint32_t idx = cand(j);
        const float key = std::log(unitOpen(rng_.next())) * (weighted ? s.invWeights[idx] : 1.0f);
        keys_[j] = composite(orderable(key), idx);
      }
      return sortByKeys(m, k, out);
    }
    case Kind::kConsistent: {
      // Rendezvous hashing (Thaler & Ravishankar 1998): score(client, endpoint), highest
      // first. Weighted: the logarithmic method, score = -w / ln(h), ordered like ln(h) / w.
      const uint64_t c = hashBytes(client);
      const bool haveIds = s.ids.size() == n;
      for (size_t j = 0; j < m; ++j) {
        const uint32_t idx = cand(j);
        const uint64_t h = mix64(c ^ (haveIds ? s.ids[idx] : mix64(idx)));
        const uint32_t score =
            weighted ? orderable(std::log(unitOpen(h)) * s.invWeights[idx]) : static_cast<uint32_t>(h >> 32);
        keys_[j] = composite(score, idx);
      }
      return sortByKeys(m, k, out);
    }
    case Kind::kTopology: {
      // Stable partition by tier, each tier rotated by the name's counter: O(m), two passes.
      const bool haveTiers = s.tiers.size() == n;
      auto tierOf = [&](uint32_t idx) -> size_t {
        const uint8_t t = haveTiers ? s.tiers[idx] : kTierOther;
        return t < kTierCount ? t : kTierOther;
      };
      size_t count[kTierCount] = {}, offset[kTierCount] = {}, rot[kTierCount] = {},
             seen[kTierCount] = {};
      for (size_t j = 0; j < m; ++j) ++count[tierOf(cand(j))];
      const uint32_t c = nextCount(s.key);
      for (size_t t = 0, at = 0; t < kTierCount; ++t) {
        offset[t] = at;
        at += count[t];
        rot[t] = count[t] ? c % count[t] : 0;
      }
      for (size_t j = 0; j < m; ++j) {
        const uint32_t idx = cand(j);
        const size_t t = tierOf(idx);
        const size_t pos = offset[t] + (seen[t]++ + count[t] - rot[t]) % count[t];
        if (pos < k) out[pos] = idx;
      }
      return k;
    }
    default:
      break;
  }
  for (size_t i = 0; i < k; ++i) out[i] = static_cast<uint32_t>(i);
  return k;
}

}  // namespace hdnsd::policy
