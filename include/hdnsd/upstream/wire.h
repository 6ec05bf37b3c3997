// Wire-level helpers of the forwarder, bytes in → bytes out (no libuv, no c-ares), so they are
// unit-tested and fuzzed on their own. Nothing allocates or throws.
//
//   client query ──buildUpstreamQuery──▶ upstream query (our random ID, lower-cased question,
//                                        RD=1, CD as asked, our OPT: 1232 bytes, DO as asked)
//   upstream answer ──checkAnswer──▶ AnswerInfo (rcode, TC, where its OPT is) or AnswerError
//                   ──stripOpt────▶ the "normalized" answer we cache: the same bytes without OPT
//   normalized answer ──finishForClient──▶ the client's ID, question letter case, RD, RA=1,
//                                        our OPT if it sent EDNS, TC if over its size
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "hdnsd/dns/name.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/util/result.h"

namespace hdnsd::upstream {

// The upstream OPT's advertised size: big enough for most answers, small enough not to
// fragment (DNS flag day 2020); larger answers come over TCP (c-ares retries on TC=1).
inline constexpr uint16_t kUpstreamEdnsSize = 1232;

// What a client asked, kept per waiter to shape the answer it gets (the question's letter
// case included: 0x20-randomising stubs check it).
struct ClientQuestion {
  uint16_t id = 0;
  uint16_t flags = 0;          // the query's flags word (RD, CD)
  bool edns = false;
  bool dnssecOk = false;
  uint16_t limit = 512;        // the largest answer this client takes (UDP size or 65535)
  uint8_t nameLen = 0;         // the question name as asked, uncompressed wire form
  uint8_t name[dns::kMaxNameWire];
};

// Fills *c from a parsed query. `limit` is the answer size the transport allows.
void captureClient(std::span<const uint8_t> pkt, const dns::Query& q, size_t limit, ClientQuestion* c) noexcept;

// Writes the upstream query for `q` into `out` (at least 12 + 255 + 4 + 11 bytes); returns its size.
size_t buildUpstreamQuery(const dns::Query& q, uint16_t id, std::span<uint8_t> out) noexcept;

enum class AnswerError : uint8_t {
  kMalformed,         // shorter than a header, a record overruns, a bad name
  kNotResponse,       // QR=0 or another opcode
  kIdMismatch,        // not the ID we sent
  kQuestionMismatch,  // not our question echoed (name, type or class)
  kCount
};
const char* answerErrorName(AnswerError e) noexcept;  // "malformed", "id_mismatch", ...

struct AnswerInfo {
  uint8_t rcode = 0;        // the 4-bit header RCODE
  uint8_t extRcodeHigh = 0; // from the OPT TTL (nonzero: BADVERS, BADCOOKIE...)
  bool truncated = false;
  size_t questionEnd = 0;
  size_t optOffset = 0, optLength = 0;  // the OPT RR in the additional section (0 length: none)
};

// Validates an upstream answer to the question (qname lower-cased, qtype, qclass) sent with `id`.
Result<AnswerInfo, AnswerError> checkAnswer(std::span<const uint8_t> answer, uint16_t id,
                                            const dns::NameKey& qname, uint16_t qtype,
                                            uint16_t qclass) noexcept;

// Copies `answer` into `out` without its OPT RR (ARCOUNT adjusted). Returns the size, 0 if
// `out` is too small.
size_t stripOpt(std::span<const uint8_t> answer, const AnswerInfo& info, std::span<uint8_t> out) noexcept;

// Turns a normalized answer of `len` bytes in buf (question at 12, no OPT) into the client's:
// its ID, its question name bytes, its RD and CD, RA=1; over the client's limit → header and
// question only with TC=1; our OPT (ourEdnsSize, DO echoed) when the client sent EDNS.
// buf must have room for len + 11. Returns the final size (0: the answer does not fit at all).
size_t finishForClient(std::span<uint8_t> buf, size_t len, const ClientQuestion& c,
                       uint16_t ourEdnsSize) noexcept;

// A SERVFAIL for the client (header, its question, OPT if it sent EDNS) written from scratch.
size_t writeServfail(std::span<uint8_t> out, const ClientQuestion& c, uint16_t qtype, uint16_t qclass,
                     uint16_t ourEdnsSize) noexcept;

// An answer with no records and this RCODE (REFUSED, NOERROR for NODATA...), same shaping.
size_t writeRcode(std::span<uint8_t> out, const ClientQuestion& c, uint16_t qtype, uint16_t qclass, uint8_t rcode,
                  uint16_t ourEdnsSize) noexcept;

// The client's query again (its ID, flags, question as asked, an OPT with its size and DO when it
// sent EDNS): what the cache's lookup() takes to write this client a (stale) answer later.
size_t rebuildQuery(const ClientQuestion& c, uint16_t qtype, uint16_t qclass, std::span<uint8_t> out) noexcept;

}  // namespace hdnsd::upstream
