// The answer cache of forwarding (issue 4 part 3): upstream responses kept as wire bytes, served
// by copying them into the caller's buffer with the client's ID and question case restored and
// every TTL aged. Bytes in, bytes out: no libuv, no c-ares, no clock of its own (every call takes
// `now_ms`, a monotonic millisecond clock the caller owns: uv_now() in the daemon, a plain integer
// in tests).
//
// Threading: one instance belongs to one loop and is not thread-safe. For several workers later,
// the choice is (a) one Cache per worker (no locks, each worker warms its own; memory × workers),
// or (b) N shards chosen by the top bits of the seeded hash, one mutex each (shared warmth; a lock
// per query). (a) fits SO_REUSEPORT workers and is the default plan; the stats are per instance
// and a collector sums them. Nothing here assumes either.
//
// Ownership: the cache owns one heap block per entry (the stored message, its TTL offsets and its
// RRset index), allocated by insert() and freed on eviction, replacement, clear() or destruction.
// lookup() never allocates: it copies into the caller's buffer.
//
// Typical use on the query path (query already parsed, opcode QUERY, EDNS version 0):
//   cache::Key key = cache::Key::of(q, cache.seed());             // lower-cased name, type, class, DO
//   auto r = cache.lookup(key, pkt, q, now_ms, out, limit);       // serve-stale off
//   if (r.status != cache::Status::kMiss) { send(out.first(r.size)); if (r.prefetch) refresh(key); }
//   else forward(...);        // on the upstream's answer:  cache.insert(key, upstreamBytes, now_ms)
//                             // upstream failed/timed out: r = cache.lookup(..., Serve::kStaleToo)
//                             //   kStale → send it; kMiss → SERVFAIL
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "hdnsd/dns/name.h"
#include "hdnsd/dns/query.h"

namespace hdnsd::cache {

// Eviction policy. SIEVE (Zhang et al., NSDI '24): FIFO order plus one "visited" bit set on a hit;
// the eviction hand walks from old to new, clearing bits, and evicts the first unvisited entry.
// A hit only sets a bit (no list surgery), and one-hit wonders leave quickly. LRU moves the entry
// to the front on every hit. Both share one intrusive list; bench/cache compares them on a Zipf
// trace (bench/RESULTS.md): SIEVE's hit ratio beat LRU's in every cell (e.g. 0.316 vs 0.231 at
// alpha 0.8 with 10,000 entries over 1,000,000 names), within 2 points of S3-FIFO. Default: SIEVE.
enum class Policy : uint8_t { kSieve, kLru };

struct Config {
  size_t maxEntries = 100000;        // --cache-size; 0 = cache off (insert stores nothing)
  size_t maxBytes = 64u << 20;       // --cache-max-bytes: sum of entryBytes() over all entries
  uint32_t minTtl_s = 0;             // --min-ttl: floor on every TTL (0: upstream TTL 0 is not cached)
  uint32_t maxTtl_s = 86400;         // --max-ttl: cap on every TTL
  uint32_t negativeMaxTtl_s = 3600;  // --negative-max-ttl: cap on NXDOMAIN/NODATA (RFC 2308 5: 1-3 h)
  uint32_t servfailTtl_s = 5;        // --servfail-ttl: RFC 9520 3.2: >= 1 s, MUST NOT exceed 5 min; 0 off
  uint32_t staleTtl_s = 30;          // --stale-ttl: TTL of a stale answer (RFC 8767 4 recommends 30)
  uint32_t maxStale_s = 86400;       // --max-stale: serve stale this long past expiry (RFC 8767: 1-3 days)
  uint32_t prefetchPercent = 10;     // --prefetch-threshold: a hit with < this % of the TTL left asks
                                     // for a refresh (once per entry); 0 off
  uint16_t ednsUdpSize = 1232;       // --edns-udp-size: the CLASS of the OPT we append
  Policy policy = Policy::kSieve;
  // Key hash seed (mixed with the name's hash, itself seeded per process: dns::nameHash). Zero
  // (both) = random from the OS at construction, so clients cannot aim collisions at one bucket.
  uint64_t seed[2] = {0, 0};
};

// What a response is stored under: lower-cased qname wire, qtype, qclass, and the DO bit (a DO=1
// answer carries RRSIGs that a DO=0 client must not get, RFC 4035 3.2.1). Self-contained (the name
// is copied into a NameKey, no allocation), so the forwarder may keep one per in-flight query.
struct Key {
  dns::NameKey name;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  bool dnssecOk = false;
  uint64_t hash = 0;  // name.hash() mixed with type, class and DO under the cache's seed

  // Builds the key of a parsed query under `seed` (Cache::seed()).
  static Key of(const dns::Query& q, const std::array<uint64_t, 2>& seed) noexcept;
  static Key make(const dns::NameKey& name, uint16_t qtype, uint16_t qclass, bool dnssecOk,
                  const std::array<uint64_t, 2>& seed) noexcept;
};

// Why insert() did or did not store a response (counted in Stats::inserts).
enum class InsertOutcome : uint8_t {
  kPositive,        // NOERROR with answers: TTL = min over answer+authority TTLs, clamped
  kNegative,        // NXDOMAIN, or NOERROR/NODATA, with an SOA: TTL = min(SOA TTL, MINIMUM) (RFC 2308 5)
  kServfail,        // SERVFAIL, kept servfailTtl_s (RFC 9520)
  kDisabled,        // maxEntries == 0
  kMalformed,       // does not parse (short, bad name, record overruns, QR=0, QDCOUNT != 1), or a
                    // name reads through a TTL field or the header (aging would change the name)
  kQuestionMismatch,// the question is not the key's (name, type, class), or is compressed
  kTruncated,       // TC=1: never cached (the TCP retry's answer is)
  kRcode,           // FORMERR, NOTIMP, REFUSED, extended RCODEs...: not cached
  kNoSoa,           // negative answer without an SOA in authority: RFC 2308 5 says SHOULD NOT cache
  kZeroTtl,         // TTL 0 after clamps (RFC 1035 3.2.1: use for this transaction only)
  kOptNotLast,      // the upstream's OPT is not the last record (stripping it would move names)
  kTooLarge,        // one entry larger than maxBytes (or memory allocation failed)
  kKeptStale,       // SERVFAIL while a good entry is still servable stale: the good one is kept
  kCount
};
const char* insertOutcomeName(InsertOutcome o) noexcept;  // "positive", ... for metrics labels
inline bool stored(InsertOutcome o) noexcept { return o <= InsertOutcome::kServfail; }

enum class EvictReason : uint8_t {
  kEntries,   // over maxEntries
  kBytes,     // over maxBytes
  kExpired,   // past its TTL + maxStale (found on lookup or chosen by the eviction hand)
  kCount
};
const char* evictReasonName(EvictReason r) noexcept;  // "entries", "bytes", "expired"

// Counters read by the daemon's metrics collector (hdnsd_cache_*). Relaxed atomics like
// query/stats.h: one loop writes, a scrape may read from anywhere.
using Counter = std::atomic<uint64_t>;
struct Stats {
  Counter hits{};               // fresh answers served (including truncated ones)
  Counter misses{};             // nothing servable (not cached, expired, or stale not allowed)
  Counter staleServed{};        // RFC 8767 answers
  Counter prefetches{};         // hits that returned prefetch = true
  Counter truncated{};          // hits that did not fit `limit`: TC=1 written
  Counter inserts[size_t(InsertOutcome::kCount)]{};
  Counter evictions[size_t(EvictReason::kCount)]{};
  Counter replaced{};           // an insert over an existing key (not an eviction)
  std::atomic<int64_t> entries{0};
  std::atomic<int64_t> bytes{0};  // sum of entryBytes()
};

enum class Status : uint8_t {
  kMiss,   // nothing written; forward the query
  kFresh,  // a fresh answer is in out[0, size)
  kStale,  // an expired answer (Serve::kStaleToo only), every TTL = staleTtl_s
};

enum class Serve : uint8_t {
  kFreshOnly,  // normal lookup
  kStaleToo,   // the upstreams failed or timed out: an entry up to maxStale_s past expiry will do
};

// One A or AAAA RRset in the answer section of the message lookup() wrote, for rotation (issue 5
// part 4) in the OUTPUT buffer: `count` records of exactly `recordSize` bytes each, back to back
// from `offset`, with identical owner bytes, and no name anywhere in the message reads through
// them via a compression pointer. So rotateRrset() may permute whole records freely.
struct RrsetSpan {
  uint16_t offset = 0;      // from the start of the message
  uint16_t count = 0;       // records (>= 2: a single record is not listed)
  uint16_t recordSize = 0;  // owner bytes + 10 + RDLENGTH
  uint16_t type = 0;        // kTypeA or kTypeAAAA
};
inline constexpr size_t kMaxRrsets = 4;  // more A/AAAA RRsets in one answer are not indexed

struct LookupResult {
  Status status = Status::kMiss;
  size_t size = 0;           // bytes of the answer in out; 0 on kMiss
  bool truncated = false;    // it did not fit `limit`: out holds header + question (+ OPT), TC=1
  bool prefetch = false;     // kFresh with < prefetchPercent of the TTL left, first time: refresh it
  bool negative = false;     // NXDOMAIN/NODATA entry
  uint8_t rcode = 0;         // header RCODE of the answer
  uint8_t rrsetCount = 0;    // valid entries in rrsets (0 when truncated)
  std::array<RrsetSpan, kMaxRrsets> rrsets{};
};

// One stored entry as Cache::forEachHottest() shows it (control path: --state-file).
struct EntryView {
  // The stored form insert() made: the upstream's answer without its OPT, the question
  // lower-cased, every TTL field holding its clamped TTL as of insertion (not aged).
  std::span<const uint8_t> message;
  bool dnssecOk = false;
  uint64_t insertedMs = 0;  // on the caller's clock, as passed to insert()
  uint32_t ttl_s = 0;       // the entry's TTL (the least clamped TTL, or servfailTtl_s)
};

// Rotates one RRset in place so record `first % count` comes first (no allocation).
void rotateRrset(std::span<uint8_t> msg, const RrsetSpan& s, size_t first) noexcept;

class Cache {
 public:
  explicit Cache(const Config& cfg);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  const std::array<uint64_t, 2>& seed() const noexcept { return seed_; }
  Key makeKey(const dns::Query& q) const noexcept { return Key::of(q, seed_); }

  // Stores `response` (an upstream's answer to the query of `key`) if it is cacheable, replacing
  // any entry for `key`. The stored copy: the upstream's OPT removed (ARCOUNT adjusted), bytes
  // after the last record dropped, the question name lower-cased, each record's TTL replaced by
  // its clamped value (an SOA's by min(TTL, MINIMUM)); the offsets of those TTL fields and the
  // A/AAAA RRset index are kept beside it. May allocate (one block per entry) and evict.
  InsertOutcome insert(const Key& key, std::span<const uint8_t> response, uint64_t now_ms) noexcept;

  // On a hit, writes the answer for the query `query` (its bytes; q = its parse) into `out`:
  //  - ID from the query; the question bytes [12, q.questionEnd) exactly as asked (letter case);
  //  - flags: QR, RA set; RD and CD from the query; AA and TC cleared (a cache answer is not
  //    authoritative, RFC 1035 6.2 / RFC 2181 5.4.1); AD kept only if the query had DO or AD
  //    (RFC 6840 5.8); RCODE as stored;
  //  - every TTL = stored TTL - whole seconds since insert (never below 1 for answer and authority
  //    records while fresh; additional records floor at 0), or staleTtl_s when kStale;
  //  - our OPT (ednsUdpSize, DO echoed, version 0) appended if the query had EDNS.
  // If that exceeds min(limit, out.size()), writes instead header + question (+ OPT) with TC=1 and
  // truncated = true (still a hit: the client retries over TCP). The caller sends out[0, size).
  // An entry past TTL + maxStale_s is removed here (evictions[kExpired]). Never allocates.
  // The caller handles only opcode QUERY with EDNS version 0 here (BADVERS etc. come first).
  LookupResult lookup(const Key& key, std::span<const uint8_t> query, const dns::Query& q,
                      uint64_t now_ms, std::span<uint8_t> out, size_t limit,
                      Serve serve = Serve::kFreshOnly) noexcept;

  // True if an entry for key exists and is fresh at now_ms (no side effects; tests, prefetch).
  bool containsFresh(const Key& key, uint64_t now_ms) const noexcept;

  void clear() noexcept;  // drops every entry (not counted as evictions)

  // Warm restart (--state-file). Control path only; nothing here is on the query path.
  //
  // Calls fn for at most `max` entries still servable at now_ms (fresh, or within the stale
  // window), hottest first: under SIEVE the entries hit since the hand last passed them
  // (visited), newest first, then the others, newest first; under LRU most recently used first.
  // O(entries) (two walks of the list). The view is valid during the call only; fn must not
  // touch the cache.
  void forEachHottest(size_t max, uint64_t now_ms, const std::function<void(const EntryView&)>& fn) const;
  // Stores a message saved from an EntryView as if insert() had stored it at insertedMs (<=
  // now_ms; TTLs keep counting from then). The bytes may come from a file: they are parsed and
  // validated like any upstream answer, under the key of their own question and `dnssecOk`.
  // Returns insert()'s outcome, or kZeroTtl (nothing stored) if the entry is no longer servable
  // at now_ms. Restore the hottest last: the newest entry is the last evicted.
  InsertOutcome restore(std::span<const uint8_t> message, bool dnssecOk, uint64_t insertedMs,
                        uint64_t now_ms) noexcept;

  size_t entries() const noexcept { return count_; }
  size_t bytes() const noexcept { return bytes_; }
  const Stats& stats() const noexcept { return stats_; }
  const Config& config() const noexcept { return cfg_; }

  // Bytes an entry with a stored message of `msgLen` bytes and `ttlCount` TTL fields costs
  // against maxBytes: its heap block plus its slot and hash-table share.
  static size_t entryBytes(size_t msgLen, size_t ttlCount, size_t rrsetCount) noexcept;

 private:
  struct Entry;
  int64_t find(const Key& key) const noexcept;  // entry index or -1
  void remove(uint32_t idx) noexcept;
  void evictOne(uint64_t now_ms, EvictReason capacityReason) noexcept;
  bool servable(const Entry& e, uint64_t now_ms) const noexcept;  // fresh or within the stale window
  void unlink(uint32_t idx) noexcept;
  void pushFront(uint32_t idx) noexcept;
  bool growTable() noexcept;
  void tableErase(uint32_t idx) noexcept;

  Config cfg_;
  std::array<uint64_t, 2> seed_{};
  std::vector<Entry> slots_;        // entries by index; grows up to maxEntries
  std::vector<uint32_t> free_;      // free slot indices
  std::vector<uint32_t> table_;     // open addressing (linear probing), slot index + 1, 0 empty
  size_t count_ = 0;
  size_t bytes_ = 0;
  uint32_t head_ = UINT32_MAX;      // newest
  uint32_t tail_ = UINT32_MAX;      // oldest
  uint32_t hand_ = UINT32_MAX;      // SIEVE: next candidate (walks tail → head)
  // insert()'s per-record scratch, kept to reuse capacity: TTL offsets, clamped TTLs, sections,
  // and a bitmap of the bytes names read through compression pointers.
  std::vector<uint16_t> ttlScratch_;
  std::vector<uint32_t> baseScratch_;
  std::vector<uint8_t> secScratch_;
  std::vector<uint64_t> jumpedMap_;
  Stats stats_;
};

}  // namespace hdnsd::cache
