// See wire.h. Every read is bounds-checked against the span; counts in the header are never
// trusted (each record needs at least 11 bytes, so a lying count fails fast).
#include "hdnsd/upstream/wire.h"

#include <cstring>

#include "hdnsd/dns/wire.h"

namespace hdnsd::upstream {
namespace {

constexpr size_t kRrFixed = 10;
constexpr size_t kOptSize = 11;  // root name, type, class, TTL, RDLENGTH 0

size_t putOpt(uint8_t* p, uint16_t size, bool dnssecOk) noexcept {
  p[0] = 0;
  dns::putU16(p + 1, dns::kTypeOPT);
  dns::putU16(p + 3, size);
  dns::putU32(p + 5, dnssecOk ? 0x00008000u : 0u);  // ext-rcode 0, version 0, DO
  dns::putU16(p + 9, 0);
  return kOptSize;
}

}  // namespace

const char* answerErrorName(AnswerError e) noexcept {
  switch (e) {
    case AnswerError::kMalformed: return "malformed";
    case AnswerError::kNotResponse: return "not_response";
    case AnswerError::kIdMismatch: return "id_mismatch";
    case AnswerError::kQuestionMismatch: return "question_mismatch";
    case AnswerError::kCount: break;
  }
  return "unknown";
}

void captureClient(std::span<const uint8_t> pkt, const dns::Query& q, size_t limit, ClientQuestion* c) noexcept {
  c->id = q.id;
  c->flags = q.flags;
  c->edns = q.edns.present;
  c->dnssecOk = q.edns.dnssecOk;
  c->limit = static_cast<uint16_t>(limit > dns::kMaxMessage ? dns::kMaxMessage : limit);
  // The question name starts at 12 and cannot be compressed (nothing precedes it to point to).
  size_t n = q.questionEnd - dns::kHeaderSize - 4;
  if (n > dns::kMaxNameWire || q.questionEnd > pkt.size()) n = 0;
  c->nameLen = static_cast<uint8_t>(n);
  std::memcpy(c->name, pkt.data() + dns::kHeaderSize, n);
}

size_t buildUpstreamQuery(const dns::Query& q, uint16_t id, std::span<uint8_t> out) noexcept {
  const size_t need = dns::kHeaderSize + q.qname.size() + 4 + kOptSize;
  if (out.size() < need) return 0;
  uint8_t* p = out.data();
  std::memset(p, 0, dns::kHeaderSize);
  dns::putU16(p + dns::kOffId, id);
  dns::putU16(p + dns::kOffFlags, static_cast<uint16_t>(dns::kFlagRD | (q.flags & dns::kFlagCD)));
  dns::putU16(p + dns::kOffQd, 1);
  dns::putU16(p + dns::kOffAr, 1);
  size_t pos = dns::kHeaderSize;
  std::memcpy(p + pos, q.qname.data(), q.qname.size());  // lower-cased: one key, one question
  pos += q.qname.size();
  dns::putU16(p + pos, q.qtype);
  dns::putU16(p + pos + 2, q.qclass);
  pos += 4;
  pos += putOpt(p + pos, kUpstreamEdnsSize, q.edns.present && q.edns.dnssecOk);
  return pos;
}

Result<AnswerInfo, AnswerError> checkAnswer(std::span<const uint8_t> a, uint16_t id, const dns::NameKey& qname,
                                            uint16_t qtype, uint16_t qclass) noexcept {
  if (a.size() < dns::kHeaderSize) return Unexpected{AnswerError::kMalformed};
  const uint8_t* p = a.data();
  const uint16_t flags = dns::getU16(p + dns::kOffFlags);
  if (!(flags & dns::kFlagQR) || ((flags & dns::kOpcodeMask) >> dns::kOpcodeShift) != dns::kOpcodeQuery)
    return Unexpected{AnswerError::kNotResponse};
  if (dns::getU16(p + dns::kOffId) != id) return Unexpected{AnswerError::kIdMismatch};
  if (dns::getU16(p + dns::kOffQd) != 1) return Unexpected{AnswerError::kQuestionMismatch};
  dns::NameKey echoed;
  auto end = dns::readName(a, dns::kHeaderSize, &echoed);
  if (!end) return Unexpected{AnswerError::kMalformed};
  size_t pos = *end;
  if (a.size() - pos < 4) return Unexpected{AnswerError::kMalformed};
  // readName lower-cases, so this is the case-insensitive comparison RFC 4343 asks for; a
  // compressed question name cannot equal ours in length at offset 12, so it is rejected below.
  if (echoed.wire() != qname.wire() || dns::getU16(p + pos) != qtype || dns::getU16(p + pos + 2) != qclass ||
      pos != dns::kHeaderSize + qname.size())
    return Unexpected{AnswerError::kQuestionMismatch};
  AnswerInfo info;
  info.rcode = static_cast<uint8_t>(flags & 0x000F);
  info.truncated = (flags & dns::kFlagTC) != 0;
  pos += 4;
  info.questionEnd = pos;
  const size_t an = dns::getU16(p + dns::kOffAn), ns = dns::getU16(p + dns::kOffNs),
               ar = dns::getU16(p + dns::kOffAr);
  for (size_t i = 0; i < an + ns + ar; ++i) {
    const size_t owner = pos;
    auto e = dns::skipName(a, pos);
    if (!e) return Unexpected{AnswerError::kMalformed};
    pos = *e;
    if (a.size() - pos < kRrFixed) return Unexpected{AnswerError::kMalformed};
    const uint16_t type = dns::getU16(p + pos);
    const size_t rdlen = dns::getU16(p + pos + 8);
    if (a.size() - pos - kRrFixed < rdlen) return Unexpected{AnswerError::kMalformed};
    if (type == dns::kTypeOPT && i >= an + ns) {
      if (info.optLength != 0) return Unexpected{AnswerError::kMalformed};  // two OPTs (RFC 6891 6.1.1)
      info.optOffset = owner;
      info.optLength = pos + kRrFixed + rdlen - owner;
      info.extRcodeHigh = p[pos + 4];
    }
    pos += kRrFixed + rdlen;
  }
  // Bytes after the last record: our OPT would be appended after them and the client would get
  // a record that starts in garbage (found by fuzz_upstream_answer, corpus: crash_trailing_bytes).
  if (pos != a.size()) return Unexpected{AnswerError::kMalformed};
  return info;
}

size_t stripOpt(std::span<const uint8_t> a, const AnswerInfo& info, std::span<uint8_t> out) noexcept {
  const size_t n = a.size() - info.optLength;
  if (out.size() < n) return 0;
  if (info.optLength == 0) {
    std::memcpy(out.data(), a.data(), a.size());
    return a.size();
  }
  std::memcpy(out.data(), a.data(), info.optOffset);
  std::memcpy(out.data() + info.optOffset, a.data() + info.optOffset + info.optLength,
              a.size() - info.optOffset - info.optLength);
  dns::putU16(out.data() + dns::kOffAr, static_cast<uint16_t>(dns::getU16(a.data() + dns::kOffAr) - 1));
  return n;
}

size_t finishForClient(std::span<uint8_t> buf, size_t len, const ClientQuestion& c, uint16_t ourEdnsSize) noexcept {
  const size_t qEnd = dns::kHeaderSize + c.nameLen + 4;
  if (len < qEnd || buf.size() < len) return 0;
  uint8_t* p = buf.data();
  dns::putU16(p + dns::kOffId, c.id);
  std::memcpy(p + dns::kHeaderSize, c.name, c.nameLen);  // same name, the client's letter case
  uint16_t flags = dns::getU16(p + dns::kOffFlags);
  // Like the cache's answers: not authoritative (RFC 1035 6.2), AD only for a client that asked
  // with DO or AD (RFC 6840 5.8).
  uint16_t clear = dns::kFlagRD | dns::kFlagCD | dns::kFlagTC | dns::kFlagAA;
  if (!c.dnssecOk && !(c.flags & dns::kFlagAD)) clear |= dns::kFlagAD;
  flags = static_cast<uint16_t>((flags & ~clear) | (c.flags & (dns::kFlagRD | dns::kFlagCD)) | dns::kFlagRA);
  const size_t opt = c.edns ? kOptSize : 0;
  if (len + opt > c.limit) {
    // Too big for this client: the question alone with TC=1, it retries over TCP (RFC 7766 5).
    len = qEnd;
    flags |= dns::kFlagTC;
    dns::putU16(p + dns::kOffAn, 0);
    dns::putU16(p + dns::kOffNs, 0);
    dns::putU16(p + dns::kOffAr, 0);
  }
  dns::putU16(p + dns::kOffFlags, flags);
  if (opt) {
    if (buf.size() < len + opt) return 0;
    len += putOpt(p + len, ourEdnsSize, c.dnssecOk);
    dns::putU16(p + dns::kOffAr, static_cast<uint16_t>(dns::getU16(p + dns::kOffAr) + 1));
  }
  return len;
}

size_t writeServfail(std::span<uint8_t> out, const ClientQuestion& c, uint16_t qtype, uint16_t qclass,
                     uint16_t ourEdnsSize) noexcept {
  return writeRcode(out, c, qtype, qclass, 2, ourEdnsSize);
}

size_t rebuildQuery(const ClientQuestion& c, uint16_t qtype, uint16_t qclass, std::span<uint8_t> out) noexcept {
  const size_t need = dns::kHeaderSize + c.nameLen + 4 + kOptSize;
  if (out.size() < need || c.nameLen == 0) return 0;
  uint8_t* p = out.data();
  std::memset(p, 0, dns::kHeaderSize);
  dns::putU16(p + dns::kOffId, c.id);
  dns::putU16(p + dns::kOffFlags, static_cast<uint16_t>(c.flags & ~dns::kFlagQR));
  dns::putU16(p + dns::kOffQd, 1);
  size_t pos = dns::kHeaderSize;
  std::memcpy(p + pos, c.name, c.nameLen);
  pos += c.nameLen;
  dns::putU16(p + pos, qtype);
  dns::putU16(p + pos + 2, qclass);
  pos += 4;
  if (c.edns) {
    pos += putOpt(p + pos, c.limit < dns::kMaxUdpPlain ? uint16_t(dns::kMaxUdpPlain) : c.limit, c.dnssecOk);
    dns::putU16(p + dns::kOffAr, 1);
  }
  return pos;
}

size_t writeRcode(std::span<uint8_t> out, const ClientQuestion& c, uint16_t qtype, uint16_t qclass, uint8_t rcode,
                  uint16_t ourEdnsSize) noexcept {
  const size_t qEnd = dns::kHeaderSize + c.nameLen + 4;
  if (out.size() < qEnd + kOptSize) return 0;
  uint8_t* p = out.data();
  std::memset(p, 0, dns::kHeaderSize);
  dns::putU16(p + dns::kOffFlags, static_cast<uint16_t>(dns::kFlagQR | (rcode & 0x0F)));
  dns::putU16(p + dns::kOffQd, 1);
  dns::putU16(p + dns::kHeaderSize + c.nameLen, qtype);
  dns::putU16(p + dns::kHeaderSize + c.nameLen + 2, qclass);
  return finishForClient(out, qEnd, c, ourEdnsSize);
}

}  // namespace hdnsd::upstream
