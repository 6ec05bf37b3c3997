// Domain names. On the data path a name is a NameKey: the uncompressed, lower-cased wire
// form in a fixed 255-byte array (no allocation). Text conversion is for the control path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "hdnsd/util/result.h"

namespace hdnsd::dns {

inline constexpr size_t kMaxNameWire = 255;  // RFC 1035 2.3.4, including the root byte
inline constexpr size_t kMaxLabel = 63;
inline constexpr size_t kMaxPointerJumps = 64;  // more than any real name needs (127 labels)

enum class NameError : uint8_t {
  kTruncated,     // ran off the end of the message
  kLabelTooLong,  // label length byte 0x40..0x7F/0x80..0xBF: reserved label types (RFC 6891 5)
  kNameTooLong,   // more than 255 bytes once decompressed
  kBadPointer,    // a pointer that does not point strictly backwards
  kPointerLoop,   // too many jumps
};

// A lower-cased, uncompressed wire name, e.g. "\3web\4demo\3svc\7cluster\5local\0", and its
// hash (nameHash() of wire(), kept current by every mutator, so a cache or table can use it
// without walking the name again: readName computes it in the pass that copies the name).
class NameKey {
 public:
  NameKey() noexcept { clear(); }
  // Copies only the name's bytes (in whole words), not the whole 256-byte buffer.
  NameKey(const NameKey& o) noexcept { copyFrom(o); }
  NameKey& operator=(const NameKey& o) noexcept {
    if (this != &o) copyFrom(o);
    return *this;
  }
  void clear() noexcept {
    buf_[0] = 0;
    len_ = 1;
    labels_ = 0;
    hash_ = 0;  // nameHash of the root
  }
  std::string_view wire() const noexcept {
    return {reinterpret_cast<const char*>(buf_), len_};
  }
  const uint8_t* data() const noexcept { return buf_; }
  size_t size() const noexcept { return len_; }
  uint8_t labelCount() const noexcept { return labels_; }
  uint64_t hash() const noexcept { return hash_; }  // == nameHash(wire())
  // Offset of label `i` (0 = leftmost) in wire(); labelCount() gives the root.
  size_t labelOffset(size_t i) const noexcept;
  // Sets from wire bytes (validated, lower-cased). False if not a valid wire name.
  bool assignWire(std::string_view wire) noexcept;
  // Appends one label at the end (before the root). Used while decoding.
  bool appendLabel(const uint8_t* label, size_t len) noexcept;
  std::string text() const;  // "web.demo.svc.cluster.local."

 private:
  friend Result<size_t, NameError> readName(std::span<const uint8_t> msg, size_t pos, NameKey* out) noexcept;
  bool appendLabelNoHash(const uint8_t* label, size_t len) noexcept;
  void copyFrom(const NameKey& o) noexcept {
    const size_t n = o.len_;
    len_ = o.len_;
    labels_ = o.labels_;
    hash_ = o.hash_;
    for (size_t i = 0; i < n; i += 8) std::memcpy(buf_ + i, o.buf_ + i, 8);  // buf_: 256 bytes
  }

  // One byte more than the longest name: readName copies and hashes whole 8-byte words.
  uint8_t buf_[kMaxNameWire + 1];
  uint16_t len_;
  uint8_t labels_;
  uint64_t hash_;
};

// Reads the (possibly compressed) name at `pos` of `msg` into *out, lower-cased.
// Pointers must point strictly backwards (forward pointers and loops are rejected).
// Returns the offset just past the name where it stands (past the first pointer, if any).
Result<size_t, NameError> readName(std::span<const uint8_t> msg, size_t pos, NameKey* out) noexcept;

// Like readName but only validates and skips the name.
Result<size_t, NameError> skipName(std::span<const uint8_t> msg, size_t pos) noexcept;

// "web.demo.svc.cluster.local" or with the trailing dot; "." or "" is the root.
// Lower-cases. Supports \. and \DDD escapes. False on empty labels or over-long names.
bool textToWire(std::string_view text, std::string* wire);

// Presentation form with a trailing dot; bytes outside [-_a-z0-9A-Z] printed as \DDD.
std::string wireToText(std::string_view wire);

// True if lower-cased wire name `name` is `zone` or below it (label-aligned). The tail bytes are
// compared first, so a name outside the zone costs one short compare, not a walk of its labels.
bool isAtOrBelow(std::string_view name, std::string_view zone) noexcept;

// The seeded 64-bit hash of a lower-cased wire name (what NameKey::hash() holds; letter case
// does not change it). For hash tables keyed by names from clients (the answer cache), so the
// seed is random per process: without it a client cannot aim names at one bucket. One folded
// multiply per 8 bytes (h = fold(h ^ word, k1), h starting at k0 ^ length; fold: the 128-bit
// product with its halves XORed, the step of foldhash and wyhash), made while readName copies
// the name: the cache key cost ~250 instructions per query as SipHash-1-3 over a copy of the
// key, ~60 now (callgrind, bench/run). It is not a MAC and need not be: every table compares the
// full name after the hash (a collision costs a probe, never a wrong answer), and hash values
// never leave the process. The root name hashes to 0.
uint64_t nameHash(std::string_view lowerWire) noexcept;

// The 128-bit product of a and b with its halves XORed: nameHash's step, and how a table mixes
// a name's hash with more key fields (the cache: type, class, DO) under its own seed.
inline uint64_t foldedMultiply(uint64_t a, uint64_t b) noexcept {
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}

// Tests and fuzzers that want reproducible bucket order: call before any NameKey exists (one
// made earlier keeps a hash under the old seed). The daemon never calls it (seed: getrandom).
void setNameHashSeed(uint64_t k0, uint64_t k1) noexcept;

// ASCII lower-casing of one byte (DNS names are compared case-insensitively, RFC 4343).
inline constexpr uint8_t lowerAscii(uint8_t c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c + 32) : c;
}

}  // namespace hdnsd::dns
