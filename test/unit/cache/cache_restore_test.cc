// Cache::forEachHottest and Cache::restore (--state-file's cache part): which entries are saved
// and in what order, and that a restored entry answers exactly as the saved one would have at
// the same age. Messages are spelled out from RFC 1035 4.1; the clock is a plain integer.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "hdnsd/cache/cache.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"
#include "../../support/wire_bytes.h"

using namespace hdnsd;
using namespace hdnsd::cache;
using hdnsd::test::Bytes;
using hdnsd::test::cat;

namespace {

constexpr uint64_t kT0 = 10'000'000;

// "<label>.example.com." in wire form.
Bytes qname(const std::string& label) {
  Bytes n = {uint8_t(label.size())};
  for (char c : label) n.push_back(uint8_t(c));
  return cat({n, {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0}});
}

// id 0x7777, QR RD RA, qd=1 an=1; question A IN; one A record (pointer to the question) of `ttl`.
Bytes answer(const std::string& label, uint32_t ttl, uint8_t lastOctet = 1) {
  return cat({{0x77, 0x77, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}, qname(label), {0, 1, 0, 1},
              {0xc0, 0x0c, 0, 1, 0, 1, uint8_t(ttl >> 24), uint8_t(ttl >> 16), uint8_t(ttl >> 8), uint8_t(ttl), 0, 4,
               192, 0, 2, lastOctet}});
}

Bytes query(const std::string& label) {
  return cat({{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, qname(label), {0, 1, 0, 1}});
}

Config cfg(Policy p = Policy::kSieve) {
  Config c;
  c.seed[0] = 3;
  c.seed[1] = 4;
  c.policy = p;
  c.prefetchPercent = 0;
  return c;
}

dns::Query parsed(const Bytes& pkt) {
  dns::Query q;
  REQUIRE(dns::parseQuery(pkt, &q).has_value());
  return q;
}

void put(Cache& c, const std::string& label, uint64_t now, uint32_t ttl = 300) {
  const Bytes q = query(label);
  REQUIRE(c.insert(c.makeKey(parsed(q)), answer(label, ttl), now) == InsertOutcome::kPositive);
}

struct Got {
  LookupResult r;
  Bytes bytes;
};
Got get(Cache& c, const std::string& label, uint64_t now, Serve serve = Serve::kFreshOnly) {
  const Bytes q = query(label);
  const dns::Query pq = parsed(q);
  static uint8_t out[dns::kMaxMessage];
  Got g;
  g.r = c.lookup(c.makeKey(pq), q, pq, now, std::span<uint8_t>(out, sizeof out), sizeof out, serve);
  g.bytes.assign(out, out + g.r.size);
  return g;
}

// The first label of each saved entry, in enumeration order.
std::vector<std::string> hottest(const Cache& c, size_t max, uint64_t now) {
  std::vector<std::string> labels;
  c.forEachHottest(max, now, [&](const EntryView& e) {
    REQUIRE(e.message.size() > 13);
    labels.emplace_back(reinterpret_cast<const char*>(e.message.data() + 13), e.message[12]);
  });
  return labels;
}

}  // namespace

TEST_CASE("forEachHottest (SIEVE): entries hit since the hand passed first, newest first, then the rest") {
  Cache c(cfg());
  for (const char* l : {"aaa", "bbb", "ccc", "ddd"}) put(c, l, kT0);
  CHECK(get(c, "bbb", kT0 + 1).r.status == Status::kFresh);
  CHECK(get(c, "ddd", kT0 + 1).r.status == Status::kFresh);
  CHECK(hottest(c, 10, kT0 + 2) == std::vector<std::string>{"ddd", "bbb", "ccc", "aaa"});
  CHECK(hottest(c, 3, kT0 + 2) == std::vector<std::string>{"ddd", "bbb", "ccc"});
  CHECK(hottest(c, 0, kT0 + 2).empty());
}

TEST_CASE("forEachHottest (LRU): most recently used first") {
  Cache c(cfg(Policy::kLru));
  for (const char* l : {"aaa", "bbb", "ccc"}) put(c, l, kT0);
  CHECK(get(c, "aaa", kT0 + 1).r.status == Status::kFresh);
  CHECK(hottest(c, 10, kT0 + 2) == std::vector<std::string>{"aaa", "ccc", "bbb"});
}

TEST_CASE("forEachHottest: an entry past TTL + max-stale is left out; one within the stale window is kept") {
  Config conf = cfg();
  conf.maxStale_s = 100;
  Cache c(conf);
  put(c, "old", kT0, 10);
  put(c, "new", kT0 + 50'000, 300);
  CHECK(hottest(c, 10, kT0 + 60'000) == std::vector<std::string>{"new", "old"});  // old: 50 s past TTL
  CHECK(hottest(c, 10, kT0 + 111'000) == std::vector<std::string>{"new"});        // old: 101 s past TTL
}

TEST_CASE("restore: the saved entry answers byte for byte as the original would at the same age") {
  Cache saved(cfg());
  put(saved, "www", kT0, 300);
  std::vector<EntryView> views;
  std::vector<Bytes> copies;
  saved.forEachHottest(10, kT0 + 100'000, [&](const EntryView& e) {
    copies.emplace_back(e.message.begin(), e.message.end());
    views.push_back(e);
  });
  REQUIRE(copies.size() == 1);
  CHECK(views[0].ttl_s == 300);
  CHECK(views[0].insertedMs == kT0);

  // Another process: another clock. The entry was 100 s old when saved, 30 s passed meanwhile.
  const uint64_t now2 = 777'000;
  Cache restored(cfg());
  CHECK(restored.restore(copies[0], views[0].dnssecOk, now2 - 130'000, now2) == InsertOutcome::kPositive);
  const Got a = get(saved, "www", kT0 + 130'000);
  const Got b = get(restored, "www", now2);
  REQUIRE(a.r.status == Status::kFresh);
  REQUIRE(b.r.status == Status::kFresh);
  CHECK(b.bytes == a.bytes);
  CHECK(dns::getU32(b.bytes.data() + b.bytes.size() - 10) == 170);  // 300 - 130, counted by the cache
  CHECK(get(restored, "www", now2 + 170'000).r.status == Status::kMiss);  // expires when it would have
}

TEST_CASE("restore: an expired entry only within the stale window, and then only as a stale answer") {
  Config conf = cfg();
  conf.maxStale_s = 60;
  Cache c(conf);
  const Bytes msg = answer("www", 10);
  CHECK(c.restore(msg, false, kT0 - 40'000, kT0) == InsertOutcome::kPositive);  // 30 s past its TTL
  CHECK(get(c, "www", kT0).r.status == Status::kMiss);
  CHECK(get(c, "www", kT0, Serve::kStaleToo).r.status == Status::kStale);
  CHECK(c.restore(answer("old", 10), false, kT0 - 71'000, kT0) == InsertOutcome::kZeroTtl);  // 61 s past
  CHECK(c.entries() == 1);
  CHECK(get(c, "old", kT0, Serve::kStaleToo).r.status == Status::kMiss);
}

TEST_CASE("restore: bytes that are no cacheable answer are refused and nothing is stored") {
  Cache c(cfg());
  Bytes truncated = answer("www", 300);
  truncated.resize(truncated.size() - 3);  // the record's RDATA cut short
  CHECK(c.restore(truncated, false, kT0, kT0) == InsertOutcome::kMalformed);
  CHECK(c.restore(Bytes(12, 0), false, kT0, kT0) == InsertOutcome::kMalformed);  // a header only
  Bytes query12 = query("www");
  CHECK(c.restore(query12, false, kT0, kT0) == InsertOutcome::kMalformed);  // QR=0: a query
  Bytes badName = answer("www", 300);
  badName[12] = 0x3f;  // a label running past the message
  CHECK(c.restore(badName, false, kT0, kT0) == InsertOutcome::kMalformed);
  CHECK(c.entries() == 0);
}

TEST_CASE("restore: the DO bit is part of the key; a future insertion time counts as now") {
  Cache c(cfg());
  CHECK(c.restore(answer("www", 300), true, kT0 + 5'000, kT0) == InsertOutcome::kPositive);
  CHECK(get(c, "www", kT0).r.status == Status::kMiss);  // the DO=0 key: not stored
  std::vector<uint64_t> inserted;
  c.forEachHottest(10, kT0, [&](const EntryView& e) {
    CHECK(e.dnssecOk);
    inserted.push_back(e.insertedMs);
  });
  CHECK(inserted == std::vector<uint64_t>{kT0});
}

TEST_CASE("restore in reverse enumeration order keeps the hottest newest") {
  Cache a(cfg());
  for (const char* l : {"aaa", "bbb", "ccc"}) put(a, l, kT0);
  CHECK(get(a, "aaa", kT0 + 1).r.status == Status::kFresh);
  std::vector<Bytes> msgs;
  a.forEachHottest(10, kT0 + 2, [&](const EntryView& e) { msgs.emplace_back(e.message.begin(), e.message.end()); });
  REQUIRE(msgs.size() == 3);
  Cache b(cfg());
  for (auto it = msgs.rbegin(); it != msgs.rend(); ++it) REQUIRE(stored(b.restore(*it, false, kT0, kT0 + 2)));
  CHECK(hottest(b, 10, kT0 + 2) == std::vector<std::string>{"aaa", "ccc", "bbb"});
}
