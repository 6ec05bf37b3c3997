#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <vector>

#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"
#include "hdnsd/upstream/wire.h"

using namespace hdnsd;

namespace {

// "WwW.ExAmple.COM" A IN, id 0xbeef, RD, optional OPT (DO when asked).
std::vector<uint8_t> clientQuery(bool edns, bool dnssecOk, uint16_t udp = 1232) {
  std::vector<uint8_t> q = {0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, uint8_t(edns ? 1 : 0),
                            3, 'W', 'w', 'W', 7, 'E', 'x', 'A', 'm', 'p', 'l', 'e', 3, 'C', 'O', 'M', 0,
                            0, 1, 0, 1};
  if (edns) q.insert(q.end(), {0, 0, 41, uint8_t(udp >> 8), uint8_t(udp), 0, 0, uint8_t(dnssecOk ? 0x80 : 0), 0, 0, 0});
  return q;
}

// An upstream answer to the lower-cased question with `id`: one A record (pointer to the
// question), then an OPT in the additional section.
std::vector<uint8_t> upstreamAnswer(uint16_t id, bool withOpt = true) {
  std::vector<uint8_t> a = {uint8_t(id >> 8), uint8_t(id), 0x85, 0x80,  // QR AA RD RA
                            0, 1, 0, 1, 0, 0, 0, uint8_t(withOpt ? 1 : 0),
                            3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1,
                            0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1};
  if (withOpt) a.insert(a.end(), {0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0});
  return a;
}

}  // namespace

TEST_CASE("buildUpstreamQuery: our ID, lower-cased question, RD, our OPT with the client's DO") {
  auto pkt = clientQuery(true, true);
  dns::Query q;
  REQUIRE(dns::parseQuery(pkt, &q));
  std::array<uint8_t, 512> out{};
  size_t n = upstream::buildUpstreamQuery(q, 0x1234, out);
  REQUIRE(n == pkt.size());
  CHECK(out[0] == 0x12);
  CHECK(out[1] == 0x34);
  CHECK(dns::getU16(&out[2]) == dns::kFlagRD);
  CHECK(std::memcmp(&out[12], "\3www\7example\3com", 17) == 0);
  CHECK(dns::getU16(&out[n - 11 + 3]) == upstream::kUpstreamEdnsSize);
  CHECK(out[n - 11 + 7] == 0x80);  // DO
}

TEST_CASE("checkAnswer: accepts ours, rejects wrong ID, wrong question, QR=0, overruns") {
  dns::NameKey name;
  REQUIRE(name.assignWire(std::string_view("\3www\7example\3com\0", 17)));
  auto a = upstreamAnswer(0x4242);
  auto ok = upstream::checkAnswer(a, 0x4242, name, 1, 1);
  REQUIRE(ok);
  CHECK(ok->rcode == 0);
  CHECK(ok->optLength == 11);
  CHECK(ok->optOffset == a.size() - 11);

  auto r = upstream::checkAnswer(a, 0x4243, name, 1, 1);
  REQUIRE_FALSE(r);
  CHECK(r.error() == upstream::AnswerError::kIdMismatch);
  r = upstream::checkAnswer(a, 0x4242, name, 28, 1);  // asked AAAA, got an A question back
  REQUIRE_FALSE(r);
  CHECK(r.error() == upstream::AnswerError::kQuestionMismatch);
  dns::NameKey other;
  REQUIRE(other.assignWire(std::string_view("\3www\7example\3org\0", 17)));
  CHECK(upstream::checkAnswer(a, 0x4242, other, 1, 1).error() == upstream::AnswerError::kQuestionMismatch);
  auto notResp = a;
  notResp[2] &= 0x7f;
  CHECK(upstream::checkAnswer(notResp, 0x4242, name, 1, 1).error() == upstream::AnswerError::kNotResponse);
  auto cut = a;
  cut.resize(a.size() - 14);  // ends inside the A record
  CHECK(upstream::checkAnswer(cut, 0x4242, name, 1, 1).error() == upstream::AnswerError::kMalformed);
}

TEST_CASE("stripOpt + finishForClient: client ID and letter case, AA cleared, RA set, our OPT") {
  dns::NameKey name;
  REQUIRE(name.assignWire(std::string_view("\3www\7example\3com\0", 17)));
  auto a = upstreamAnswer(0x4242);
  auto info = upstream::checkAnswer(a, 0x4242, name, 1, 1);
  REQUIRE(info);
  std::array<uint8_t, 1024> buf{};
  size_t n = upstream::stripOpt(a, *info, buf);
  CHECK(n == a.size() - 11);
  CHECK(dns::getU16(&buf[10]) == 0);

  auto pkt = clientQuery(true, false);
  dns::Query q;
  REQUIRE(dns::parseQuery(pkt, &q));
  upstream::ClientQuestion c;
  upstream::captureClient(pkt, q, 1232, &c);
  size_t m = upstream::finishForClient(buf, n, c, 1232);
  REQUIRE(m == n + 11);
  CHECK(buf[0] == 0xbe);
  CHECK(buf[1] == 0xef);
  CHECK(std::memcmp(&buf[12], &pkt[12], 17) == 0);  // "WwW.ExAmple.COM" as asked
  uint16_t flags = dns::getU16(&buf[2]);
  CHECK((flags & dns::kFlagAA) == 0);
  CHECK((flags & dns::kFlagRA) != 0);
  CHECK((flags & dns::kFlagRD) != 0);
  CHECK(dns::getU16(&buf[10]) == 1);           // our OPT
  CHECK(dns::getU16(&buf[m - 11 + 3]) == 1232);
}

TEST_CASE("finishForClient: over the client's size → question only with TC=1; no EDNS → no OPT") {
  std::vector<uint8_t> big = upstreamAnswer(1, false);
  // 40 more A records: 40 * 16 bytes pushes the answer past 512.
  for (int i = 0; i < 40; ++i) big.insert(big.end(), {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, uint8_t(i)});
  dns::putU16(&big[6], 41);
  auto pkt = clientQuery(false, false);
  dns::Query q;
  REQUIRE(dns::parseQuery(pkt, &q));
  upstream::ClientQuestion c;
  upstream::captureClient(pkt, q, 512, &c);
  std::vector<uint8_t> buf(big.begin(), big.end());
  buf.resize(big.size() + 16);
  size_t m = upstream::finishForClient(buf, big.size(), c, 1232);
  CHECK(m == pkt.size());
  CHECK((dns::getU16(&buf[2]) & dns::kFlagTC) != 0);
  CHECK(dns::getU16(&buf[6]) == 0);
  CHECK(dns::getU16(&buf[10]) == 0);
}

TEST_CASE("rebuildQuery: the client's query again, parseable, for the cache's stale lookup") {
  auto pkt = clientQuery(true, true, 4096);
  dns::Query q;
  REQUIRE(dns::parseQuery(pkt, &q));
  upstream::ClientQuestion c;
  upstream::captureClient(pkt, q, 1232, &c);
  std::array<uint8_t, 512> out{};
  size_t n = upstream::rebuildQuery(c, 1, 1, out);
  REQUIRE(n > 0);
  dns::Query r;
  REQUIRE(dns::parseQuery({out.data(), n}, &r));
  CHECK(r.id == 0xbeef);
  CHECK(r.qname.wire() == q.qname.wire());
  CHECK(r.edns.present);
  CHECK(r.edns.dnssecOk);
  CHECK(r.edns.udpSize == 1232);
  CHECK(std::memcmp(&out[12], &pkt[12], 17) == 0);
}
