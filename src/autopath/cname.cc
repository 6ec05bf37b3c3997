// See cname.h. Two passes over X's records: the first validates them and finds the CNAME's TTL,
// the second writes; every read is bounds-checked (counts in the header are not trusted).
#include "hdnsd/autopath/cname.h"

#include <cstring>

#include "hdnsd/dns/name.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"
#include "hdnsd/dns/writer.h"

namespace hdnsd::autopath {
namespace {

constexpr size_t kRrFixed = 10;

// RDATA layouts with names that RFC 1035-era servers compress: how many fixed bytes come
// before the first name, and how many names follow (then nothing, except SOA's 20 bytes).
struct NameLayout {
  size_t prefix = 0;
  size_t names = 0;
  size_t tail = 0;
};
bool layoutOf(uint16_t type, NameLayout* l) noexcept {
  switch (type) {
    case 2: case 3: case 4: case 5: case 7: case 8: case 9: case 12:  // NS MD MF CNAME MB MG MR PTR
      *l = {0, 1, 0};
      return true;
    case 6: *l = {0, 2, 20}; return true;                             // SOA
    case 14: case 17: *l = {0, 2, 0}; return true;                    // MINFO, RP
    case 15: case 18: case 21: case 36: *l = {2, 1, 0}; return true;  // MX AFSDB RT KX
    case 33: *l = {6, 1, 0}; return true;                             // SRV (RFC 2782: should not be)
    default: return false;
  }
}

// The RDATA at [start, start + len) of msg, names decompressed, into buf (uncompressed wire form).
// Returns its size, or 0 when it does not parse (names must end exactly at the RDATA's end).
size_t expandRdata(std::span<const uint8_t> msg, size_t start, size_t len, const NameLayout& l, uint8_t* buf,
                   size_t cap) noexcept {
  if (len < l.prefix) return 0;
  std::memcpy(buf, msg.data() + start, l.prefix);
  size_t n = l.prefix, pos = start + l.prefix;
  const size_t end = start + len;
  for (size_t i = 0; i < l.names; ++i) {
    dns::NameKey name;
    auto e = dns::readName(msg.first(end), pos, &name);
    if (!e || n + name.size() > cap) return 0;
    std::memcpy(buf + n, name.data(), name.size());
    n += name.size();
    pos = *e;
  }
  if (end - pos != l.tail || n + l.tail > cap) return 0;
  std::memcpy(buf + n, msg.data() + pos, l.tail);
  return n + l.tail;
}

struct Rr {
  size_t owner, type, rdata;  // offsets: owner name, TYPE field, RDATA
  uint16_t rtype, rclass, rdlen;
  uint32_t ttl;
};

// Reads the record at *pos; false on a malformed one.
bool readRr(std::span<const uint8_t> msg, size_t* pos, Rr* rr) noexcept {
  rr->owner = *pos;
  auto e = dns::skipName(msg, *pos);
  if (!e || msg.size() - *e < kRrFixed) return false;
  const uint8_t* p = msg.data() + *e;
  rr->type = *e;
  rr->rtype = dns::getU16(p);
  rr->rclass = dns::getU16(p + 2);
  rr->ttl = dns::getU32(p + 4);
  rr->rdlen = dns::getU16(p + 8);
  rr->rdata = *e + kRrFixed;
  if (msg.size() - rr->rdata < rr->rdlen) return false;
  *pos = rr->rdata + rr->rdlen;
  return true;
}

}  // namespace

size_t prependCname(std::span<const uint8_t> answer, std::span<const uint8_t> question, uint32_t ttlCap_s,
                    std::span<uint8_t> out) noexcept {
  if (answer.size() < dns::kHeaderSize || question.size() < 5 || question.size() > dns::kMaxNameWire + 4)
    return 0;
  const uint8_t* h = answer.data();
  if (dns::getU16(h + dns::kOffQd) != 1) return 0;
  dns::NameKey target;
  auto qe = dns::readName(answer, dns::kHeaderSize, &target);
  if (!qe || answer.size() - *qe < 4) return 0;
  const size_t recordsStart = *qe + 4;
  const size_t total = size_t(dns::getU16(h + dns::kOffAn)) + dns::getU16(h + dns::kOffNs) + dns::getU16(h + dns::kOffAr);
  const size_t an = dns::getU16(h + dns::kOffAn);

  // Pass 1: validate, and the CNAME's TTL: X's answer TTLs, else its authority's (NODATA: the SOA).
  uint32_t minAnswer = UINT32_MAX, minAuthority = UINT32_MAX;
  size_t pos = recordsStart;
  const size_t ns = dns::getU16(h + dns::kOffNs);
  for (size_t i = 0; i < total; ++i) {
    Rr rr;
    if (!readRr(answer, &pos, &rr)) return 0;
    if (i < an && rr.ttl < minAnswer) minAnswer = rr.ttl;
    if (i >= an && i < an + ns && rr.ttl < minAuthority) minAuthority = rr.ttl;
  }
  uint32_t ttl = minAnswer != UINT32_MAX ? minAnswer : minAuthority;
  if (ttl > ttlCap_s) ttl = ttlCap_s;

  // The client's question behind a header that parses as a query (QR clear, one question).
  uint8_t fake[dns::kHeaderSize + dns::kMaxNameWire + 4] = {};
  dns::putU16(fake + dns::kOffId, dns::getU16(h + dns::kOffId));
  const uint16_t flags = dns::getU16(h + dns::kOffFlags);
  dns::putU16(fake + dns::kOffFlags, uint16_t(flags & (dns::kFlagRD | dns::kFlagCD)));
  dns::putU16(fake + dns::kOffQd, 1);
  std::memcpy(fake + dns::kHeaderSize, question.data(), question.size());
  const std::span<const uint8_t> fq(fake, dns::kHeaderSize + question.size());
  dns::Query q;
  if (!dns::parseQuery(fq, &q) || q.questionEnd != fq.size()) return 0;
  dns::ResponseWriter w(out);
  if (!w.start(fq, q, out.size())) return 0;
  w.setFlags(uint16_t(flags & (dns::kFlagAA | dns::kFlagRA | dns::kFlagAD | dns::kFlagTC)));
  w.setRcode(dns::Rcode(flags & 0x0F));
  if (!w.addRecord(dns::Section::kAnswer, dns::Owner::question(), dns::kTypeCNAME, dns::kClassIN, ttl,
                   {target.wire(), dns::RdataKind::kName}))
    return 0;

  // Pass 2: X's records, names decompressed; the answer section whole or not at all.
  auto answerMark = w.mark();
  pos = recordsStart;
  uint8_t rdbuf[2 * dns::kMaxNameWire + 32];
  for (size_t i = 0; i < total; ++i) {
    Rr rr;
    (void)readRr(answer, &pos, &rr);  // validated in pass 1
    if (rr.rtype == dns::kTypeOPT) continue;
    const dns::Section s = i < an ? dns::Section::kAnswer : i < an + ns ? dns::Section::kAuthority
                                                                        : dns::Section::kAdditional;
    dns::NameKey owner;
    if (!dns::readName(answer, rr.owner, &owner)) return 0;
    dns::RdataView rd{{reinterpret_cast<const char*>(answer.data() + rr.rdata), rr.rdlen}, dns::RdataKind::kOpaque};
    NameLayout l;
    if (layoutOf(rr.rtype, &l)) {
      const size_t n = expandRdata(answer, rr.rdata, rr.rdlen, l, rdbuf, sizeof rdbuf);
      if (n == 0) return 0;
      rd.bytes = {reinterpret_cast<const char*>(rdbuf), n};
      if (l.prefix == 0 && l.names == 1) rd.kind = dns::RdataKind::kName;
      else if (rr.rtype == dns::kTypeSOA) rd.kind = dns::RdataKind::kSoa;
    }
    if (!w.addRecord(s, dns::Owner::name(owner.wire()), rr.rtype, rr.rclass, rr.ttl, rd)) {
      if (s == dns::Section::kAnswer) {  // no partial RRset (RFC 2181 9): keep the CNAME, set TC
        w.rollback(answerMark);
        w.setFlags(dns::kFlagTC);
      }
      break;  // authority and additional are optional
    }
  }
  return w.finish();
}

}  // namespace hdnsd::autopath
