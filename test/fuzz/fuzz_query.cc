// libFuzzer target for the DNS codec: parseQuery, then (if it parsed) a response built with
// ResponseWriter, then invariants on that response. Not part of the unit tests: the Makefile
// compiles only test/unit and test/support.
//
//   libFuzzer:  clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude
//                 test/fuzz/fuzz_query.cc src/dns/*.cc -o build/fuzz_query
//               build/fuzz_query test/fuzz/corpus/query
//   replay (g++, no libFuzzer): add -DHDNSD_FUZZ_STANDALONE and pass files or directories.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>

#include "hdnsd/dns/name.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"
#include "hdnsd/dns/writer.h"

namespace {

using namespace hdnsd::dns;

// Not HDNSD_CHECK: the fuzzer wants a crash with a message, in release builds too.
#define FUZZ_ASSERT(cond)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "fuzz_query: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

uint8_t gOut[kMaxMessage];
uint8_t gCopy[kMaxMessage];

// Walks the records after the question and checks every name in them decompresses; for
// records of type CNAME the RDATA name must equal `cnameTarget`.
void checkRecords(std::span<const uint8_t> msg, size_t pos, size_t records,
                  std::string_view cnameTarget) {
  NameKey k;
  for (size_t i = 0; i < records; ++i) {
    auto owner = readName(msg, pos, &k);
    FUZZ_ASSERT(owner.has_value());
    pos = *owner;
    FUZZ_ASSERT(msg.size() - pos >= 10);
    const uint16_t type = getU16(msg.data() + pos);
    const size_t rdLen = getU16(msg.data() + pos + 8);
    pos += 10;
    FUZZ_ASSERT(msg.size() - pos >= rdLen);
    if (type == kTypeCNAME) {
      auto end = readName(msg, pos, &k);
      FUZZ_ASSERT(end.has_value() && *end == pos + rdLen);  // RDLENGTH matches after compression
      FUZZ_ASSERT(k.wire() == cnameTarget);
    }
    pos += rdLen;
  }
  FUZZ_ASSERT(pos == msg.size());
}

void fuzzOne(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> pkt(data, size);
  Query q;
  auto r = parseQuery(pkt, &q);
  if (!r) {
    FUZZ_ASSERT(std::strlen(parseErrorName(r.error())) > 0);
    if (r.error() == ParseError::kShortHeader || r.error() == ParseError::kIsResponse) return;
    ResponseWriter w(std::span<uint8_t>(gOut, sizeof gOut));
    FUZZ_ASSERT(w.startHeaderOnly(pkt, kMaxUdpPlain));
    w.setRcode(Rcode::kFormErr);
    FUZZ_ASSERT(w.finish() == kHeaderSize);
    FUZZ_ASSERT(getU16(gOut) == q.id);
    return;
  }
  FUZZ_ASSERT(q.questionEnd <= size && q.questionEnd >= kHeaderSize + 5);
  {
    NameKey again;  // the key is a valid, lower-case wire name
    FUZZ_ASSERT(again.assignWire(q.qname.wire()) && again.wire() == q.qname.wire());
    // readName's word-at-a-time copy and hash agree with the label-at-a-time build.
    FUZZ_ASSERT(again.hash() == q.qname.hash() && nameHash(q.qname.wire()) == q.qname.hash());
    FUZZ_ASSERT(again.labelCount() == q.qname.labelCount());
  }

  // The last input byte picks the limit, so truncation paths get exercised.
  const size_t full = udpLimit(q, kMaxMessage);
  const size_t limit = size > 0 ? q.questionEnd + size_t{data[size - 1]} * 2 : full;
  const size_t cap = limit < full ? limit : full;
  const size_t optRoom = q.edns.present ? 11 : 0;
  ResponseWriter w(std::span<uint8_t>(gOut, sizeof gOut));
  if (!w.start(pkt, q, cap)) {
    FUZZ_ASSERT(q.questionEnd + optRoom > cap);
    return;
  }
  if (q.edns.version != 0) w.setRcode(Rcode::kBadVers);

  // CNAME to "www." + qname (if that is still a legal name): compresses against the question.
  char target[kMaxNameWire + 4];
  std::string_view targetWire;
  if (q.qname.size() + 4 <= kMaxNameWire) {
    std::memcpy(target, "\3www", 4);
    std::memcpy(target + 4, q.qname.data(), q.qname.size());
    targetWire = std::string_view(target, q.qname.size() + 4);
  }
  const std::string_view a("\x0a\x60\x00\x01", 4);
  const std::string_view soa(
      "\2ns\7cluster\5local\0\12hostmaster\7cluster\5local\0"
      "\0\0\0\1\0\0\x1c\x20\0\0\x07\x08\0\x09\x3a\x80\0\0\0\x1e", 19 + 26 + 20);
  const std::string_view srv("\0\0\0\x0a\0\x50\3web\7cluster\5local\0", 6 + 19);

  auto m = w.mark();
  bool truncated = false;
  auto add = [&](Section s, Owner o, uint16_t type, RdataView rd) {
    if (truncated) return;
    const size_t before = w.size();
    if (!w.addRecord(s, o, type, kClassIN, 30, rd)) {
      FUZZ_ASSERT(w.size() == before);
      w.rollback(m);
      w.setFlags(kFlagTC);
      truncated = true;
    }
    FUZZ_ASSERT(w.size() + optRoom <= cap);
  };
  add(Section::kAnswer, Owner::question(), kTypeA, {a});
  if (!targetWire.empty()) {
    add(Section::kAnswer, Owner::question(), kTypeCNAME, {targetWire, RdataKind::kName});
    add(Section::kAnswer, Owner::name(targetWire), kTypeA, {a});
  }
  add(Section::kAnswer, Owner::name(q.qname.wire()), kTypeSRV, {srv});
  m = w.mark();
  add(Section::kAuthority, Owner::name("\7cluster\5local\0"), kTypeSOA, {soa, RdataKind::kSoa});
  add(Section::kAdditional, Owner::name(q.qname.wire()), kTypeA, {a});

  const size_t n = w.finish();
  FUZZ_ASSERT(n <= cap && n == w.size());

  // Re-parse the response as a query (QR cleared): the question and EDNS must survive, and
  // every name we wrote must decompress under the strict pointer rules.
  std::memcpy(gCopy, gOut, n);
  gCopy[kOffFlags] &= 0x7F;
  const std::span<const uint8_t> resp(gCopy, n);
  Query back;
  auto rr = parseQuery(resp, &back);
  FUZZ_ASSERT(rr.has_value());
  FUZZ_ASSERT(back.id == q.id && back.opcode == q.opcode);
  FUZZ_ASSERT(back.qname.wire() == q.qname.wire());
  FUZZ_ASSERT(back.qtype == q.qtype && back.qclass == q.qclass);
  FUZZ_ASSERT(back.questionEnd == q.questionEnd);
  FUZZ_ASSERT(std::memcmp(gCopy + kHeaderSize, data + kHeaderSize, q.questionEnd - 12) == 0);
  FUZZ_ASSERT(back.edns.present == q.edns.present);
  if (q.edns.present) {
    FUZZ_ASSERT(back.edns.version == 0 && back.edns.dnssecOk == q.edns.dnssecOk);
    FUZZ_ASSERT(back.edns.extRcodeHigh == (q.edns.version != 0 ? 1 : 0));
  }
  const size_t records = size_t{getU16(gCopy + kOffAn)} + getU16(gCopy + kOffNs) +
                         getU16(gCopy + kOffAr);
  checkRecords(resp, q.questionEnd, records, targetWire);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzzOne(data, size);
  return 0;
}

#include "standalone_main.h"
