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
#include <span>
#include <string_view>

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
  void setFlags(uint16_t bits) noexcept;   // OR into the header flags (AA, TC, RA)
  void clearFlags(uint16_t bits) noexcept;

  // Appends one record; false (and nothing written) if it does not fit in the limit.
  bool addRecord(Section s, Owner owner, uint16_t type, uint16_t cls, uint32_t ttl_s,
                 RdataView rdata) noexcept;

  // Sections must be written in order (answer, authority, additional).
  struct Mark {
    size_t pos;
    uint16_t counts[3];
    size_t targets;
  };
  Mark mark() const noexcept;
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

}  // namespace hdnsd::dns
