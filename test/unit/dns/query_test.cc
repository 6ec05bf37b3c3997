// parseQuery: header checks, the question, the record walk and EDNS0 (RFC 1035 4.1, RFC 6891 6).
// Every packet is written by hand, one field per comment.
#include "hdnsd/dns/query.h"

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

// Header with RD set, QDCOUNT=1 and the given AN/NS/AR counts.
Bytes header(uint8_t an, uint8_t ns, uint8_t ar) {
  return {0xbe, 0xef, 0x01, 0x00, 0, 1, 0, an, 0, ns, 0, ar};
}
// "demo." A IN: 12..17 the name, 18..21 type and class; ends at 22.
const Bytes kQuestion = {4, 'd', 'e', 'm', 'o', 0, 0, 1, 0, 1};

// OPT record with root owner and the given CLASS, TTL bytes and RDATA.
Bytes opt(uint16_t udp, std::array<uint8_t, 4> ttl, Bytes rdata = {}) {
  Bytes r = {0,                                                   // owner: root
             0, 41,                                               // TYPE OPT
             static_cast<uint8_t>(udp >> 8), static_cast<uint8_t>(udp),  // CLASS: UDP size
             ttl[0], ttl[1], ttl[2], ttl[3],                      // ext-rcode, version, DO|Z
             static_cast<uint8_t>(rdata.size() >> 8), static_cast<uint8_t>(rdata.size())};
  for (uint8_t b : rdata) r.push_back(b);
  return r;
}

hdnsd::Result<void, ParseError> parse(const Bytes& b, Query* q) { return parseQuery(b, q); }

}  // namespace

TEST_CASE("parseQuery: lower-case key, question ends with the packet") {
  const std::array<uint8_t, 25> query = {0xbe, 0xef, 0x01, 0x00,  // id, flags: RD
      0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,              // qd=1 an=ns=ar=0
      0x03, 'W', 'e', 'B', 0x03, 's', 'V', 'c', 0x00,              // WeB.sVc.
      0x00, 0x01, 0x00, 0x01};                                     // A, IN
  Query q;
  REQUIRE(parseQuery(query, &q).has_value());
  CHECK(q.id == 0xbeef);
  CHECK(q.flags == kFlagRD);
  CHECK(q.opcode == 0);
  CHECK(q.qtype == kTypeA);
  CHECK(q.qclass == kClassIN);
  CHECK(q.questionEnd == query.size());
  CHECK(q.qname.wire() == "\3web\3svc\0"s);
  CHECK(q.qname.text() == "web.svc.");
  CHECK(q.qname.hash() == nameHash("\3web\3svc\0"s));  // made in the same pass
  CHECK_FALSE(q.edns.present);
}

TEST_CASE("parseQuery: short header") {
  Query q;
  const Bytes eleven = {0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0};
  CHECK(parse(eleven, &q).error() == ParseError::kShortHeader);
  CHECK(parse({}, &q).error() == ParseError::kShortHeader);
}

TEST_CASE("parseQuery: a response is refused, header fields still filled") {
  const Bytes pkt = cat({{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0},  // QR|RD|RA
                         kQuestion});
  Query q;
  CHECK(parse(pkt, &q).error() == ParseError::kIsResponse);
  CHECK(q.id == 0x1234);
  CHECK(q.flags == 0x8180);
}

TEST_CASE("parseQuery: QDCOUNT 0 and 2 are kQdCount with id, flags and opcode filled") {
  Query q;
  // id 0x0102, flags: opcode 4 (NOTIFY) | RD = 0x2100, QDCOUNT 0.
  const Bytes zero = {0x01, 0x02, 0x21, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(parse(zero, &q).error() == ParseError::kQdCount);
  CHECK(q.id == 0x0102);
  CHECK(q.flags == 0x2100);
  CHECK(q.opcode == 4);
  const Bytes two = cat({{0xab, 0xcd, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0}, kQuestion, kQuestion});
  CHECK(parse(two, &q).error() == ParseError::kQdCount);
  CHECK(q.id == 0xabcd);
  CHECK(q.opcode == 0);
}

TEST_CASE("parseQuery: any opcode parses") {
  const Bytes pkt = cat({{0, 1, 0x10, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, kQuestion});  // opcode 2
  Query q;
  REQUIRE(parse(pkt, &q).has_value());
  CHECK(q.opcode == 2);
}

TEST_CASE("parseQuery: a bad question name is kBadName") {
  Query q;
  // A pointer in the question can only point into the header.
  CHECK(parse(cat({header(0, 0, 0), {0xC0, 0x00, 0, 1, 0, 1}}), &q).error() == ParseError::kBadName);
  CHECK(parse(cat({header(0, 0, 0), {1, 'a', 0xC0, 12, 0, 1, 0, 1}}), &q).error() ==
        ParseError::kBadName);  // loop to its own start
  Bytes longLabel = header(0, 0, 0);
  longLabel.push_back(64);
  longLabel = cat({longLabel, Bytes(64, 'x'), {0, 0, 1, 0, 1}});
  CHECK(parse(longLabel, &q).error() == ParseError::kBadName);
  Bytes tooLong = header(0, 0, 0);  // 4 labels of 63: 257 bytes of wire
  for (int i = 0; i < 4; ++i) {
    tooLong.push_back(63);
    tooLong = cat({tooLong, Bytes(63, 'x')});
  }
  tooLong = cat({tooLong, {0, 0, 1, 0, 1}});
  CHECK(parse(tooLong, &q).error() == ParseError::kBadName);
}

TEST_CASE("parseQuery: truncated everywhere") {
  // demo. A IN + OPT: every proper prefix must fail, and with the right error.
  const Bytes pkt = cat({header(0, 0, 1), kQuestion, opt(1232, {0, 0, 0, 0})});
  REQUIRE(pkt.size() == 33);
  Query q;
  REQUIRE(parse(pkt, &q).has_value());
  for (size_t cut = 0; cut < pkt.size(); ++cut) {
    CAPTURE(cut);
    auto r = parseQuery(std::span<const uint8_t>(pkt.data(), cut), &q);
    REQUIRE_FALSE(r.has_value());
    if (cut < 12) {
      CHECK(r.error() == ParseError::kShortHeader);
    } else if (cut < 22) {
      CHECK(r.error() == ParseError::kShortQuestion);
    } else {
      CHECK(r.error() == ParseError::kBadRecord);
    }
  }
}

TEST_CASE("parseQuery: counts that exceed the packet are kBadRecord") {
  Query q;
  CHECK(parse(cat({header(1, 0, 0), kQuestion}), &q).error() == ParseError::kBadRecord);
  CHECK(parse(cat({header(0, 1, 0), kQuestion}), &q).error() == ParseError::kBadRecord);
  // ARCOUNT 0xFFFF with one OPT present.
  Bytes many = cat({header(0, 0, 0), kQuestion, opt(512, {0, 0, 0, 0})});
  many[10] = 0xff;
  many[11] = 0xff;
  CHECK(parse(many, &q).error() == ParseError::kBadRecord);
  // An answer record whose RDLENGTH runs past the end.
  const Bytes rr = {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 5, 10, 0, 0, 1};  // RDLENGTH 5, 4 given
  CHECK(parse(cat({header(1, 0, 0), kQuestion, rr}), &q).error() == ParseError::kBadRecord);
  // A record whose owner breaks the pointer rule.
  const Bytes fwd = {0xC0, 40, 0, 1, 0, 1, 0, 0, 0, 30, 0, 0};
  CHECK(parse(cat({header(0, 1, 0), kQuestion, fwd}), &q).error() == ParseError::kBadRecord);
}

TEST_CASE("parseQuery: records in other sections are walked, compressed names allowed") {
  // Authority: owner C0 0C (the question), SOA-ish opaque RDATA of 3 bytes; then OPT.
  const Bytes ns = {0xC0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, 3, 1, 2, 3};
  const Bytes pkt = cat({header(0, 1, 1), kQuestion, ns, opt(1400, {0, 0, 0, 0})});
  Query q;
  REQUIRE(parse(pkt, &q).has_value());
  CHECK(q.edns.present);
  CHECK(q.edns.udpSize == 1400);
  CHECK(q.questionEnd == 22);
}

TEST_CASE("parseQuery: OPT fields, DO bit") {
  const Bytes pkt = cat({header(0, 0, 1), kQuestion,
                         opt(4096, {0x00,            // extended RCODE high bits
                                    0x00,            // version 0
                                    0x80, 0x00})});  // DO=1, Z=0
  Query q;
  REQUIRE(parse(pkt, &q).has_value());
  CHECK(q.edns.present);
  CHECK(q.edns.udpSize == 4096);
  CHECK(q.edns.version == 0);
  CHECK(q.edns.dnssecOk);
  CHECK(q.edns.extRcodeHigh == 0);
  CHECK(udpLimit(q, 1232) == 1232);
  CHECK(udpLimit(q, 65535) == 4096);
}

TEST_CASE("parseQuery: OPT version 1 and extended RCODE bits are reported, not rejected") {
  const Bytes pkt = cat({header(0, 0, 1), kQuestion,
                         opt(100, {0x02,            // ext-rcode high = 2
                                   0x01,            // version 1: the caller answers BADVERS
                                   0x00, 0x01})});  // DO=0, a Z bit set (ignored)
  Query q;
  REQUIRE(parse(pkt, &q).has_value());
  CHECK(q.edns.version == 1);
  CHECK(q.edns.extRcodeHigh == 2);
  CHECK_FALSE(q.edns.dnssecOk);
  CHECK(q.edns.udpSize == 100);
  CHECK(udpLimit(q, 1232) == 512);  // below 512 counts as 512
}

TEST_CASE("udpLimit: 512 without EDNS") {
  Query q;
  CHECK(udpLimit(q, 4096) == 512);
}

TEST_CASE("parseQuery: OPT options must tile the RDATA exactly") {
  Query q;
  const std::array<uint8_t, 4> ttl = {0, 0, 0, 0};
  // COOKIE (10), length 8, client cookie.
  const Bytes cookie = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(parse(cat({header(0, 0, 1), kQuestion, opt(1232, ttl, cookie)}), &q).has_value());
  // Two options: COOKIE, then PADDING (12) of length 0.
  CHECK(parse(cat({header(0, 0, 1), kQuestion, opt(1232, ttl, cat({cookie, {0, 12, 0, 0}}))}), &q)
            .has_value());
  // Option length 9 overruns the 12-byte RDATA.
  const Bytes over = {0, 10, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(parse(cat({header(0, 0, 1), kQuestion, opt(1232, ttl, over)}), &q).error() ==
        ParseError::kBadOpt);
  // Two bytes left over: too short for an option header.
  CHECK(parse(cat({header(0, 0, 1), kQuestion, opt(1232, ttl, cat({cookie, {0, 12}}))}), &q)
            .error() == ParseError::kBadOpt);
}

TEST_CASE("parseQuery: a second OPT is kDuplicateOpt") {
  const Bytes pkt = cat({header(0, 0, 2), kQuestion, opt(1232, {0, 0, 0, 0}), opt(1232, {0, 0, 0, 0})});
  Query q;
  CHECK(parse(pkt, &q).error() == ParseError::kDuplicateOpt);
}

TEST_CASE("parseQuery: OPT owner must be the root") {
  Bytes named = {1, 'x', 0,               // owner "x."
                 0, 41, 0x04, 0xd0,       // OPT, 1232
                 0, 0, 0, 0, 0, 0};
  Query q;
  CHECK(parse(cat({header(0, 0, 1), kQuestion, named}), &q).error() == ParseError::kBadOpt);
  // A pointer to the question's root byte (offset 17) decompresses to the root but is not
  // the literal root owner RFC 6891 6.1.2 asks for.
  const Bytes ptr = {0xC0, 17, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
  CHECK(parse(cat({header(0, 0, 1), kQuestion, ptr}), &q).error() == ParseError::kBadOpt);
}

TEST_CASE("parseQuery: type 41 outside the additional section is skipped") {
  const Bytes pkt = cat({header(1, 0, 0), kQuestion, opt(1232, {0, 0, 0x80, 0})});
  Query q;
  REQUIRE(parse(pkt, &q).has_value());
  CHECK_FALSE(q.edns.present);
}

TEST_CASE("parseQuery: trailing bytes after the last record are tolerated") {
  const Bytes pkt = cat({header(0, 0, 1), kQuestion, opt(1232, {0, 0, 0, 0}), {0, 0, 0, 0, 0xff}});
  Query q;
  REQUIRE(parse(pkt, &q).has_value());
  CHECK(q.edns.present);
  CHECK(q.questionEnd == 22);
}

TEST_CASE("parseErrorName: snake_case metric labels") {
  CHECK(std::string(parseErrorName(ParseError::kShortHeader)) == "short_header");
  CHECK(std::string(parseErrorName(ParseError::kIsResponse)) == "is_response");
  CHECK(std::string(parseErrorName(ParseError::kQdCount)) == "qd_count");
  CHECK(std::string(parseErrorName(ParseError::kBadName)) == "bad_name");
  CHECK(std::string(parseErrorName(ParseError::kShortQuestion)) == "short_question");
  CHECK(std::string(parseErrorName(ParseError::kBadRecord)) == "bad_record");
  CHECK(std::string(parseErrorName(ParseError::kBadOpt)) == "bad_opt");
  CHECK(std::string(parseErrorName(ParseError::kDuplicateOpt)) == "duplicate_opt");
}
