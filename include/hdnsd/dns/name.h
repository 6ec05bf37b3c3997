// Domain names. On the data path a name is a NameKey: the uncompressed, lower-cased wire
// form in a fixed 255-byte array (no allocation). Text conversion is for the control path.
#pragma once

#include <cstddef>
#include <cstdint>
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

// A lower-cased, uncompressed wire name, e.g. "\3web\4demo\3svc\7cluster\5local\0".
class NameKey {
 public:
  NameKey() noexcept { clear(); }
  void clear() noexcept {
    buf_[0] = 0;
    len_ = 1;
    labels_ = 0;
  }
  std::string_view wire() const noexcept {
    return {reinterpret_cast<const char*>(buf_), len_};
  }
  const uint8_t* data() const noexcept { return buf_; }
  size_t size() const noexcept { return len_; }
  uint8_t labelCount() const noexcept { return labels_; }
  // Offset of label `i` (0 = leftmost) in wire(); labelCount() gives the root.
  size_t labelOffset(size_t i) const noexcept;
  // Sets from wire bytes (validated, lower-cased). False if not a valid wire name.
  bool assignWire(std::string_view wire) noexcept;
  // Appends one label at the end (before the root). Used while decoding.
  bool appendLabel(const uint8_t* label, size_t len) noexcept;
  std::string text() const;  // "web.demo.svc.cluster.local."

 private:
  uint8_t buf_[kMaxNameWire];
  uint16_t len_;
  uint8_t labels_;
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

// True if lower-cased wire name `name` is `zone` or below it (label-aligned).
bool isAtOrBelow(std::string_view name, std::string_view zone) noexcept;

// ASCII lower-casing of one byte (DNS names are compared case-insensitively, RFC 4343).
inline constexpr uint8_t lowerAscii(uint8_t c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c + 32) : c;
}

}  // namespace hdnsd::dns
