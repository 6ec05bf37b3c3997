// parseQuery: header, the single question, then a bounds-checked walk over the remaining
// records to find the EDNS0 OPT record (RFC 6891). noexcept, no allocation.
//
// Decisions:
// - Bytes after the last record counted by the header are tolerated and ignored: several stub
//   resolvers and middleboxes pad queries, and nothing we answer depends on them.
// - A record type 41 in the answer or authority section is skipped like any other record; only
//   the additional section carries OPT (RFC 6891 6.1.1), and ignoring a misplaced one is harmless.
// - Names in the other sections follow the same rules as the question name (skipName); a name
//   that breaks them is reported as kBadRecord.
#include "hdnsd/dns/query.h"

namespace hdnsd::dns {

namespace {

inline constexpr size_t kRrFixed = 10;  // type, class, TTL, RDLENGTH after the owner name

// Options in OPT RDATA must tile it exactly: code (2) + length (2) + data, repeated.
bool optionsTile(const uint8_t* p, size_t len) noexcept {
  size_t off = 0;
  while (off < len) {
    if (len - off < 4) return false;
    const size_t optLen = getU16(p + off + 2);
    off += 4;
    if (len - off < optLen) return false;
    off += optLen;
  }
  return true;
}

}  // namespace

const char* parseErrorName(ParseError e) noexcept {
  switch (e) {
    case ParseError::kShortHeader: return "short_header";
    case ParseError::kIsResponse: return "is_response";
    case ParseError::kQdCount: return "qd_count";
    case ParseError::kBadName: return "bad_name";
    case ParseError::kShortQuestion: return "short_question";
    case ParseError::kBadRecord: return "bad_record";
    case ParseError::kBadOpt: return "bad_opt";
    case ParseError::kDuplicateOpt: return "duplicate_opt";
    case ParseError::kCount: break;
  }
  return "unknown";
}

Result<void, ParseError> parseQuery(std::span<const uint8_t> pkt, Query* out) noexcept {
  out->reset();
  if (pkt.size() < kHeaderSize) return Unexpected{ParseError::kShortHeader};
  const uint8_t* p = pkt.data();
  out->id = getU16(p + kOffId);
  out->flags = getU16(p + kOffFlags);
  out->opcode = static_cast<uint8_t>((out->flags & kOpcodeMask) >> kOpcodeShift);
  if (out->flags & kFlagQR) return Unexpected{ParseError::kIsResponse};
  if (getU16(p + kOffQd) != 1) return Unexpected{ParseError::kQdCount};

  auto nameEnd = readName(pkt, kHeaderSize, &out->qname);
  if (!nameEnd) {
    // Running off the end is a short packet; every other failure is a malformed name.
    return Unexpected{nameEnd.error() == NameError::kTruncated ? ParseError::kShortQuestion
                                                              : ParseError::kBadName};
  }
  size_t pos = *nameEnd;
  if (pkt.size() - pos < 4) return Unexpected{ParseError::kShortQuestion};
  out->qtype = getU16(p + pos);
  out->qclass = getU16(p + pos + 2);
  pos += 4;
  out->questionEnd = pos;

  const size_t an = getU16(p + kOffAn), ns = getU16(p + kOffNs), ar = getU16(p + kOffAr);
  const size_t total = an + ns + ar;
  // Each record needs at least 11 bytes, so a count that exceeds the packet fails within
  // pkt.size() / 11 iterations, never 3 * 65535.
  for (size_t i = 0; i < total; ++i) {
    const size_t owner = pos;
    auto end = skipName(pkt, pos);
    if (!end) return Unexpected{ParseError::kBadRecord};
    pos = *end;
    if (pkt.size() - pos < kRrFixed) return Unexpected{ParseError::kBadRecord};
    const uint16_t type = getU16(p + pos);
    const uint16_t cls = getU16(p + pos + 2);
    const uint32_t ttl = getU32(p + pos + 4);
    const size_t rdLen = getU16(p + pos + 8);
    pos += kRrFixed;
    if (pkt.size() - pos < rdLen) return Unexpected{ParseError::kBadRecord};
    const uint8_t* rdata = p + pos;
    pos += rdLen;

    if (type != kTypeOPT || i < an + ns) continue;
    if (out->edns.present) return Unexpected{ParseError::kDuplicateOpt};
    // The owner must be the root (RFC 6891 6.1.2). The walk above accepted the name, so a
    // one-byte name at `owner` can only be the root byte; a pointer is not accepted here.
    if (*end != owner + 1) return Unexpected{ParseError::kBadOpt};
    if (!optionsTile(rdata, rdLen)) return Unexpected{ParseError::kBadOpt};
    out->edns.present = true;
    out->edns.udpSize = cls;                      // CLASS carries the requestor's UDP size
    out->edns.extRcodeHigh = static_cast<uint16_t>(ttl >> 24);
    out->edns.version = static_cast<uint8_t>(ttl >> 16);
    out->edns.dnssecOk = (ttl & 0x8000) != 0;     // DO is the top bit of the Z field
  }
  return {};
}

}  // namespace hdnsd::dns
