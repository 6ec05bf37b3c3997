// Building a response in a caller-owned buffer, with name compression (RFC 1035 4.1.4).
// No allocation: the compression table is a fixed array of offsets into the message.
//
// Typical use (the owner of answer records is the question, written as a pointer to it):
//   ResponseWriter w(buf);
//   w.start(pkt, query, limit);                      // header + question as asked
//   auto m = w.mark();
//   for (...) if (!w.addRecord(Section::kAnswer, Owner::question(), kTypeA, ttl, rd)) {
//     w.rollback(m); w.setFlags(kFlagTC); break;     // no partial RRset on the wire
//   }
//   w.finish();                                       // OPT (if the query had EDNS) + counts
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"

namespace hdnsd::dns {

enum class Section : uint8_t { kAnswer = 0, kAuthority = 1, kAdditional = 2 };

// How to write a record's RDATA. Names in RDATA are given in uncompressed wire form.
enum class RdataKind : uint8_t {
  kOpaque,  // bytes as they are (A, AAAA, TXT, and SRV: RFC 2782 forbids compressing its target)
  kName,    // the whole RDATA is one name, compressible (CNAME, PTR, NS: RFC 3597 4)
  kSoa,     // two names (compressible) then 20 bytes of serial/refresh/retry/expire/minimum
};

struct RdataView {
  std::string_view bytes;  // uncompressed wire form
  RdataKind kind = RdataKind::kOpaque;
};

// The owner of a record: the question's name (a 2-byte pointer to offset 12, which keeps the
// client's letter case), or another name in uncompressed wire form (compressed if possible).
struct Owner {
  std::string_view wire;  // empty: the question
  static Owner question() noexcept { return {}; }
  static Owner name(std::string_view w) noexcept { return {w}; }
};

class ResponseWriter {
 public:
  static constexpr size_t kMaxCompressionTargets = 64;

  explicit ResponseWriter(std::span<uint8_t> buf) noexcept : buf_(buf) {}

  // Writes the header (ID, opcode, RD and CD copied from the query; QR set) and copies the
  // question bytes [12, q.questionEnd) exactly as asked. `limit` caps the message size
  // (UDP: the client's size; TCP: 65535); the OPT record's room is reserved when q has EDNS.
  // Returns false if even that does not fit (then nothing useful was written).
  bool start(std::span<const uint8_t> query, const Query& q, size_t limit) noexcept;

  // A reply without the question (FORMERR for a packet whose question could not be parsed,
  // QDCOUNT != 1): ID, opcode and RD copied from the 12-byte header of `query`.
  bool startHeaderOnly(std::span<const uint8_t> query, size_t limit) noexcept;

  void setRcode(Rcode rc) noexcept;        // low 4 bits in the header; high bits go into OPT
  void setFlags(uint16_t bits) noexcept {  // OR into the header flags (AA, TC, RA)
    if (pos_ < kHeaderSize) return;
    uint8_t* f = buf_.data() + kOffFlags;
    putU16(f, static_cast<uint16_t>(getU16(f) | bits));
  }
  void clearFlags(uint16_t bits) noexcept;

  // Appends one record; false (and nothing written) if it does not fit in the limit.
  bool addRecord(Section s, Owner owner, uint16_t type, uint16_t cls, uint32_t ttl_s,
                 RdataView rdata) noexcept;

  // Appends one record whose RDATA holds no name to compress (A, AAAA, TXT, SRV), given as
  // `tail`: the bytes that follow the owner name on the wire (TYPE CLASS TTL RDLENGTH RDATA,
  // e.g. compiled ahead by the cluster view), copied as they are. `nameAt` > 0: an SRV target
  // (uncompressed, RFC 2782) starts at tail[nameAt]; like addRecord, it becomes a compression
  // target for later names. The same bytes as addRecord; false (nothing written) if it does
  // not fit.
  bool addRecordWire(Section s, Owner owner, std::span<const uint8_t> tail, size_t nameAt = 0) noexcept;

  // A whole RRset of n such records (all or none: a partial RRset must never reach a client,
  // RFC 2181 5), the i-th tail given by tailOf(i); `fixedSize`: every tail has this size (0:
  // not known). With the question as owner (the usual answer) this is the data path's loop:
  // per record a 2-byte pointer and one copy.
  template <class TailOf>
  bool addRRsetWire(Section s, Owner owner, size_t n, TailOf&& tailOf, size_t nameAt = 0,
                    size_t fixedSize = 0) noexcept;

  // Sections must be written in order (answer, authority, additional).
  struct Mark {
    size_t pos;
    uint16_t counts[3];
    size_t targets;
  };
  Mark mark() const noexcept { return Mark{pos_, {counts_[0], counts_[1], counts_[2]}, targetCount_}; }
  void rollback(const Mark& m) noexcept;

  // Adds the OPT record (if the query had EDNS: our UDP size, DO echoed) and writes the counts.
  // Returns the message size.
  size_t finish() noexcept;

  // Our advertised EDNS UDP payload size (RFC 9715 / DNS flag day 2020 suggests 1232).
  void setEdnsUdpSize(uint16_t s) noexcept { ednsUdpSize_ = s; }

  size_t size() const noexcept { return pos_; }
  uint16_t count(Section s) const noexcept { return counts_[static_cast<int>(s)]; }
  std::span<const uint8_t> bytes() const noexcept { return buf_.first(pos_); }

 private:
  bool writeName(std::string_view wire, bool compress) noexcept;  // appends at pos_
  bool writeOwner(Section s, Owner owner) noexcept;  // the checks of a new record + its owner
  // n more records with the question as owner: sections in order, the count fits, there is
  // a question to point to.
  bool canAdd(Section s, size_t n) const noexcept {
    const size_t si = static_cast<size_t>(s);
    if (si > 2 || pos_ < kHeaderSize) return false;
    if ((si < 2 && counts_[2] != 0) || (si < 1 && counts_[1] != 0)) return false;
    return size_t{counts_[si]} + n <= 0xFFFF && getU16(buf_.data() + kOffQd) == 1;
  }
  void registerName(size_t at) noexcept;              // a name at `at` later names may point to
  // Copies a record tail: most are 14 (A), 26 (AAAA) or under 64 bytes (SRV), where a call to
  // memcpy costs more than the copy.
  static void copyTail(uint8_t* dst, const uint8_t* src, size_t n) noexcept {
    if (n >= 8 && n <= 32) {
      uint64_t a, b, c, d;
      std::memcpy(&a, src, 8);
      std::memcpy(&b, src + (n - 8), 8);
      if (n > 16) {
        std::memcpy(&c, src + 8, 8);
        std::memcpy(&d, src + (n - 16), 8);
        std::memcpy(dst + 8, &c, 8);
        std::memcpy(dst + (n - 16), &d, 8);
      }
      std::memcpy(dst, &a, 8);
      std::memcpy(dst + (n - 8), &b, 8);
      return;
    }
    std::memcpy(dst, src, n);
  }
  bool room(size_t n) const noexcept { return pos_ + n <= limit_; }

  std::span<uint8_t> buf_;
  size_t pos_ = 0;
  size_t limit_ = 0;  // already reduced by the OPT record's size when one will be added
  uint16_t counts_[3] = {0, 0, 0};
  uint16_t rcode_ = 0;
  uint16_t ednsUdpSize_ = 1232;
  bool edns_ = false;
  bool dnssecOk_ = false;
  // Offsets of names (or name suffixes) already in the message that a later name may point to.
  uint16_t targets_[kMaxCompressionTargets];
  size_t targetCount_ = 0;
};

template <class TailOf>
bool ResponseWriter::addRRsetWire(Section s, Owner owner, size_t n, TailOf&& tailOf, size_t nameAt,
                                  size_t fixedSize) noexcept {
  if (!owner.wire.empty() || !canAdd(s, n)) {
    const Mark m = mark();
    for (size_t i = 0; i < n; ++i) {
      if (!addRecordWire(s, owner, tailOf(i), nameAt)) {
        rollback(m);
        return false;
      }
    }
    return true;
  }
  uint8_t* const b = buf_.data();
  size_t pos = pos_;
  if (fixedSize != 0 && nameAt == 0) {  // one room check for all of them
    if (pos + n * (2 + fixedSize) > limit_) return false;
    auto copyAll = [&](auto size) {  // the sizes of A and AAAA records as constants
      for (size_t i = 0; i < n; ++i, pos += 2 + size) {
        putU16(b + pos, kPointerToQuestion);
        copyTail(b + pos + 2, tailOf(i).data(), size);
      }
    };
    if (fixedSize == 14) {
      copyAll(std::integral_constant<size_t, 14>{});
    } else if (fixedSize == 26) {
      copyAll(std::integral_constant<size_t, 26>{});
    } else {
      copyAll(fixedSize);
    }
    pos_ = pos;
    counts_[static_cast<size_t>(s)] = static_cast<uint16_t>(counts_[static_cast<size_t>(s)] + n);
    return true;
  }
  const size_t targets = targetCount_;
  for (size_t i = 0; i < n; ++i) {
    const std::span<const uint8_t> tail = tailOf(i);
    if (pos + 2 + tail.size() > limit_) {
      targetCount_ = targets;  // nothing else changed yet
      return false;
    }
    putU16(b + pos, kPointerToQuestion);
    copyTail(b + pos + 2, tail.data(), tail.size());
    if (nameAt > 0 && nameAt < tail.size()) registerName(pos + 2 + nameAt);
    pos += 2 + tail.size();
  }
  pos_ = pos;
  counts_[static_cast<size_t>(s)] = static_cast<uint16_t>(counts_[static_cast<size_t>(s)] + n);
  return true;
}

}  // namespace hdnsd::dns
