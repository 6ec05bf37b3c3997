// A small fast PRNG for the query path: xoshiro256** (Blackman & Vigna 2018), seeded through
// splitmix64 as its authors recommend. Not cryptographic: it only decides answer orders.
// One instance per Spreader (per loop thread); nothing here is shared between threads.
#pragma once

#include <cstdint>

namespace hdnsd::policy {

inline uint64_t splitmix64(uint64_t& x) noexcept {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A 64-bit mixer (the splitmix64 finaliser): hashes for rendezvous scores and counter slots.
inline uint64_t mix64(uint64_t x) noexcept {
  uint64_t s = x;
  return splitmix64(s);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) noexcept { reseed(seed); }
  void reseed(uint64_t seed) noexcept {
    for (auto& w : s_) w = splitmix64(seed);
  }
  uint64_t next() noexcept {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n >= 1 (Lemire's multiply-shift; the bias is below 2^-32 for our n).
  uint32_t below(uint32_t n) noexcept {
    return static_cast<uint32_t>(((next() >> 32) * static_cast<uint64_t>(n)) >> 32);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace hdnsd::policy
