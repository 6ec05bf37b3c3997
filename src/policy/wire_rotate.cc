// In-place rotation of address RRsets in a wire message (data path: noexcept, no allocation).
// See include/hdnsd/policy/wire_rotate.h for why whole-record moves are safe.
#include "hdnsd/policy/wire_rotate.h"

#include <algorithm>

#include "hdnsd/dns/wire.h"
#include "hdnsd/policy/spreader.h"

namespace hdnsd::policy {

namespace detail {
namespace {

// Skips a (possibly compressed) name at `*pos`; false if it runs past the end or is malformed.
bool skipName(std::span<const uint8_t> msg, size_t* pos) noexcept {
  size_t p = *pos;
  for (int labels = 0; labels < 128; ++labels) {
    if (p >= msg.size()) return false;
    const uint8_t len = msg[p];
    if ((len & 0xC0) == 0xC0) {
      if (p + 2 > msg.size()) return false;
      *pos = p + 2;
      return true;
    }
    if ((len & 0xC0) != 0) return false;  // 0x40 / 0x80: reserved label types
    if (len == 0) {
      *pos = p + 1;
      return true;
    }
    p += 1 + len;
  }
  return false;
}

// The fixed part of a record after its owner: type, class, TTL, RDLENGTH (RFC 1035 4.1.3).
constexpr size_t kRrFixed = 10;

}  // namespace

bool answerStart(std::span<const uint8_t> msg, size_t* cursor, size_t* ancount) noexcept {
  if (msg.size() < dns::kHeaderSize) return false;
  const uint16_t qd = dns::getU16(msg.data() + 4);
  size_t p = dns::kHeaderSize;
  for (uint16_t i = 0; i < qd; ++i) {
    if (!skipName(msg, &p) || p + 4 > msg.size()) return false;
    p += 4;
  }
  *cursor = p;
  *ancount = dns::getU16(msg.data() + 6);
  return true;
}

bool nextAddressRun(std::span<const uint8_t> msg, size_t* cursor, size_t* recordsLeft,
                    AddressRun* run) noexcept {
  size_t p = *cursor;
  while (*recordsLeft > 0) {
    const size_t start = p;
    if (!skipName(msg, &p) || p + kRrFixed > msg.size()) return false;
    const uint16_t type = dns::getU16(msg.data() + p);
    const uint16_t cls = dns::getU16(msg.data() + p + 2);
    const uint16_t rdlen = dns::getU16(msg.data() + p + 8);
    p += kRrFixed + rdlen;
    if (p > msg.size()) return false;
    --*recordsLeft;
    // A run starts with an address record whose owner is one pointer to an earlier name.
    const bool pointerOwner = p - start == 2 + kRrFixed + rdlen && (msg[start] & 0xC0) == 0xC0 &&
                              (dns::getU16(msg.data() + start) & 0x3FFF) < start;
    const bool address = cls == dns::kClassIN && ((type == dns::kTypeA && rdlen == 4) ||
                                                  (type == dns::kTypeAAAA && rdlen == 16));
    if (!pointerOwner || !address) continue;
    const size_t size = p - start;
    size_t count = 1;
    // Extend while the next record is byte-identical in owner, type and class (same size).
    while (*recordsLeft > 0 && p + size <= msg.size() &&
           std::equal(msg.begin() + static_cast<ptrdiff_t>(start),
                      msg.begin() + static_cast<ptrdiff_t>(start + 6),
                      msg.begin() + static_cast<ptrdiff_t>(p)) &&
           dns::getU16(msg.data() + p + 10) == rdlen) {
      p += size;
      --*recordsLeft;
      ++count;
    }
    if (count < 2) continue;
    *cursor = p;
    *run = {start, size, count};
    return true;
  }
  *cursor = p;
  return false;
}

void rotateRun(std::span<uint8_t> msg, const AddressRun& run, size_t shift) noexcept {
  auto first = msg.begin() + static_cast<ptrdiff_t>(run.begin);
  std::rotate(first, first + static_cast<ptrdiff_t>(shift * run.recordSize),
              first + static_cast<ptrdiff_t>(run.count * run.recordSize));
}

}  // namespace detail

bool rotateRecords(std::span<uint8_t> msg, std::span<const uint16_t> bounds, size_t shift) noexcept {
  if (bounds.size() < 2) return true;  // zero records: nothing to do
  for (size_t i = 1; i < bounds.size(); ++i)
    if (bounds[i] <= bounds[i - 1]) return false;
  if (bounds.back() > msg.size()) return false;
  const size_t n = bounds.size() - 1;
  shift %= n;
  if (shift == 0) return true;
  std::rotate(msg.begin() + bounds[0], msg.begin() + bounds[shift], msg.begin() + bounds[n]);
  return true;
}

size_t rotateForwardedAnswer(std::span<uint8_t> msg, Spreader& spreader, uint64_t qnameHash) noexcept {
  const Kind k = spreader.options().kind;
  if (k != Kind::kRoundRobin && k != Kind::kRandom) return 0;  // nothing to walk for
  return rotateAddressRuns(msg, [&](size_t n) { return spreader.forwardedShift(qnameHash, n); });
}

}  // namespace hdnsd::policy
