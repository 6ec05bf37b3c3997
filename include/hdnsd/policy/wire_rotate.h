// Rotating the address RRsets of a forwarded (cached) answer in place, in the output buffer,
// like Unbound's rrset-roundrobin: bytes in, bytes out, no allocation, nothing throws.
//
// The hook for the forwarding path (call it on the copy of a cached answer, after the ID and
// qname case are restored and before TTLs are aged or the answer is sent; it touches neither):
//
//   policy::rotateForwardedAnswer(std::span<uint8_t>(buf, len), responder.spreader(), qnameHash);
//
// `qnameHash` is any stable 64-bit hash of the lower-cased question name (e.g. the cache key's
// hash): under round-robin each name keeps its own rotation counter.
//
// Why moving whole records is safe: the records of one RRset have the same owner, type and
// class, and an A/AAAA record's RDATA holds no name. A run is only rotated when every record's
// owner is a 2-byte compression pointer to a name BEFORE the run (the question, or a CNAME's
// RDATA), so no pointer anywhere can point into the bytes that move, and the moved records
// still point where they did. Anything else (an owner written out in full, which later records
// may point into) is left alone: the answer goes out in the order it came.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace hdnsd::policy {

class Spreader;

// Rotates the `n` records that lie between the byte offsets bounds[0] < bounds[1] < ... <
// bounds[n] of `msg` so that record `shift % n` comes first (a byte-range std::rotate).
// For callers that already know the record boundaries (the cache keeps them per entry).
// Returns false and leaves `msg` unchanged if the bounds are not increasing or leave `msg`.
bool rotateRecords(std::span<uint8_t> msg, std::span<const uint16_t> bounds, size_t shift) noexcept;

// Walks the answer section of the complete DNS message `msg` and rotates every run of two or
// more consecutive A (or AAAA) records of class IN with the same owner pointer, each by
// shiftFor(n) records. Returns the number of runs rotated; 0 if the message does not parse
// (it is left as it was).
template <class ShiftFn>
size_t rotateAddressRuns(std::span<uint8_t> msg, ShiftFn&& shiftFor) noexcept;

// The hook: rotateAddressRuns with the Spreader's forwarded-answer shift (round-robin: the
// per-name counter; random: a random offset; other policies: no change).
size_t rotateForwardedAnswer(std::span<uint8_t> msg, Spreader& spreader, uint64_t qnameHash) noexcept;

namespace detail {
// One run found by the walk: `count` records of `recordSize` bytes each from byte `begin`.
struct AddressRun {
  size_t begin = 0, recordSize = 0, count = 0;
};
// Finds the next run at or after the answer record `*cursor` (an opaque walk state, start at 0).
// Returns false at the end of the answer section or on a parse error.
bool nextAddressRun(std::span<const uint8_t> msg, size_t* cursor, size_t* recordsLeft,
                    AddressRun* run) noexcept;
bool answerStart(std::span<const uint8_t> msg, size_t* cursor, size_t* ancount) noexcept;
void rotateRun(std::span<uint8_t> msg, const AddressRun& run, size_t shift) noexcept;
}  // namespace detail

template <class ShiftFn>
size_t rotateAddressRuns(std::span<uint8_t> msg, ShiftFn&& shiftFor) noexcept {
  size_t cursor = 0, left = 0, rotated = 0;
  if (!detail::answerStart(msg, &cursor, &left)) return 0;
  detail::AddressRun run;
  while (detail::nextAddressRun(msg, &cursor, &left, &run)) {
    const size_t shift = shiftFor(run.count) % run.count;
    if (shift == 0) continue;
    detail::rotateRun(msg, run, shift);
    ++rotated;
  }
  return rotated;
}

}  // namespace hdnsd::policy
