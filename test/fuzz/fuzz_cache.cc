// libFuzzer target for the answer cache: arbitrary bytes inserted as an upstream response, then
// looked up (fresh, aged, stale, truncated, rotated) into a buffer of exactly `limit` bytes, so
// any overrun is an ASan error. Invariants: the answer fits, carries the client's ID and question,
// and re-parses with every record inside the message.
//
// Input: byte 0 = control bits (EDNS, DO, limit choice, policy), the rest = the response. The
// query is the response's own question when it has one (so insert gets past the question check),
// else a fixed www.example.com A.
//   libFuzzer:  make fuzz (clang, -fsanitize=fuzzer,address,undefined)
//   replay:     g++ -DHDNSD_FUZZ_STANDALONE ... (make test replays test/fuzz/corpus/cache)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "hdnsd/cache/cache.h"
#include "hdnsd/dns/name.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"
#include "standalone_main.h"

namespace {

using namespace hdnsd;

#define FUZZ_ASSERT(cond)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "fuzz_cache: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

// Walks `count` records from pos; returns the end, or 0 if one overruns.
size_t walkRecords(std::span<const uint8_t> msg, size_t pos, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    auto end = dns::skipName(msg, pos);
    if (!end || msg.size() - *end < 10) return 0;
    const size_t rd = *end + 10;
    const size_t len = dns::getU16(msg.data() + *end + 8);
    if (msg.size() - rd < len) return 0;
    pos = rd + len;
  }
  return pos;
}

void check(const cache::LookupResult& r, const std::vector<uint8_t>& out, size_t limit,
           const std::vector<uint8_t>& query, const dns::Query& q) {
  if (r.status == cache::Status::kMiss) {
    FUZZ_ASSERT(r.size == 0);
    return;
  }
  FUZZ_ASSERT(r.size <= limit && r.size >= q.questionEnd);
  FUZZ_ASSERT(std::memcmp(out.data(), query.data(), 2) == 0);  // ID
  FUZZ_ASSERT(std::memcmp(out.data() + 12, query.data() + 12, q.questionEnd - 12) == 0);
  const uint16_t flags = dns::getU16(out.data() + 2);
  FUZZ_ASSERT((flags & dns::kFlagQR) && !(flags & dns::kFlagAA));
  FUZZ_ASSERT(bool(flags & dns::kFlagTC) == r.truncated);
  const std::span<const uint8_t> msg(out.data(), r.size);
  const size_t n = size_t{dns::getU16(out.data() + dns::kOffAn)} + dns::getU16(out.data() + dns::kOffNs) +
                   dns::getU16(out.data() + dns::kOffAr);
  FUZZ_ASSERT(walkRecords(msg, q.questionEnd, n) == r.size);
  if (r.truncated) FUZZ_ASSERT(r.size == q.questionEnd + (q.edns.present ? 11 : 0));
  for (size_t i = 0; i < r.rrsetCount; ++i) {
    const auto& s = r.rrsets[i];
    FUZZ_ASSERT(s.count >= 2 && size_t{s.offset} + size_t{s.count} * s.recordSize <= r.size);
  }
}

void fuzzOne(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const uint8_t ctl = data[0];
  const std::span<const uint8_t> resp(data + 1, size - 1);

  // The client's query: the response's question (QR cleared, other sections dropped), letter
  // case flipped on the first byte of the name when ctl says so, EDNS and DO per ctl.
  std::vector<uint8_t> query;
  if (resp.size() > 12) {
    auto end = dns::skipName(resp, 12);
    if (end && resp.size() - *end >= 4) {
      query.assign(resp.begin(), resp.begin() + long(*end + 4));
      query[2] &= 0x7f;
      query[4] = 0, query[5] = 1;
      for (size_t i = 6; i < 12; ++i) query[i] = 0;
      if ((ctl & 0x10) && query.size() > 13) query[13] ^= 0x20;
    }
  }
  if (query.empty()) {
    const uint8_t fixed[] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                             3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
    query.assign(fixed, fixed + sizeof fixed);
  }
  if (ctl & 0x01) {
    query[11] = 1;
    for (int b : {0, 0, 41, 0x10, 0, 0, 0, (ctl & 0x02) ? 0x80 : 0, 0, 0, 0}) query.push_back(uint8_t(b));
  }
  dns::Query q;
  if (!dns::parseQuery(query, &q) || q.opcode != 0 || q.edns.version != 0) return;

  cache::Config cfg;
  cfg.seed[0] = 7;
  cfg.seed[1] = 8;
  cfg.maxEntries = 4;
  cfg.policy = (ctl & 0x04) ? cache::Policy::kLru : cache::Policy::kSieve;
  cfg.minTtl_s = (ctl & 0x08) ? 30 : 0;
  cfg.maxStale_s = 60;
  cache::Cache c(cfg);
  const cache::Key key = c.makeKey(q);
  const auto outcome = c.insert(key, resp, 1000);
  FUZZ_ASSERT(cache::insertOutcomeName(outcome)[0] != 'u');
  FUZZ_ASSERT(c.entries() == (cache::stored(outcome) ? 1u : 0u));

  // Limits: 512, the exact size (or one less) of the stored answer, 64 KiB.
  const size_t limits[] = {dns::kMaxUdpPlain, q.questionEnd + ((ctl >> 5) & 7) * 13, dns::kMaxMessage};
  for (uint64_t now : {uint64_t{1000}, uint64_t{4000}, uint64_t{1000 + 86'400'000}}) {  // last: removes
    for (size_t limit : limits) {
      for (auto serve : {cache::Serve::kFreshOnly, cache::Serve::kStaleToo}) {
        std::vector<uint8_t> out(limit);  // exactly limit: an overrun is a heap overflow
        const auto r = c.lookup(key, query, q, now, out, limit, serve);
        check(r, out, limit, query, q);
        for (size_t i = 0; i < r.rrsetCount; ++i) {
          cache::rotateRrset(std::span<uint8_t>(out.data(), r.size), r.rrsets[i], i + 1);
        }
        check(r, out, limit, query, q);
      }
    }
  }
  // Replacement and a second insert under another key run the eviction paths.
  c.insert(key, resp, 2000);
  FUZZ_ASSERT(c.entries() <= 1);
  c.clear();
  FUZZ_ASSERT(c.entries() == 0 && c.bytes() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzzOne(data, size);
  return 0;
}
