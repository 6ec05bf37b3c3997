// The answer-time half of load spreading: given an RRset's precomputed SetSpread, choose which
// records go into this answer and in what order. One Spreader per Responder, i.e. per loop
// thread: its round-robin counters and its RNG are plain (non-atomic) state of that thread,
// which is why the shared, immutable Snapshot never holds a mutable counter.
//
// No allocation, nothing throws: the order is written into a caller's array (the responder
// keeps it on its stack), keys for the sorting policies live in a member array.
//
// Round-robin counters: a fixed table of kCounterSlots slots indexed by the low bits of the
// RRset's key (a hash of owner name and type), each tagged with the high bits. A name that
// finds its slot taken by another name takes it over and starts at a random offset, so two
// names colliding degrade to random order, never to a fixed one. Counters survive view
// updates (the key depends on the name only), so a rotation does not restart on every change.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "hdnsd/policy/rng.h"
#include "hdnsd/policy/spread.h"

namespace hdnsd::policy {

struct SpreaderOptions {
  Kind kind = kDefaultKind;  // --policy
  uint32_t maxAnswers = 0;   // --max-answers; 0: every record
  uint64_t seed = 0;         // 0: seeded from the system's entropy (tests inject a fixed seed)
};

class Spreader {
 public:
  static constexpr size_t kCounterSlots = 4096;

  explicit Spreader(const SpreaderOptions& opts = {}) noexcept;
  // Reload: the policy and the cap change; counters and the RNG state stay.
  void setOptions(const SpreaderOptions& opts) noexcept;
  const SpreaderOptions& options() const noexcept { return opts_; }

  // Writes the indices (into the RRset's stored records) to answer with, best first, into
  // `out` and returns how many: min(n, kMaxOrdered, the max-answers cap, out.size()).
  // `client` is the raw client address (4 or 16 bytes; empty if unknown: consistent then
  // orders as for a client with address ""). noexcept, no allocation.
  size_t order(const SetSpread& s, size_t n, std::span<const uint8_t> client,
               std::span<uint32_t> out) noexcept;

  // What order() starts from: how many records to answer with (at most `limit`), and, for the
  // policies that only rotate the stored order (none, round-robin), the rotation: record
  // (first + i) % n goes i-th. A caller can walk such a rotation without an order array; for
  // the others (rotates() false) it calls order(). Advances the round-robin counter.
  struct Rotation {
    size_t count = 0;
    size_t first = 0;
    Kind kind = Kind::kNone;
    bool rotates() const noexcept { return kind == Kind::kNone || kind == Kind::kRoundRobin; }
  };
  Rotation rotation(const SetSpread& s, size_t n, size_t limit = kMaxOrdered) noexcept {
    Rotation r;
    if (n == 0 || limit == 0) return r;
    r.count = std::min({n, kMaxOrdered, limit});
    r.kind = s.managed ? kindFor(s) : Kind::kNone;
    if (s.managed) {
      const uint32_t cap = s.maxAnswers != 0 ? s.maxAnswers : opts_.maxAnswers;
      if (cap != 0 && cap < r.count) r.count = cap;
    }
    if (r.kind == Kind::kRoundRobin && n > 1) r.first = nextCount(s.key) % n;
    return r;
  }

  // The policy in force for a set (the service's override, else the global one).
  Kind kindFor(const SetSpread& s) const noexcept { return s.kind ? *s.kind : opts_.kind; }

  // How far to rotate the address RRsets of a forwarded (cached) answer with `n` records:
  // round-robin: the per-name counter of `nameHash`; random: a random offset; other policies
  // (no per-record data for names outside the cluster): 0, stored order.
  uint32_t forwardedShift(uint64_t nameHash, size_t n) noexcept;

  // Counter for a key (exposed for tests): returns the current value and advances it.
  uint32_t nextCount(uint64_t key) noexcept {
    Slot& s = counters_[key % kCounterSlots];
    const uint32_t tag = static_cast<uint32_t>(key >> 32) | 1u;  // 0 marks a never-used slot
    if (s.tag != tag) claim(s, tag);
    return s.count++;
  }

 private:
  struct Slot {
    uint32_t tag = 0;
    uint32_t count = 0;
  };
  void claim(Slot& s, uint32_t tag) noexcept;  // a slot for a new key
  // order() for the policies that sort or partition (all but none and round-robin).
  size_t orderBy(Kind kind, const SetSpread& s, size_t n, size_t m, size_t k, std::span<const uint8_t> client,
                 std::span<uint32_t> out) noexcept;
  size_t sortByKeys(size_t m, size_t k, std::span<uint32_t> out) noexcept;

  SpreaderOptions opts_;
  Rng rng_;
  std::array<Slot, kCounterSlots> counters_{};
  std::array<uint64_t, kMaxOrdered> keys_;  // scratch for weighted / consistent (32 KiB)
  std::array<uint32_t, kMaxOrdered> cand_;  // scratch: candidate window (16 KiB)
};

}  // namespace hdnsd::policy
