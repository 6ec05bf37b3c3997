// ResponseWriter: every expected message is written by hand from RFC 1035 4.1 / 4.1.4 and
// RFC 6891 6.1, with the byte offsets that compression pointers refer to noted alongside.
#include "hdnsd/dns/writer.h"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "../../support/wire_bytes.h"

using namespace hdnsd::dns;
using namespace std::string_literals;

namespace {

using hdnsd::test::Bytes;
using hdnsd::test::cat;

Bytes asBytes(std::span<const uint8_t> s) { return Bytes(s.begin(), s.end()); }

Query mustParse(const Bytes& pkt) {
  Query q;
  REQUIRE(parseQuery(pkt, &q).has_value());
  return q;
}

// "WeB.demo.svc.cluster.local." A IN, RD, id 0xbeef. Offsets in the message:
// 12 \3WeB  16 \4demo  21 \3svc  25 \7cluster  33 \5local  39 \0  40 type  42 class  44 end.
const Bytes kQuestionA = {3, 'W', 'e', 'B', 4, 'd', 'e', 'm', 'o', 3, 's', 'v', 'c',
                          7, 'c', 'l', 'u', 's', 't', 'e', 'r', 5, 'l', 'o', 'c', 'a', 'l', 0,
                          0, 1, 0, 1};
const Bytes kQueryA = cat({{0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, kQuestionA});

// An A record for the question: pointer, A, IN, TTL 30, RDLENGTH 4, 10.96.0.<last>.
Bytes aAnswer(uint8_t last) {
  return {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 96, 0, last};
}

const std::string kA1 = "\x0a\x60\x00\x01"s;  // 10.96.0.1

// "_http._tcp.Demo.svc.cluster.local." with the given type, IN. Offsets:
// 12 \5_http  18 \4_tcp  23 \4Demo  28 \3svc  32 \7cluster  40 \5local  46 \0  47 type  51 end.
Bytes dnsSdQuery(uint8_t type) {
  return {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
          5, '_', 'h', 't', 't', 'p', 4, '_', 't', 'c', 'p', 4, 'D', 'e', 'm', 'o',
          3, 's', 'v', 'c', 7, 'c', 'l', 'u', 's', 't', 'e', 'r', 5, 'l', 'o', 'c', 'a', 'l', 0,
          0, type, 0, 1};
}

const std::string kWebWire = "\3web\4demo\3svc\7cluster\5local\0"s;

}  // namespace

TEST_CASE("writer: A answer owned by the question is a pointer to 0xC00C") {
  const Query q = mustParse(kQueryA);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, 512));
  w.setFlags(kFlagAA | kFlagRA);
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
  CHECK(w.finish() == 60);
  const Bytes want = cat({{0xbe, 0xef,      // id copied
                           0x85, 0x80,      // QR | AA | RD | RA, opcode 0, rcode 0
                           0, 1, 0, 1,      // QD=1 AN=1
                           0, 0, 0, 0},     // NS=0 AR=0
                          kQuestionA,       // question copied as asked: "WeB" keeps its case
                          aAnswer(1)});
  CHECK(asBytes(w.bytes()) == want);
  CHECK(w.count(Section::kAnswer) == 1);
}

TEST_CASE("writer: only opcode, RD and CD are copied from the query flags") {
  // id 0x0001, flags: opcode 0, AA (bogus in a query), TC, RD, AD, CD, Z.
  Bytes query = kQueryA;
  query[2] = 0x07;  // AA | TC | RD
  query[3] = 0x70;  // Z | AD | CD
  const Query q = mustParse(query);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(query, q, 512));
  CHECK(w.finish() == 44);
  CHECK(buf[2] == 0x81);  // QR | RD
  CHECK(buf[3] == 0x10);  // CD
}

TEST_CASE("writer: PTR target compresses against a suffix of the question") {
  const Bytes query = dnsSdQuery(kTypePTR);
  const Query q = mustParse(query);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(query, q, 512));
  // The target's "demo.svc.cluster.local" matches the question's "Demo..." at 23, case aside.
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypePTR, kClassIN, 5,
                      {kWebWire, RdataKind::kName}));
  // The additional A's owner is the whole PTR target, written at 63.
  REQUIRE(w.addRecord(Section::kAdditional, Owner::name(kWebWire), kTypeA, kClassIN, 5,
                      {"\x0a\x60\x00\x07"s}));
  CHECK(w.finish() == 85);
  const Bytes want = cat({{0x12, 0x34, 0x81, 0x00,   // id, QR | RD
                           0, 1, 0, 1, 0, 0, 0, 1},  // QD=1 AN=1 NS=0 AR=1
                          Bytes(query.begin() + 12, query.end()),
                          // 51: answer
                          {0xC0, 0x0C,               // owner: the question
                           0, 12, 0, 1,              // PTR IN
                           0, 0, 0, 5,               // TTL 5
                           0, 6,                     // RDLENGTH after compression (not 28)
                           3, 'w', 'e', 'b',         // 63: "web"
                           0xC0, 23},                // -> 23 "Demo.svc.cluster.local"
                          // 69: additional
                          {0xC0, 63,                 // owner -> 63, the PTR target
                           0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 96, 0, 7}});
  CHECK(asBytes(w.bytes()) == want);
}

TEST_CASE("writer: SOA in authority, names compressed, NXDOMAIN") {
  // "nope.demo.svc.cluster.local." A IN. Offsets: 12 \4nope  17 \4demo  22 \3svc
  // 26 \7cluster  34 \5local  40 \0  41 type  43 class  45 end.
  const Bytes query = {0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                       4, 'n', 'o', 'p', 'e', 4, 'd', 'e', 'm', 'o', 3, 's', 'v', 'c',
                       7, 'c', 'l', 'u', 's', 't', 'e', 'r', 5, 'l', 'o', 'c', 'a', 'l', 0,
                       0, 1, 0, 1};
  const Query q = mustParse(query);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(query, q, 512));
  w.setRcode(Rcode::kNxDomain);
  w.setFlags(kFlagAA);
  const std::string soa = "\2ns\3dns\7cluster\5local\0"s      // MNAME
                          "\12hostmaster\7cluster\5local\0"s  // RNAME
                          "\0\0\0\1"                          // serial 1
                          "\0\0\x1c\x20"                      // refresh 7200
                          "\0\0\x07\x08"                      // retry 1800
                          "\0\x09\x3a\x80"                    // expire 604800
                          "\0\0\0\x1e"s;                      // minimum 30
  REQUIRE(w.addRecord(Section::kAuthority, Owner::name("\7cluster\5local\0"s), kTypeSOA, kClassIN,
                      30, {soa, RdataKind::kSoa}));
  CHECK(w.finish() == 99);
  const Bytes want = cat({{0xab, 0xcd, 0x85, 0x03,   // QR | AA | RD, rcode 3
                           0, 1, 0, 0, 0, 1, 0, 0},  // QD=1 AN=0 NS=1 AR=0
                          Bytes(query.begin() + 12, query.end()),
                          // 45: authority
                          {0xC0, 26,                 // owner -> 26 "cluster.local"
                           0, 6, 0, 1, 0, 0, 0, 30,  // SOA IN TTL 30
                           0, 42,                    // RDLENGTH 9 + 13 + 20
                           2, 'n', 's', 3, 'd', 'n', 's', 0xC0, 26,               // 57: MNAME
                           10, 'h', 'o', 's', 't', 'm', 'a', 's', 't', 'e', 'r',  // 66: RNAME
                           0xC0, 26,
                           0, 0, 0, 1, 0, 0, 0x1c, 0x20, 0, 0, 0x07, 0x08,  // serial..retry
                           0, 0x09, 0x3a, 0x80, 0, 0, 0, 0x1e}});           // expire, minimum
  CHECK(asBytes(w.bytes()) == want);
}

TEST_CASE("writer: SRV target is written uncompressed but later names may point to it") {
  const Bytes query = dnsSdQuery(kTypeSRV);
  const Query q = mustParse(query);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(query, q, 512));
  const std::string srv = "\0\0\0\x0a\0\x50"s + kWebWire;  // priority 0, weight 10, port 80
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypeSRV, kClassIN, 5, {srv}));
  REQUIRE(w.addRecord(Section::kAdditional, Owner::name(kWebWire), kTypeA, kClassIN, 5,
                      {"\x0a\x60\x00\x07"s}));
  const Bytes want = cat({{0x12, 0x34, 0x81, 0x00, 0, 1, 0, 1, 0, 0, 0, 1},
                          Bytes(query.begin() + 12, query.end()),
                          {0xC0, 0x0C, 0, 33, 0, 1, 0, 0, 0, 5, 0, 34,  // 51: SRV, RDLENGTH 34
                           0, 0, 0, 10, 0, 80},                          // 63: prio, weight, port
                          Bytes(kWebWire.begin(), kWebWire.end()),        // 69: target, in full
                          {0xC0, 69, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 96, 0, 7}});
  CHECK(w.finish() == want.size());
  CHECK(asBytes(w.bytes()) == want);
}

TEST_CASE("writer: EDNS reply has our UDP size, version 0, DO echoed") {
  // "demo." A IN + OPT(4096, DO=1). 12 \4demo 17 \0 18 type 20 class 22 OPT.
  const Bytes query = {0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
                       4, 'd', 'e', 'm', 'o', 0, 0, 1, 0, 1,
                       0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0};
  const Query q = mustParse(query);
  REQUIRE(q.edns.dnssecOk);
  std::array<uint8_t, 4096> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(query, q, udpLimit(q, 4096)));
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
  CHECK(w.finish() == 49);
  const Bytes want = {0xbe, 0xef, 0x81, 0x00, 0, 1, 0, 1, 0, 0, 0, 1,  // AR=1: the OPT
                      4, 'd', 'e', 'm', 'o', 0, 0, 1, 0, 1,
                      0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 96, 0, 1,
                      0,             // OPT owner: root
                      0, 41,         // TYPE OPT
                      0x04, 0xd0,    // CLASS: our UDP size 1232
                      0, 0,          // ext-rcode 0, version 0
                      0x80, 0,       // DO echoed
                      0, 0};         // RDLENGTH 0
  CHECK(asBytes(w.bytes()) == want);
  CHECK(w.finish() == 49);  // a second finish() adds no second OPT
}

TEST_CASE("writer: BADVERS goes into the OPT extended RCODE, header rcode 0") {
  // "demo." A IN + OPT(4096, version 1, DO=0).
  const Bytes query = {0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
                       4, 'd', 'e', 'm', 'o', 0, 0, 1, 0, 1,
                       0, 0, 41, 0x10, 0x00, 0, 1, 0, 0, 0, 0};
  const Query q = mustParse(query);
  REQUIRE(q.edns.version == 1);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  w.setEdnsUdpSize(1400);
  REQUIRE(w.start(query, q, udpLimit(q, 1232)));
  w.setRcode(Rcode::kBadVers);
  const Bytes want = {0xbe, 0xef, 0x81, 0x00,   // rcode low bits: 16 & 0xF = 0
                      0, 1, 0, 0, 0, 0, 0, 1,
                      4, 'd', 'e', 'm', 'o', 0, 0, 1, 0, 1,
                      0, 0, 41, 0x05, 0x78,     // OPT, CLASS 1400
                      1,                        // ext-rcode high: 16 >> 4 = 1
                      0,                        // our version 0
                      0, 0,                     // DO=0 as asked
                      0, 0};
  CHECK(w.finish() == want.size());
  CHECK(asBytes(w.bytes()) == want);
}

TEST_CASE("writer: FORMERR without a question") {
  const Bytes query = {0x55, 0xaa, 0x01, 0x30, 0, 2, 0, 0, 0, 0, 0, 0, 0xff};  // QDCOUNT 2, AD|CD
  std::array<uint8_t, 512> buf;
  buf.fill(0xee);
  ResponseWriter w(buf);
  REQUIRE(w.startHeaderOnly(query, 512));
  w.setRcode(Rcode::kFormErr);
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 1, {kA1}));
  CHECK(w.finish() == 12);
  const Bytes want = {0x55, 0xaa, 0x81, 0x01,  // QR | RD, rcode FORMERR (opcode, RD only)
                      0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(asBytes(w.bytes()) == want);
  CHECK_FALSE(w.startHeaderOnly(std::span<const uint8_t>(query.data(), 11), 512));
}

TEST_CASE("writer: addRecord refuses past the limit and changes nothing") {
  const Query q = mustParse(kQueryA);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, 60));  // room for exactly one 16-byte answer
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
  const Bytes before = asBytes(w.bytes());
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
  // A named owner that would fit only partially, and RDATA names, fail the same way.
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::name("\1x\0"s), kTypeA, kClassIN, 30, {kA1}));
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::question(), kTypeCNAME, kClassIN, 30,
                          {"\1x\0"s, RdataKind::kName}));
  CHECK(w.size() == 60);
  CHECK(w.count(Section::kAnswer) == 1);
  CHECK(asBytes(w.bytes()) == before);
  CHECK(w.mark().targets == 1);  // only the question
  w.setFlags(kFlagTC);
  CHECK(w.finish() == 60);
  CHECK(buf[2] == 0x83);  // QR | TC | RD
}

TEST_CASE("writer: with EDNS the OPT's 11 bytes are reserved") {
  const Bytes query = {0, 7, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
                       4, 'd', 'e', 'm', 'o', 0, 0, 1, 0, 1,
                       0, 0, 41, 0x02, 0x00, 0, 0, 0, 0, 0, 0};
  const Query q = mustParse(query);
  std::array<uint8_t, 512> buf{};
  {
    ResponseWriter w(buf);
    REQUIRE(w.start(query, q, 48));  // 22 + 16 + 11 = 49: one byte short
    CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
    CHECK(w.finish() == 33);
  }
  {
    ResponseWriter w(buf);
    REQUIRE(w.start(query, q, 49));
    CHECK(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
    CHECK(w.finish() == 49);
  }
  {
    ResponseWriter w(buf);
    CHECK_FALSE(w.start(query, q, 32));  // header + question + OPT do not fit
    CHECK(w.finish() == 0);
  }
}

TEST_CASE("writer: rollback restores position, counts and the compression table") {
  const Query q = mustParse(kQueryA);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, 512));
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
  const auto m = w.mark();
  CHECK(m.pos == 60);
  CHECK(m.counts[0] == 1);
  CHECK(m.targets == 1);
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypeCNAME, kClassIN, 30,
                      {"\3foo\3bar\0"s, RdataKind::kName}));
  REQUIRE(w.addRecord(Section::kAdditional, Owner::name("\3baz\0"s), kTypeA, kClassIN, 30, {kA1}));
  CHECK(w.mark().targets == 3);
  w.rollback(m);
  CHECK(w.size() == 60);
  CHECK(w.count(Section::kAnswer) == 1);
  CHECK(w.count(Section::kAdditional) == 0);
  CHECK(w.mark().targets == 1);
  // "foo.bar." must now be written in full: the entry for the rolled-back copy is gone.
  REQUIRE(w.addRecord(Section::kAnswer, Owner::name("\3foo\3bar\0"s), kTypeA, kClassIN, 30, {kA1}));
  const Bytes tail = {3, 'f', 'o', 'o', 3, 'b', 'a', 'r', 0, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 96, 0, 1};
  CHECK(asBytes(w.bytes().subspan(60)) == tail);
  CHECK(w.finish() == 60 + tail.size());
  CHECK(buf[7] == 2);  // ANCOUNT
}

TEST_CASE("writer: sections must be written in order") {
  const Query q = mustParse(kQueryA);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, 512));
  REQUIRE(w.addRecord(Section::kAuthority, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
  CHECK(w.addRecord(Section::kAdditional, Owner::question(), kTypeA, kClassIN, 30, {kA1}));
  CHECK(w.size() == 44 + 32);
}

TEST_CASE("writer: malformed RDATA names are refused") {
  const Query q = mustParse(kQueryA);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, 512));
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::question(), kTypeCNAME, kClassIN, 1,
                          {"\3foo"s, RdataKind::kName}));               // no root
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::question(), kTypeCNAME, kClassIN, 1,
                          {"\3foo\0\0"s, RdataKind::kName}));           // bytes after the name
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::question(), kTypeSOA, kClassIN, 1,
                          {"\0\0\0\0\0"s, RdataKind::kSoa}));           // 2 names, 3 of 20 bytes
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::name("\3foo"s), kTypeA, kClassIN, 1, {kA1}));
  CHECK(w.size() == 44);
  CHECK(w.mark().targets == 1);
}

TEST_CASE("writer: no compression pointer to offsets of 0x4000 or more") {
  const Query q = mustParse(kQueryA);
  std::vector<uint8_t> buf(kMaxMessage);
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, kMaxMessage));
  // 44: "foo." is written early and can be pointed to.
  REQUIRE(w.addRecord(Section::kAnswer, Owner::name("\3foo\0"s), kTypeA, kClassIN, 1, {kA1}));
  // Two opaque 9000-byte records push the position past 0x4000 = 16384.
  const std::string big(9000, 'x');
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypeTXT, kClassIN, 1, {big}));
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypeTXT, kClassIN, 1, {big}));
  const size_t at = w.size();
  REQUIRE(at > 0x4000);
  REQUIRE(w.addRecord(Section::kAnswer, Owner::name("\3bar\0"s), kTypeA, kClassIN, 1, {kA1}));
  REQUIRE(w.addRecord(Section::kAnswer, Owner::name("\3bar\0"s), kTypeA, kClassIN, 1, {kA1}));
  REQUIRE(w.addRecord(Section::kAnswer, Owner::name("\3foo\0"s), kTypeA, kClassIN, 1, {kA1}));
  const auto b = w.bytes();
  const Bytes bar = {3, 'b', 'a', 'r', 0};
  CHECK(Bytes(b.begin() + at, b.begin() + at + 5) == bar);            // first "bar.": literal
  CHECK(Bytes(b.begin() + at + 19, b.begin() + at + 24) == bar);      // second: still literal
  CHECK(Bytes(b.begin() + at + 38, b.begin() + at + 40) == Bytes{0xC0, 44});  // "foo." -> 44
  CHECK(w.count(Section::kAnswer) == 6);
}

TEST_CASE("writer: the compression table holds at most kMaxCompressionTargets") {
  const Query q = mustParse(kQueryA);
  std::vector<uint8_t> buf(kMaxMessage);
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, kMaxMessage));
  for (int i = 0; i < 100; ++i) {
    const std::string owner = "\2n"s + static_cast<char>('0' + i % 10) + "\1"s +
                              static_cast<char>('a' + i / 10) + "\0"s;
    REQUIRE(w.addRecord(Section::kAnswer, Owner::name(owner), kTypeA, kClassIN, 1, {kA1}));
  }
  CHECK(w.mark().targets == ResponseWriter::kMaxCompressionTargets);
  CHECK(w.count(Section::kAnswer) == 100);
}

TEST_CASE("writer: start fails when the question does not fit") {
  const Query q = mustParse(kQueryA);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  CHECK_FALSE(w.start(kQueryA, q, 43));
  CHECK_FALSE(w.addRecord(Section::kAnswer, Owner::question(), kTypeA, kClassIN, 1, {kA1}));
  CHECK(w.finish() == 0);
  CHECK(w.start(kQueryA, q, 44));
  std::array<uint8_t, 20> small{};
  ResponseWriter tiny(small);  // the buffer, not only the limit, caps the message
  CHECK_FALSE(tiny.start(kQueryA, q, 512));
}

TEST_CASE("writer: a name starting below 0x4000 whose suffix lies above it") {
  const Query q = mustParse(kQueryA);
  std::vector<uint8_t> buf(kMaxMessage);
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, kMaxMessage));
  // 44 + 2 (owner) + 10 (fixed) + 16324 (RDATA) = 0x3FFC.
  REQUIRE(w.addRecord(Section::kAnswer, Owner::question(), kTypeTXT, kClassIN, 1,
                      {std::string(16324, 'x')}));
  REQUIRE(w.size() == 0x3FFC);
  // 0x3FFC: \3foo, 0x4000: \3bar \0. The whole name can be pointed to, "bar." cannot.
  REQUIRE(w.addRecord(Section::kAnswer, Owner::name("\3foo\3bar\0"s), kTypeA, kClassIN, 1, {kA1}));
  REQUIRE(w.addRecord(Section::kAnswer, Owner::name("\3bar\0"s), kTypeA, kClassIN, 1, {kA1}));
  REQUIRE(w.addRecord(Section::kAnswer, Owner::name("\3foo\3bar\0"s), kTypeA, kClassIN, 1, {kA1}));
  const auto b = w.bytes();
  const size_t second = 0x3FFC + 9 + 14;
  CHECK(Bytes(b.begin() + second, b.begin() + second + 5) == Bytes{3, 'b', 'a', 'r', 0});
  const size_t third = second + 5 + 14;
  CHECK(Bytes(b.begin() + third, b.begin() + third + 2) == Bytes{0xFF, 0xFC});  // -> 0x3FFC
  CHECK(w.size() == third + 2 + 14);
}

// ---- records given as precompiled wire tails (the cluster view's answers) --------------------

namespace {

// TYPE CLASS TTL RDLENGTH RDATA: what follows the owner name on the wire.
Bytes tail(uint16_t type, uint32_t ttl, const std::string& rdata) {
  Bytes t = {uint8_t(type >> 8), uint8_t(type), 0, 1, uint8_t(ttl >> 24), uint8_t(ttl >> 16), uint8_t(ttl >> 8),
             uint8_t(ttl), uint8_t(rdata.size() >> 8), uint8_t(rdata.size())};
  t.insert(t.end(), rdata.begin(), rdata.end());
  return t;
}

}  // namespace

TEST_CASE("writer: addRRsetWire with the question as owner is a pointer and the tail, per record") {
  const Query q = mustParse(kQueryA);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, 512));
  const std::vector<Bytes> tails = {tail(kTypeA, 30, "\x0a\x60\x00\x02"s), tail(kTypeA, 30, "\x0a\x60\x00\x01"s)};
  auto tailOf = [&](size_t i) { return std::span<const uint8_t>(tails[i]); };
  REQUIRE(w.addRRsetWire(Section::kAnswer, Owner::question(), 2, tailOf, 0, 14));
  const Bytes want = cat({{0xbe, 0xef, 0x81, 0x00, 0, 1, 0, 2, 0, 0, 0, 0}, kQuestionA, aAnswer(2), aAnswer(1)});
  CHECK(w.finish() == want.size());
  CHECK(asBytes(w.bytes()) == want);
}

TEST_CASE("writer: a wire-tail SRV target is a compression target, as with addRecord") {
  const Bytes query = dnsSdQuery(kTypeSRV);
  const Query q = mustParse(query);
  const std::string srv = "\0\0\0\x0a\0\x50"s + kWebWire;
  std::array<uint8_t, 512> a{}, b{};
  ResponseWriter byRdata(a), byTail(b);
  REQUIRE(byRdata.start(query, q, 512));
  REQUIRE(byTail.start(query, q, 512));
  REQUIRE(byRdata.addRecord(Section::kAnswer, Owner::question(), kTypeSRV, kClassIN, 5, {srv}));
  const Bytes t = tail(kTypeSRV, 5, srv);
  REQUIRE(byTail.addRRsetWire(Section::kAnswer, Owner::question(), 1, [&](size_t) { return std::span(t); }, 16));
  for (ResponseWriter* w : {&byRdata, &byTail})
    REQUIRE(w->addRecord(Section::kAdditional, Owner::name(kWebWire), kTypeA, kClassIN, 5, {"\x0a\x60\x00\x07"s}));
  CHECK(byTail.finish() == byRdata.finish());
  CHECK(asBytes(byTail.bytes()) == asBytes(byRdata.bytes()));
  CHECK(byTail.bytes()[byTail.size() - 16] == 0xC0);  // the additional owner points at the target (69)
  CHECK(byTail.bytes()[byTail.size() - 15] == 69);
}

TEST_CASE("writer: addRecordWire with a named owner compresses it like addRecord") {
  const Query q = mustParse(kQueryA);
  std::array<uint8_t, 512> a{}, b{};
  ResponseWriter byRdata(a), byTail(b);
  REQUIRE(byRdata.start(kQueryA, q, 512));
  REQUIRE(byTail.start(kQueryA, q, 512));
  const std::string owner = "\5web-0"s + kWebWire;
  REQUIRE(byRdata.addRecord(Section::kAnswer, Owner::name(owner), kTypeA, kClassIN, 30, {kA1}));
  REQUIRE(byRdata.addRecord(Section::kAnswer, Owner::name(owner), kTypeA, kClassIN, 30, {kA1}));
  const Bytes t = tail(kTypeA, 30, kA1);
  REQUIRE(byTail.addRRsetWire(Section::kAnswer, Owner::name(owner), 2, [&](size_t) { return std::span(t); }));
  CHECK(byTail.finish() == byRdata.finish());
  CHECK(asBytes(byTail.bytes()) == asBytes(byRdata.bytes()));
}

TEST_CASE("writer: an RRset of wire tails that does not fit writes nothing") {
  const Query q = mustParse(kQueryA);
  std::array<uint8_t, 512> buf{};
  ResponseWriter w(buf);
  REQUIRE(w.start(kQueryA, q, 44 + 16 + 15));  // one A record, and one byte short of a second
  const Bytes t = tail(kTypeA, 30, kA1);
  auto tailOf = [&](size_t) { return std::span(t); };
  for (size_t fixed : {size_t{0}, size_t{14}}) {
    CAPTURE(fixed);
    CHECK_FALSE(w.addRRsetWire(Section::kAnswer, Owner::question(), 2, tailOf, 0, fixed));
    CHECK(w.size() == 44);
    CHECK(w.count(Section::kAnswer) == 0);
    const std::string srv = "\0\0\0\x0a\0\x50\1x\0"s;  // a target registered, then rolled back
    const Bytes s = tail(kTypeSRV, 30, srv);
    CHECK_FALSE(w.addRRsetWire(Section::kAnswer, Owner::question(), 2, [&](size_t) { return std::span(s); }, 16));
    CHECK(w.mark().targets == 1);
  }
  REQUIRE(w.addRRsetWire(Section::kAnswer, Owner::question(), 1, tailOf, 0, 14));
  CHECK_FALSE(w.addRecordWire(Section::kAdditional, Owner::question(), t));  // 15 bytes left
  CHECK(w.finish() == 44 + 16);

  ResponseWriter ordered(buf);  // sections go in order, whatever the room
  REQUIRE(ordered.start(kQueryA, q, 512));
  REQUIRE(ordered.addRecordWire(Section::kAdditional, Owner::question(), t));
  CHECK_FALSE(ordered.addRecordWire(Section::kAnswer, Owner::question(), t));
  CHECK_FALSE(ordered.addRRsetWire(Section::kAnswer, Owner::question(), 1, tailOf, 0, 14));
  CHECK(ordered.count(Section::kAnswer) == 0);
}
