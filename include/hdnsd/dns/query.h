// Parsing an incoming query: the header, exactly one question, and an EDNS0 OPT record
// (RFC 6891) if the additional section has one. noexcept, no allocation; the result lives
// on the caller's stack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "hdnsd/dns/name.h"
#include "hdnsd/dns/wire.h"
#include "hdnsd/util/result.h"

namespace hdnsd::dns {

// Why a packet could not be parsed. The first two are dropped silently (we cannot or must
// not answer); the others are answered with FORMERR.
enum class ParseError : uint8_t {
  kShortHeader,    // fewer than 12 bytes: no ID to answer to
  kIsResponse,     // QR=1: never answer a response (reflection loops)
  kQdCount,        // QDCOUNT != 1
  kBadName,        // the question name breaks a limit or a pointer rule
  kShortQuestion,  // the packet ends inside the question
  kBadRecord,      // a record in the answer/authority/additional sections overruns the packet
  kBadOpt,         // OPT with a non-root owner, or options that overrun its RDATA
  kDuplicateOpt,   // more than one OPT (RFC 6891 6.1.1)
  kCount
};
const char* parseErrorName(ParseError e) noexcept;  // "short_header", ... for metrics labels

struct Edns {
  bool present = false;
  uint16_t udpSize = 0;  // as the client sent it; callers clamp to [512, their maximum]
  uint8_t version = 0;
  bool dnssecOk = false;
  uint16_t extRcodeHigh = 0;  // upper 8 bits of the extended RCODE as sent (should be 0)
};

struct Query {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint8_t opcode = 0;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  size_t questionEnd = 0;  // [0, questionEnd) is the header plus the question as asked
  NameKey qname;           // lower-cased; qname.hash() is its seeded hash (dns::nameHash)
  Edns edns;

  // What `*this = Query{}` does, without building and copying a whole 256-byte name buffer
  // (parseQuery runs it for every packet). Keep in step with the fields above.
  void reset() noexcept {
    id = flags = 0;
    opcode = 0;
    qtype = qclass = 0;
    questionEnd = 0;
    qname.clear();
    edns = Edns{};
  }
};

// Parses the query into *out. Whenever the packet has a full header, out->id, flags and opcode
// are filled even on error, so the caller can answer FORMERR. Any opcode parses; the caller
// answers unknown ones with NOTIMP.
Result<void, ParseError> parseQuery(std::span<const uint8_t> pkt, Query* out) noexcept;

// Maximum UDP response size for this query: 512 without EDNS, else the client's size clamped
// to [512, serverMax].
inline size_t udpLimit(const Query& q, size_t serverMax) noexcept {
  if (!q.edns.present) return kMaxUdpPlain;
  size_t s = q.edns.udpSize < kMaxUdpPlain ? kMaxUdpPlain : q.edns.udpSize;
  return s > serverMax ? serverMax : s;
}

}  // namespace hdnsd::dns
