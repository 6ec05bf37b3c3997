// The answer cache, with a fake clock (now_ms is a plain integer). Upstream responses are written
// by hand from RFC 1035 4.1 (header, question, RRs), RFC 2308 (negative answers with SOA) and
// RFC 6891 6.1 (OPT), with the byte offsets that the TTL rewriting touches noted alongside.
#include "hdnsd/cache/cache.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "../../support/alloc_counter.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"
#include "../../support/wire_bytes.h"

using namespace hdnsd;
using namespace hdnsd::cache;
using hdnsd::test::Bytes;
using hdnsd::test::cat;

namespace {

constexpr uint64_t kT0 = 1'000'000;  // an arbitrary start of the fake monotonic clock

// "www.example.com." as wire, in the case given: 12 \3www 16 \7example 24 \3com 28 \0 (17 bytes).
Bytes name(const char* www, const char* example, const char* com) {
  Bytes n;
  for (const char* l : {www, example, com}) {
    n.push_back(uint8_t(std::strlen(l)));
    for (const char* c = l; *c; ++c) n.push_back(uint8_t(*c));
  }
  n.push_back(0);
  return n;
}

// A client query: id, RD, one question, an OPT (4096, DO as given) when edns.
Bytes makeQuery(uint16_t id, const Bytes& qname, uint16_t qtype, bool edns = false, bool dnssecOk = false,
                uint16_t qclass = dns::kClassIN) {
  Bytes q = {uint8_t(id >> 8), uint8_t(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, uint8_t(edns ? 1 : 0)};
  for (uint8_t b : qname) q.push_back(b);
  for (uint8_t b : {uint8_t(qtype >> 8), uint8_t(qtype), uint8_t(qclass >> 8), uint8_t(qclass)}) q.push_back(b);
  if (edns) {
    for (int b : {0, 0, 41, 0x10, 0x00, 0, 0, dnssecOk ? 0x80 : 0, 0, 0, 0}) q.push_back(uint8_t(b));
  }
  return q;
}

dns::Query parse(const Bytes& pkt) {
  dns::Query q;
  REQUIRE(dns::parseQuery(pkt, &q).has_value());
  return q;
}

// Upstream answer to www.example.com A: two A records (TTL 300 and 60), then the upstream's OPT.
//   0 id 0x7777 (the forwarder's)  2 flags QR AA RD RA  4 qd=1 an=2 ns=0 ar=1
//   12 question (17 + 4)  33 rr1: C00C A IN ttl@39=300 rdlen 4 192.0.2.1
//   49 rr2: C00C A IN ttl@55=60 rdlen 4 192.0.2.2   65 OPT (1232, no DO)   76 end
const Bytes kAnswerA = cat({
    {0x77, 0x77, 0x85, 0x80, 0, 1, 0, 2, 0, 0, 0, 1},
    name("www", "example", "com"), {0, 1, 0, 1},
    {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1},
    {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x00, 0x3c, 0, 4, 192, 0, 2, 2},
    {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}});
constexpr size_t kTtl1 = 39, kTtl2 = 55, kAnswerEnd = 65;

// NXDOMAIN for nope.example.com A with the zone's SOA in authority.
//   12 \4nope 17 \7example 25 \3com 29 \0 30 type 32 class
//   34 SOA owner C011 (example.com) type 6 class 1 ttl@40=3600 rdlen 32
//   46 mname \2ns C011 (5)  51 rname \4host C011 (7)  58 serial refresh retry expire
//   74 minimum = 300   78 end
const Bytes kNxdomain = cat({
    {0x77, 0x78, 0x81, 0x83, 0, 1, 0, 0, 0, 1, 0, 0},
    {4, 'n', 'o', 'p', 'e'}, {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0}, {0, 1, 0, 1},
    {0xc0, 0x11, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 32},
    {2, 'n', 's', 0xc0, 0x11, 4, 'h', 'o', 's', 't', 0xc0, 0x11},
    {0, 0, 0, 1, 0, 0, 0x1c, 0x20, 0, 0, 0x07, 0x08, 0, 0x09, 0x3a, 0x80, 0, 0, 0x01, 0x2c}});
constexpr size_t kSoaTtl = 40;

// "<first>.example.com." with a 4-letter first label (the NXDOMAIN answer's question).
Bytes nope(const char* first) {
  Bytes n = {4};
  for (const char* c = first; *c; ++c) n.push_back(uint8_t(*c));
  return cat({n, {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0}});
}

Config testConfig() {
  Config c;
  c.seed[0] = 1;
  c.seed[1] = 2;
  return c;
}

struct Client {
  Bytes pkt;
  dns::Query q;
  Key key;
};
Client client(const Cache& c, const Bytes& pkt) {
  Client cl{pkt, parse(pkt), {}};
  cl.key = c.makeKey(cl.q);
  return cl;
}

uint8_t gOut[dns::kMaxMessage];

LookupResult look(Cache& c, const Client& cl, uint64_t now, size_t limit = dns::kMaxMessage,
                  Serve serve = Serve::kFreshOnly) {
  return c.lookup(cl.key, cl.pkt, cl.q, now, std::span<uint8_t>(gOut, sizeof gOut), limit, serve);
}

Bytes outBytes(const LookupResult& r) { return Bytes(gOut, gOut + r.size); }

uint32_t ttlAt(size_t off) { return dns::getU32(gOut + off); }

}  // namespace

TEST_CASE("cache: a hit restores ID and question case, ages TTLs, replaces the upstream's OPT") {
  Cache c(testConfig());
  const Client ins = client(c, makeQuery(0x7777, name("www", "example", "com"), dns::kTypeA, true));
  REQUIRE(c.insert(ins.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  CHECK(c.entries() == 1);

  const Client cl = client(c, makeQuery(0xbeef, name("WwW", "ExAmPlE", "COM"), dns::kTypeA, true, true));
  const Client plain = client(c, makeQuery(0xbeef, name("WwW", "ExAmPlE", "COM"), dns::kTypeA, true, false));
  auto r = look(c, plain, kT0 + 10'500);  // 10.5 s later: whole seconds are taken off
  REQUIRE(r.status == Status::kFresh);
  CHECK_FALSE(r.truncated);
  const Bytes expected = cat({
      {0xbe, 0xef, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 1},  // client ID; QR RD RA, AA cleared
      name("WwW", "ExAmPlE", "COM"), {0, 1, 0, 1},      // the question exactly as asked
      {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x22, 0, 4, 192, 0, 2, 1},  // 300 - 10 = 290
      {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x00, 0x32, 0, 4, 192, 0, 2, 2},  // 60 - 10 = 50
      {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}});                      // our OPT: 1232, DO=0
  CHECK(outBytes(r) == expected);
  // The DO=1 client has another key: the DO=0 answer has no RRSIGs to give it.
  CHECK(look(c, cl, kT0 + 10'500).status == Status::kMiss);
}

TEST_CASE("cache: without EDNS in the query no OPT is added; RD comes from the query") {
  Cache c(testConfig());
  const Client cl = client(c, makeQuery(0x0102, name("www", "example", "com"), dns::kTypeA));
  REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  Bytes pkt = cl.pkt;
  pkt[2] = 0x00;  // RD=0
  const Client norec = client(c, pkt);
  auto r = look(c, norec, kT0);
  REQUIRE(r.status == Status::kFresh);
  CHECK(r.size == kAnswerEnd);
  CHECK(dns::getU16(gOut + dns::kOffAr) == 0);
  CHECK(dns::getU16(gOut + dns::kOffFlags) == 0x8080);  // QR RA: no RD, no AA
  CHECK(ttlAt(kTtl1) == 300);
  CHECK(ttlAt(kTtl2) == 60);
}

TEST_CASE("cache: expiry at the least TTL of answer and authority") {
  Cache c(testConfig());
  const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  auto r = look(c, cl, kT0 + 59'999);
  REQUIRE(r.status == Status::kFresh);
  CHECK(ttlAt(kTtl1) == 241);
  CHECK(ttlAt(kTtl2) == 1);  // never 0 while fresh
  CHECK(look(c, cl, kT0 + 60'000).status == Status::kMiss);
  CHECK(c.containsFresh(cl.key, kT0 + 59'999));
  CHECK_FALSE(c.containsFresh(cl.key, kT0 + 60'000));
}

TEST_CASE("cache: --max-ttl and --min-ttl clamp every TTL and the entry's") {
  SUBCASE("max") {
    Config cfg = testConfig();
    cfg.maxTtl_s = 30;
    Cache c(cfg);
    const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
    REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
    REQUIRE(look(c, cl, kT0 + 5'000).status == Status::kFresh);
    CHECK(ttlAt(kTtl1) == 25);
    CHECK(ttlAt(kTtl2) == 25);
    CHECK(look(c, cl, kT0 + 30'000).status == Status::kMiss);
  }
  SUBCASE("min") {
    Config cfg = testConfig();
    cfg.minTtl_s = 100;
    Cache c(cfg);
    const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
    REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
    REQUIRE(look(c, cl, kT0 + 90'000).status == Status::kFresh);  // past the upstream's 60
    CHECK(ttlAt(kTtl1) == 210);
    CHECK(ttlAt(kTtl2) == 10);
    CHECK(look(c, cl, kT0 + 100'000).status == Status::kMiss);
  }
  SUBCASE("TTL 0 is not cached unless --min-ttl lifts it") {
    Bytes zero = kAnswerA;
    zero[kTtl2 + 3] = 0;
    Cache c(testConfig());
    const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
    CHECK(c.insert(cl.key, zero, kT0) == InsertOutcome::kZeroTtl);
    CHECK(c.entries() == 0);
    CHECK(c.stats().inserts[size_t(InsertOutcome::kZeroTtl)] == 1);
  }
  SUBCASE("a TTL with the top bit set counts as 0 (RFC 2181 8)") {
    Bytes huge = kAnswerA;
    huge[kTtl2] = 0x80;
    Cache c(testConfig());
    const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
    CHECK(c.insert(cl.key, huge, kT0) == InsertOutcome::kZeroTtl);
  }
}

TEST_CASE("cache: NXDOMAIN is cached min(SOA TTL, MINIMUM) and served with its SOA, aged") {
  Cache c(testConfig());
  const Client cl = client(c, makeQuery(0x4242, nope("NoPe"), dns::kTypeA, true));
  REQUIRE(c.insert(cl.key, kNxdomain, kT0) == InsertOutcome::kNegative);
  auto r = look(c, cl, kT0 + 100'000);
  REQUIRE(r.status == Status::kFresh);
  CHECK(r.negative);
  CHECK(r.rcode == 3);
  CHECK(dns::getU16(gOut + dns::kOffFlags) == 0x8183);
  CHECK(dns::getU16(gOut + dns::kOffNs) == 1);
  CHECK(ttlAt(kSoaTtl) == 200);  // 300 (MINIMUM < TTL 3600) - 100
  CHECK(gOut[12 + 1] == 'N');    // the search-path query's case comes back
  CHECK(r.size == kNxdomain.size() + 11);
  CHECK(look(c, cl, kT0 + 300'000).status == Status::kMiss);
}

TEST_CASE("cache: --negative-max-ttl caps negative answers; no SOA, not cached") {
  Config cfg = testConfig();
  cfg.negativeMaxTtl_s = 60;
  Cache c(cfg);
  const Client cl = client(c, makeQuery(1, nope("nope"), dns::kTypeA));
  REQUIRE(c.insert(cl.key, kNxdomain, kT0) == InsertOutcome::kNegative);
  REQUIRE(look(c, cl, kT0).status == Status::kFresh);
  CHECK(ttlAt(kSoaTtl) == 60);
  CHECK(look(c, cl, kT0 + 60'000).status == Status::kMiss);

  Bytes noSoa(kNxdomain.begin(), kNxdomain.begin() + 34);  // header + question only
  noSoa[dns::kOffNs + 1] = 0;
  CHECK(c.insert(cl.key, noSoa, kT0) == InsertOutcome::kNoSoa);
  // NOERROR without answers is NODATA: negative, SOA needed too.
  Bytes nodata = kNxdomain;
  nodata[3] = 0x80;
  CHECK(c.insert(cl.key, nodata, kT0) == InsertOutcome::kNegative);
  noSoa[3] = 0x80;
  CHECK(c.insert(cl.key, noSoa, kT0) == InsertOutcome::kNoSoa);
}

TEST_CASE("cache: SERVFAIL is kept --servfail-ttl seconds, never stale, never over a good answer") {
  Bytes servfail = cat({{0x77, 0x77, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 0},
                        name("www", "example", "com"), {0, 1, 0, 1}});
  Cache c(testConfig());
  const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  REQUIRE(c.insert(cl.key, servfail, kT0) == InsertOutcome::kServfail);
  auto r = look(c, cl, kT0 + 4'999);
  CHECK(r.status == Status::kFresh);
  CHECK(r.rcode == 2);
  CHECK(look(c, cl, kT0 + 5'000, dns::kMaxMessage, Serve::kStaleToo).status == Status::kMiss);
  CHECK(c.entries() == 0);  // a SERVFAIL past its TTL is gone

  REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  CHECK(c.insert(cl.key, servfail, kT0 + 70'000) == InsertOutcome::kKeptStale);
  CHECK(look(c, cl, kT0 + 70'000, dns::kMaxMessage, Serve::kStaleToo).status == Status::kStale);

  Config off = testConfig();
  off.servfailTtl_s = 0;
  Cache c2(off);
  CHECK(c2.insert(cl.key, servfail, kT0) == InsertOutcome::kZeroTtl);
  Config big = testConfig();
  big.servfailTtl_s = 3600;  // RFC 9520: at most 5 minutes
  Cache c3(big);
  CHECK(c3.config().servfailTtl_s == 300);
}

TEST_CASE("cache: TC, other RCODEs, queries, malformed and foreign answers are not cached") {
  Cache c(testConfig());
  const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  Bytes tc = kAnswerA;
  tc[2] |= 0x02;
  CHECK(c.insert(cl.key, tc, kT0) == InsertOutcome::kTruncated);
  Bytes refused = kAnswerA;
  refused[3] = 0x85;
  CHECK(c.insert(cl.key, refused, kT0) == InsertOutcome::kRcode);
  Bytes query = kAnswerA;
  query[2] &= 0x7f;
  CHECK(c.insert(cl.key, query, kT0) == InsertOutcome::kMalformed);
  Bytes cut(kAnswerA.begin(), kAnswerA.begin() + 60);  // inside rr2
  CHECK(c.insert(cl.key, cut, kT0) == InsertOutcome::kMalformed);
  Bytes badver = kAnswerA;
  badver[70] = 1;  // OPT extended RCODE high bits: BADVERS
  CHECK(c.insert(cl.key, badver, kT0) == InsertOutcome::kRcode);
  const Client aaaa = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeAAAA));
  CHECK(c.insert(aaaa.key, kAnswerA, kT0) == InsertOutcome::kQuestionMismatch);
  const Client other = client(c, makeQuery(1, name("www", "example", "org"), dns::kTypeA));
  CHECK(c.insert(other.key, kAnswerA, kT0) == InsertOutcome::kQuestionMismatch);
  // An OPT followed by another record: stripping it would move names others may point to.
  Bytes optFirst = cat({{0x77, 0x77, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 2},
                        name("www", "example", "com"), {0, 1, 0, 1},
                        {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0},
                        {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1}});
  CHECK(c.insert(cl.key, optFirst, kT0) == InsertOutcome::kOptNotLast);
  CHECK(c.entries() == 0);
  CHECK(look(c, cl, kT0).status == Status::kMiss);
  CHECK(c.stats().misses == 1);
}

TEST_CASE("cache: names that point into bytes a hit rewrites (header, TTLs) are not cached") {
  Cache c(testConfig());
  const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  Bytes intoTtl = kAnswerA;
  intoTtl[50] = 39;  // rr2's owner -> offset 39, rr1's TTL (00 00 01 2c reads as the root today)
  CHECK(c.insert(cl.key, intoTtl, kT0) == InsertOutcome::kMalformed);
  Bytes throughTtl = kAnswerA;
  throughTtl[50] = 36;  // -> 36: \1 00 \1 00 \0, a name whose last labels are rr1's TTL bytes 39, 40
  CHECK(c.insert(cl.key, throughTtl, kT0) == InsertOutcome::kMalformed);
  Bytes intoHeader = kAnswerA;
  intoHeader[50] = 4;  // -> QDCOUNT
  CHECK(c.insert(cl.key, intoHeader, kT0) == InsertOutcome::kMalformed);
  CHECK(c.entries() == 0);
}

TEST_CASE("cache: the key includes type, class and DO") {
  Cache c(testConfig());
  const Client a = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA, true, false));
  REQUIRE(c.insert(a.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  CHECK(look(c, a, kT0).status == Status::kFresh);
  CHECK(look(c, client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA, true, true)), kT0).status ==
        Status::kMiss);
  CHECK(look(c, client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeAAAA)), kT0).status ==
        Status::kMiss);
  CHECK(look(c, client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA, false, false, dns::kClassCH)),
             kT0).status == Status::kMiss);
  // Without EDNS, DO is 0: the same entry.
  CHECK(look(c, client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA)), kT0).status ==
        Status::kFresh);
}

TEST_CASE("cache: the hash is seeded, and a hash collision is still a miss (full key compared)") {
  Config s1 = testConfig(), s2 = testConfig();
  s2.seed[0] = 99;
  Cache c1(s1), c2(s2);
  const Bytes pkt = makeQuery(1, name("www", "example", "com"), dns::kTypeA);
  CHECK(client(c1, pkt).key.hash == client(c1, pkt).key.hash);
  CHECK(client(c1, pkt).key.hash != client(c2, pkt).key.hash);
  Config zero;  // seed 0: random per instance
  Cache r1(zero), r2(zero);
  CHECK(r1.seed() != r2.seed());

  const Client www = client(c1, pkt);
  REQUIRE(c1.insert(www.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  Client forged = client(c1, makeQuery(1, name("xyz", "example", "com"), dns::kTypeA));
  forged.key.hash = www.key.hash;  // what a collision would look like
  CHECK(look(c1, forged, kT0).status == Status::kMiss);
  Client forgedDo = client(c1, makeQuery(1, name("www", "example", "com"), dns::kTypeA, true, true));
  forgedDo.key.hash = www.key.hash;  // same name, type and class; only DO differs
  CHECK(look(c1, forgedDo, kT0).status == Status::kMiss);
  Client forgedType = client(c1, makeQuery(1, name("www", "example", "com"), dns::kTypeAAAA));
  forgedType.key.hash = www.key.hash;
  CHECK(look(c1, forgedType, kT0).status == Status::kMiss);
  CHECK(look(c1, www, kT0).status == Status::kFresh);
}

TEST_CASE("cache: serve-stale only when asked, TTL --stale-ttl, up to --max-stale") {
  Config cfg = testConfig();
  cfg.maxStale_s = 3600;
  Cache c(cfg);
  const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  CHECK(look(c, cl, kT0 + 61'000).status == Status::kMiss);  // expired, stale not allowed
  CHECK(c.entries() == 1);                                    // but kept for a failure
  auto r = look(c, cl, kT0 + 61'000, dns::kMaxMessage, Serve::kStaleToo);
  REQUIRE(r.status == Status::kStale);
  CHECK(ttlAt(kTtl1) == 30);
  CHECK(ttlAt(kTtl2) == 30);
  CHECK(c.stats().staleServed == 1);
  CHECK(look(c, cl, kT0 + 60'000 + 3'599'999, dns::kMaxMessage, Serve::kStaleToo).status == Status::kStale);
  CHECK(look(c, cl, kT0 + 60'000 + 3'600'000, dns::kMaxMessage, Serve::kStaleToo).status == Status::kMiss);
  CHECK(c.entries() == 0);
  CHECK(c.stats().evictions[size_t(EvictReason::kExpired)] == 1);
}

TEST_CASE("cache: prefetch is flagged once when a hit comes with < threshold of the TTL left") {
  Cache c(testConfig());  // 10 %: of 60 s, the last 6 s
  const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  CHECK_FALSE(look(c, cl, kT0 + 54'000).prefetch);
  auto r = look(c, cl, kT0 + 54'001);
  CHECK(r.status == Status::kFresh);
  CHECK(r.prefetch);
  CHECK_FALSE(look(c, cl, kT0 + 55'000).prefetch);  // asked for already
  CHECK(c.stats().prefetches == 1);
  REQUIRE(c.insert(cl.key, kAnswerA, kT0 + 56'000) == InsertOutcome::kPositive);  // refreshed
  CHECK(c.stats().replaced == 1);
  CHECK(look(c, cl, kT0 + 56'000 + 54'001).prefetch);

  Config off = testConfig();
  off.prefetchPercent = 0;
  Cache c2(off);
  REQUIRE(c2.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  CHECK_FALSE(look(c2, cl, kT0 + 59'000).prefetch);
}

TEST_CASE("cache: an answer over the limit becomes TC=1 with the question (and OPT) only") {
  Cache c(testConfig());
  const Client cl = client(c, makeQuery(0xabcd, name("WWW", "example", "com"), dns::kTypeA, true));
  REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  auto r = look(c, cl, kT0, 75);  // 65 + 11 = 76 needed
  REQUIRE(r.status == Status::kFresh);
  CHECK(r.truncated);
  const Bytes expected = cat({{0xab, 0xcd, 0x83, 0x80, 0, 1, 0, 0, 0, 0, 0, 1},  // QR TC RD RA
                              name("WWW", "example", "com"), {0, 1, 0, 1},
                              {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}});
  CHECK(outBytes(r) == expected);
  CHECK(look(c, cl, kT0, 76).truncated == false);
  CHECK(c.stats().truncated == 1);
}

TEST_CASE("cache: A/AAAA RRsets are indexed in the output and rotate in place") {
  Cache c(testConfig());
  const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  auto r = look(c, cl, kT0);
  REQUIRE(r.rrsetCount == 1);
  CHECK(r.rrsets[0].offset == 33);
  CHECK(r.rrsets[0].count == 2);
  CHECK(r.rrsets[0].recordSize == 16);
  CHECK(r.rrsets[0].type == dns::kTypeA);
  const uint64_t before = [] { test::startCountingAllocations(); return 0; }();
  rotateRrset(std::span<uint8_t>(gOut, r.size), r.rrsets[0], 1);
  CHECK(test::stopCountingAllocations() == before);
  CHECK(gOut[33 + 15] == 2);  // 192.0.2.2 first now
  CHECK(gOut[49 + 15] == 1);
  CHECK(ttlAt(kTtl1) == 60);  // TTLs travel with their records
}

TEST_CASE("cache: an RRset that another name reads through (a pointer into it) is not indexed") {
  Cache c(testConfig());
  const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  Bytes pointedAt(kAnswerA.begin(), kAnswerA.begin() + kAnswerEnd);  // without the OPT
  // Additional: an A record whose owner is a pointer to 33, rr1's owner (C00C): moving rr1
  // would change that name.
  for (int b : {0xc0, 0x21, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1}) pointedAt.push_back(uint8_t(b));
  REQUIRE(c.insert(cl.key, pointedAt, kT0) == InsertOutcome::kPositive);
  auto r = look(c, cl, kT0);
  REQUIRE(r.status == Status::kFresh);
  CHECK(r.rrsetCount == 0);
}

TEST_CASE("cache: SIEVE evicts the first unvisited entry from the hand; LRU the least recent") {
  // Capacity 3: insert A B C, hit A, insert D (both evict B), hit C, insert E.
  // LRU order then (newest first) C D A: E evicts A. SIEVE: the hand stopped at C (the entry
  // after B); C is visited so it is spared and D, unvisited, goes.
  auto run = [](Policy p) {
    Config cfg = testConfig();
    cfg.maxEntries = 3;
    cfg.policy = p;
    Cache c(cfg);
    std::vector<Client> cl;
    for (const char* n : {"a", "b", "c", "d", "e"}) {
      Bytes resp = kAnswerA;
      resp[13] = uint8_t(n[0]);
      resp[14] = uint8_t(n[0]);
      resp[15] = uint8_t(n[0]);
      cl.push_back(client(c, makeQuery(1, name(std::string(3, n[0]).c_str(), "example", "com"), dns::kTypeA)));
      REQUIRE(c.insert(cl.back().key, resp, kT0) == InsertOutcome::kPositive);
      if (n[0] == 'a' || n[0] == 'b') continue;
      if (n[0] == 'c') look(c, cl[0], kT0);
      if (n[0] == 'd') {
        CHECK_FALSE(c.containsFresh(cl[1].key, kT0));  // B evicted
        look(c, cl[2], kT0);
      }
    }
    std::string left;
    for (size_t i = 0; i < cl.size(); ++i) {
      if (c.containsFresh(cl[i].key, kT0)) left += char('a' + i);
    }
    CHECK(c.stats().evictions[size_t(EvictReason::kEntries)] == 2);
    return left;
  };
  CHECK(run(Policy::kLru) == "cde");
  CHECK(run(Policy::kSieve) == "ace");
}

TEST_CASE("cache: the byte bound evicts too, and counts the reason") {
  Config cfg = testConfig();
  cfg.maxBytes = 2 * Cache::entryBytes(kAnswerEnd, 2, 1) + 10;
  Cache c(cfg);
  std::vector<Client> cl;
  for (char n : {'a', 'b', 'c'}) {
    Bytes resp = kAnswerA;
    resp[13] = resp[14] = resp[15] = uint8_t(n);
    cl.push_back(client(c, makeQuery(1, name(std::string(3, n).c_str(), "example", "com"), dns::kTypeA)));
    REQUIRE(c.insert(cl.back().key, resp, kT0) == InsertOutcome::kPositive);
  }
  CHECK(c.entries() == 2);
  CHECK(c.bytes() == 2 * Cache::entryBytes(kAnswerEnd, 2, 1));
  CHECK(c.stats().bytes == int64_t(c.bytes()));
  CHECK(c.stats().evictions[size_t(EvictReason::kBytes)] == 1);
  CHECK_FALSE(c.containsFresh(cl[0].key, kT0));
  Config tiny = testConfig();
  tiny.maxBytes = 100;
  Cache t(tiny);
  CHECK(t.insert(cl[0].key, kAnswerA, kT0) == InsertOutcome::kQuestionMismatch);
  const Client www = client(t, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  CHECK(t.insert(www.key, kAnswerA, kT0) == InsertOutcome::kTooLarge);
}

TEST_CASE("cache: many entries under churn keep the table consistent") {
  Config cfg = testConfig();
  cfg.maxEntries = 500;
  Cache c(cfg);
  std::vector<Client> cl;
  for (int i = 0; i < 2000; ++i) {
    Bytes resp = kAnswerA;
    resp[13] = uint8_t('a' + i % 26);
    resp[14] = uint8_t('a' + i / 26 % 26);
    resp[15] = uint8_t('a' + i / 676);
    const char label[4] = {char(resp[13]), char(resp[14]), char(resp[15]), 0};
    cl.push_back(client(c, makeQuery(1, name(label, "example", "com"), dns::kTypeA)));
    REQUIRE(c.insert(cl.back().key, resp, kT0 + i) == InsertOutcome::kPositive);
    if (i % 3 == 0) look(c, cl[size_t(i / 2)], kT0 + i);
  }
  CHECK(c.entries() == 500);
  size_t found = 0;
  for (const auto& x : cl) found += c.containsFresh(x.key, kT0 + 2000);
  CHECK(found == 500);
  c.clear();
  CHECK(c.entries() == 0);
  CHECK(c.stats().entries == 0);
}

TEST_CASE("cache: a hit, a stale hit, a truncated hit and a miss allocate nothing") {
  Config cfg = testConfig();
  Cache c(cfg);
  const Client cl = client(c, makeQuery(1, name("WWW", "example", "com"), dns::kTypeA, true));
  const Client missing = client(c, makeQuery(1, name("zzz", "example", "com"), dns::kTypeA, true));
  REQUIRE(c.insert(cl.key, kAnswerA, kT0) == InsertOutcome::kPositive);
  test::startCountingAllocations();
  size_t fresh = 0, stale = 0, truncated = 0, misses = 0;
  for (int i = 0; i < 1000; ++i) {
    fresh += look(c, cl, kT0 + uint64_t(i)).status == Status::kFresh;
    truncated += look(c, cl, kT0, 50).truncated;
    stale += look(c, cl, kT0 + 100'000, dns::kMaxMessage, Serve::kStaleToo).status == Status::kStale;
    misses += look(c, missing, kT0).status == Status::kMiss;
    Key k = c.makeKey(cl.q);
    misses += k.hash != cl.key.hash;
  }
  CHECK(test::stopCountingAllocations() == 0);
  CHECK(fresh == 1000);
  CHECK(stale == 1000);
  CHECK(truncated == 1000);
  CHECK(misses == 1000);
}

TEST_CASE("cache: AD is kept only for a query with DO or AD (RFC 6840 5.8); CD from the query") {
  Cache c(testConfig());
  Bytes ad = kAnswerA;
  ad[3] |= 0x20;
  const Client cl = client(c, makeQuery(1, name("www", "example", "com"), dns::kTypeA));
  REQUIRE(c.insert(cl.key, ad, kT0) == InsertOutcome::kPositive);
  look(c, cl, kT0);
  CHECK((dns::getU16(gOut + 2) & dns::kFlagAD) == 0);
  Bytes withAd = cl.pkt;
  withAd[3] |= 0x30;  // AD and CD in the query
  look(c, client(c, withAd), kT0);
  CHECK((dns::getU16(gOut + 2) & (dns::kFlagAD | dns::kFlagCD)) == (dns::kFlagAD | dns::kFlagCD));
}

TEST_CASE("cache: outcome and reason names for metrics labels") {
  CHECK(std::string(insertOutcomeName(InsertOutcome::kNoSoa)) == "no_soa");
  CHECK(std::string(evictReasonName(EvictReason::kBytes)) == "bytes");
  for (size_t i = 0; i < size_t(InsertOutcome::kCount); ++i) {
    CHECK(std::string(insertOutcomeName(InsertOutcome(i))) != "unknown");
  }
}
