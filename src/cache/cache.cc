// The answer cache: parse-and-store on insert (may allocate), copy-and-patch on lookup (never
// allocates). See include/hdnsd/cache/cache.h for the contract.
#include "hdnsd/cache/cache.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "hdnsd/dns/wire.h"

namespace hdnsd::cache {

namespace {

constexpr uint32_t kNone = UINT32_MAX;
constexpr size_t kOptSize = 11;
constexpr uint32_t kMaxServfailTtl = 300;  // RFC 9520 3.2: MUST NOT cache failures > 5 minutes
constexpr uint16_t kTypeDNAME = 39;
constexpr uint16_t kKeepFlags = 0x000F | dns::kFlagAD;  // RCODE and AD come from the stored answer

enum Kind : uint8_t { kKindPositive, kKindNegative, kKindServfail };

// Walks the (possibly compressed) name at `pos` under dns::readName's rules: labels of <= 63
// bytes, <= 255 bytes in all, every pointer strictly before the label sequence it ends and never
// into the 12-byte header (which a hit rewrites: ID, flags, counts). Calls onJumped(pos, n) for
// every n bytes read after a pointer was followed (bytes that belong to some other place in the
// message). Returns the offset just past the name where it stands, or 0 if invalid.
template <class F>
size_t walkName(std::span<const uint8_t> msg, size_t pos, F&& onJumped) noexcept {
  size_t end = 0, total = 1, jumps = 0, seqStart = pos;
  while (true) {
    if (pos >= msg.size()) return 0;
    const uint8_t b = msg[pos];
    if ((b & 0xC0) == 0xC0) {
      if (pos + 1 >= msg.size()) return 0;
      const size_t target = ((b & 0x3Fu) << 8) | msg[pos + 1];
      if (target >= seqStart || target < dns::kHeaderSize || ++jumps > dns::kMaxPointerJumps) return 0;
      if (end != 0) onJumped(pos, 2);
      if (end == 0) end = pos + 2;
      pos = seqStart = target;
      continue;
    }
    if (b & 0xC0) return 0;
    if (b == 0) {
      if (end != 0) onJumped(pos, 1);
      return end ? end : pos + 1;
    }
    if (msg.size() - pos - 1 < b) return 0;
    total += size_t{b} + 1;
    if (total > dns::kMaxNameWire) return 0;
    if (end != 0) onJumped(pos, size_t{b} + 1);
    pos += size_t{b} + 1;
  }
}

// Copies n >= 8 bytes as 8-byte words, the last one overlapping: for question-sized copies,
// where a memcpy of a run-time length becomes a library call or a `rep movs` (one callgrind
// instruction per 8 bytes, and a slow start on real cores).
inline void copyWords(uint8_t* d, const uint8_t* s, size_t n) noexcept {
  for (size_t i = 0; i + 8 < n; i += 8) std::memcpy(d + i, s + i, 8);
  std::memcpy(d + n - 8, s + n - 8, 8);
}

// memcmp(a, b, n) == 0 for names (n >= 1), the same way.
inline bool sameBytes(const uint8_t* a, const uint8_t* b, size_t n) noexcept {
  uint64_t x, y;
  if (n < 8) {
    for (size_t i = 0; i < n; ++i)
      if (a[i] != b[i]) return false;
    return true;
  }
  for (size_t i = 0; i + 8 < n; i += 8) {
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    if (x != y) return false;
  }
  std::memcpy(&x, a + n - 8, 8);
  std::memcpy(&y, b + n - 8, 8);
  return x == y;
}

inline uint32_t effectiveTtl(uint32_t raw) noexcept {
  return raw > 0x7FFFFFFFu ? 0 : raw;  // RFC 2181 8: a TTL with the top bit set counts as zero
}

}  // namespace

struct Cache::Entry {
  uint64_t hash = 0;
  uint8_t* block = nullptr;   // msg | pad to 2 | u16 ttlOffs[ttlCount] | RrsetSpan[rrsetCount]
  uint64_t insertedMs = 0;
  uint32_t ttl_s = 0;          // entry TTL after clamps (0 for a free slot)
  uint32_t newer = kNone;      // toward head_
  uint32_t older = kNone;      // toward tail_
  uint32_t bytes = 0;          // entryBytes() of this entry
  uint16_t msgLen = 0;
  uint16_t ttlCount = 0;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  uint8_t nameLen = 0;
  uint8_t rrsetCount = 0;
  uint8_t kind = kKindPositive;
  bool dnssecOk = false;
  bool visited = false;        // SIEVE
  bool prefetched = false;     // a prefetch was already asked for this entry

  const uint16_t* ttlOffs() const noexcept {
    return reinterpret_cast<const uint16_t*>(block + ((msgLen + 1u) & ~1u));
  }
  const RrsetSpan* rrsets() const noexcept {
    return reinterpret_cast<const RrsetSpan*>(ttlOffs() + ttlCount);
  }
};

const char* insertOutcomeName(InsertOutcome o) noexcept {
  switch (o) {
    case InsertOutcome::kPositive: return "positive";
    case InsertOutcome::kNegative: return "negative";
    case InsertOutcome::kServfail: return "servfail";
    case InsertOutcome::kDisabled: return "disabled";
    case InsertOutcome::kMalformed: return "malformed";
    case InsertOutcome::kQuestionMismatch: return "question_mismatch";
    case InsertOutcome::kTruncated: return "truncated";
    case InsertOutcome::kRcode: return "rcode";
    case InsertOutcome::kNoSoa: return "no_soa";
    case InsertOutcome::kZeroTtl: return "zero_ttl";
    case InsertOutcome::kOptNotLast: return "opt_not_last";
    case InsertOutcome::kTooLarge: return "too_large";
    case InsertOutcome::kKeptStale: return "kept_stale";
    case InsertOutcome::kCount: break;
  }
  return "unknown";
}

const char* evictReasonName(EvictReason r) noexcept {
  switch (r) {
    case EvictReason::kEntries: return "entries";
    case EvictReason::kBytes: return "bytes";
    case EvictReason::kExpired: return "expired";
    case EvictReason::kCount: break;
  }
  return "unknown";
}

Key Key::of(const dns::Query& q, const std::array<uint64_t, 2>& seed) noexcept {
  return make(q.qname, q.qtype, q.qclass, q.edns.present && q.edns.dnssecOk, seed);
}

Key Key::make(const dns::NameKey& name, uint16_t qtype, uint16_t qclass, bool dnssecOk,
              const std::array<uint64_t, 2>& seed) noexcept {
  // The name's seeded hash was made while it was parsed (dns::nameHash); one folded multiply
  // mixes it with the rest of the key under this cache's own seed.
  const uint64_t rest = (uint64_t{qtype} << 32) | (uint64_t{qclass} << 16) | (dnssecOk ? 1u : 0u);
  return Key{name, qtype, qclass, dnssecOk, dns::foldedMultiply(name.hash() ^ seed[0], rest ^ seed[1])};
}

void rotateRrset(std::span<uint8_t> msg, const RrsetSpan& s, size_t first) noexcept {
  if (s.count < 2 || s.recordSize == 0) return;
  const size_t len = size_t{s.count} * s.recordSize;
  if (s.offset > msg.size() || msg.size() - s.offset < len) return;
  const size_t k = first % s.count;
  if (k == 0) return;
  uint8_t* b = msg.data() + s.offset;
  std::rotate(b, b + k * s.recordSize, b + len);  // in place: no buffer
}

size_t Cache::entryBytes(size_t msgLen, size_t ttlCount, size_t rrsetCount) noexcept {
  // The heap block, ~16 bytes of malloc header, the slot, and ~2 hash-table cells (load <= 1/2).
  return ((msgLen + 1) & ~size_t{1}) + ttlCount * 2 + rrsetCount * sizeof(RrsetSpan) + 16 +
         sizeof(Entry) + 2 * sizeof(uint32_t);
}

Cache::Cache(const Config& cfg) : cfg_(cfg) {
  if (cfg_.servfailTtl_s > kMaxServfailTtl) cfg_.servfailTtl_s = kMaxServfailTtl;
  seed_ = {cfg.seed[0], cfg.seed[1]};
  if (seed_[0] == 0 && seed_[1] == 0) {
    uint64_t s[2] = {0, 0};
    if (getrandom(s, sizeof s, 0) != static_cast<ssize_t>(sizeof s)) {
      // No entropy source: still differ per process (hash flooding needs the exact seed).
      s[0] = reinterpret_cast<uintptr_t>(this) ^ 0x9E3779B97F4A7C15ULL;
      s[1] = static_cast<uint64_t>(getpid()) * 0xBF58476D1CE4E5B9ULL;
    }
    seed_ = {s[0], s[1]};
  }
  table_.assign(1024, 0);
}

Cache::~Cache() { clear(); }

void Cache::clear() noexcept {
  for (Entry& e : slots_) {
    delete[] e.block;
    e.block = nullptr;
  }
  slots_.clear();
  free_.clear();
  std::fill(table_.begin(), table_.end(), 0u);
  count_ = 0;
  bytes_ = 0;
  head_ = tail_ = hand_ = kNone;
  stats_.entries.store(0, std::memory_order_relaxed);
  stats_.bytes.store(0, std::memory_order_relaxed);
}

int64_t Cache::find(const Key& key) const noexcept {
  const size_t mask = table_.size() - 1;
  for (size_t i = key.hash & mask;; i = (i + 1) & mask) {
    const uint32_t v = table_[i];
    if (v == 0) return -1;
    const Entry& e = slots_[v - 1];
    // The full key, not just the hash: a 64-bit collision must still be a miss.
    if (e.hash == key.hash && e.qtype == key.qtype && e.qclass == key.qclass &&
        e.dnssecOk == key.dnssecOk && e.nameLen == key.name.size() &&
        sameBytes(e.block + dns::kHeaderSize, key.name.data(), e.nameLen)) {
      return v - 1;
    }
  }
}

bool Cache::containsFresh(const Key& key, uint64_t now_ms) const noexcept {
  const int64_t idx = find(key);
  if (idx < 0) return false;
  const Entry& e = slots_[size_t(idx)];
  const uint64_t age = now_ms >= e.insertedMs ? now_ms - e.insertedMs : 0;
  return age < uint64_t{e.ttl_s} * 1000;
}

bool Cache::growTable() noexcept {
  try {
    std::vector<uint32_t> bigger(table_.size() * 2, 0);
    const size_t mask = bigger.size() - 1;
    for (uint32_t v : table_) {
      if (v == 0) continue;
      size_t i = slots_[v - 1].hash & mask;
      while (bigger[i] != 0) i = (i + 1) & mask;
      bigger[i] = v;
    }
    table_.swap(bigger);
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

// Linear probing with backward-shift deletion (no tombstones, so probes stay short).
void Cache::tableErase(uint32_t idx) noexcept {
  const size_t mask = table_.size() - 1;
  size_t i = slots_[idx].hash & mask;
  while (table_[i] != idx + 1) i = (i + 1) & mask;
  size_t j = i;
  while (true) {
    j = (j + 1) & mask;
    const uint32_t v = table_[j];
    if (v == 0) break;
    const size_t home = slots_[v - 1].hash & mask;
    // Move v into the hole at i unless its home lies cyclically in (i, j].
    const bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      table_[i] = v;
      i = j;
    }
  }
  table_[i] = 0;
}

void Cache::unlink(uint32_t idx) noexcept {
  Entry& e = slots_[idx];
  if (e.newer != kNone) slots_[e.newer].older = e.older; else head_ = e.older;
  if (e.older != kNone) slots_[e.older].newer = e.newer; else tail_ = e.newer;
  e.newer = e.older = kNone;
}

void Cache::pushFront(uint32_t idx) noexcept {
  Entry& e = slots_[idx];
  e.newer = kNone;
  e.older = head_;
  if (head_ != kNone) slots_[head_].newer = idx;
  head_ = idx;
  if (tail_ == kNone) tail_ = idx;
}

void Cache::remove(uint32_t idx) noexcept {
  Entry& e = slots_[idx];
  if (hand_ == idx) hand_ = e.newer;
  tableErase(idx);
  unlink(idx);
  delete[] e.block;
  e.block = nullptr;
  bytes_ -= e.bytes;
  --count_;
  e = Entry{};
  free_.push_back(idx);  // capacity reserved when the slot was created: no allocation
  stats_.entries.store(int64_t(count_), std::memory_order_relaxed);
  stats_.bytes.store(int64_t(bytes_), std::memory_order_relaxed);
}

void Cache::evictOne(uint64_t now_ms, EvictReason capacityReason) noexcept {
  uint32_t victim = tail_;
  if (victim == kNone) return;
  if (cfg_.policy == Policy::kSieve) {
    uint32_t h = hand_ != kNone ? hand_ : tail_;
    while (slots_[h].visited) {
      slots_[h].visited = false;
      h = slots_[h].newer != kNone ? slots_[h].newer : tail_;
    }
    victim = h;
    hand_ = slots_[h].newer;  // remove() does this too; kNone restarts at the tail
  }
  const Entry& e = slots_[victim];
  const uint64_t age = now_ms >= e.insertedMs ? now_ms - e.insertedMs : 0;
  const uint64_t stale = e.kind == kKindServfail ? 0 : uint64_t{cfg_.maxStale_s} * 1000;
  const bool dead = age >= uint64_t{e.ttl_s} * 1000 + stale;
  stats_.evictions[size_t(dead ? EvictReason::kExpired : capacityReason)].fetch_add(
      1, std::memory_order_relaxed);
  remove(victim);
}

namespace {

struct Run {  // an A/AAAA RRset being collected in the answer section
  size_t start = 0, ownerLen = 0, recordSize = 0, count = 0;
  uint16_t type = 0, cls = 0;
};

}  // namespace

InsertOutcome Cache::insert(const Key& key, std::span<const uint8_t> msg, uint64_t now_ms) noexcept {
  auto done = [this](InsertOutcome o) {
    stats_.inserts[size_t(o)].fetch_add(1, std::memory_order_relaxed);
    return o;
  };
  if (cfg_.maxEntries == 0) return done(InsertOutcome::kDisabled);
  if (msg.size() < dns::kHeaderSize || msg.size() > dns::kMaxMessage) {
    return done(InsertOutcome::kMalformed);
  }
  const uint8_t* m = msg.data();
  const uint16_t flags = dns::getU16(m + dns::kOffFlags);
  if (!(flags & dns::kFlagQR) || (flags & dns::kOpcodeMask) != 0 || dns::getU16(m + dns::kOffQd) != 1) {
    return done(InsertOutcome::kMalformed);
  }
  // Before the records: a TC answer may legitimately end in the middle of one.
  if (flags & dns::kFlagTC) return done(InsertOutcome::kTruncated);

  // The question: the key's name, uncompressed (compare ignoring case), type and class.
  const size_t nameLen = key.name.size();
  size_t p = walkName(msg, dns::kHeaderSize, [](size_t, size_t) {});
  if (p == 0 || msg.size() - p < 4) return done(InsertOutcome::kMalformed);
  if (p - dns::kHeaderSize != nameLen) return done(InsertOutcome::kQuestionMismatch);
  for (size_t i = 0; i < nameLen; ++i) {
    if (dns::lowerAscii(m[dns::kHeaderSize + i]) != key.name.data()[i]) {
      return done(InsertOutcome::kQuestionMismatch);
    }
  }
  if (dns::getU16(m + p) != key.qtype || dns::getU16(m + p + 2) != key.qclass) {
    return done(InsertOutcome::kQuestionMismatch);
  }
  p += 4;

  // The records: validate every name, note each TTL field, the SOA, the OPT, A/AAAA runs and
  // every compression pointer target (so a run nothing points into can be rotated).
  const size_t counts[3] = {dns::getU16(m + dns::kOffAn), dns::getU16(m + dns::kOffNs),
                            dns::getU16(m + dns::kOffAr)};
  ttlScratch_.clear();
  baseScratch_.clear();
  secScratch_.clear();
  // jumpedMap_: one bit per message byte that some name reads through a pointer. Such bytes
  // must not be rewritten (TTLs) or moved (rotation), or that name would change.
  try {
    jumpedMap_.assign((msg.size() + 63) / 64, 0);
  } catch (...) {
    return done(InsertOutcome::kTooLarge);
  }
  auto onPtr = [this](size_t from, size_t n) {
    for (size_t i = from; i < from + n; ++i) jumpedMap_[i >> 6] |= uint64_t{1} << (i & 63);
  };
  auto jumpedInto = [this](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      if (jumpedMap_[i >> 6] & (uint64_t{1} << (i & 63))) return true;
    }
    return false;
  };
  size_t optStart = 0, optEnd = 0;
  bool hasOpt = false, recordAfterOpt = false, hasSoa = false;
  uint32_t optTtl = 0;
  Run run;
  RrsetSpan spans[kMaxRrsets];
  size_t spanCount = 0;
  auto closeRun = [&] {
    if (run.count >= 2 && spanCount < kMaxRrsets && run.start + run.count * run.recordSize <= 65535) {
      spans[spanCount++] = {uint16_t(run.start), uint16_t(run.count), uint16_t(run.recordSize), run.type};
    }
    run = Run{};
  };
  for (size_t s = 0; s < 3; ++s) {
    for (size_t r = 0; r < counts[s]; ++r) {
      const size_t start = p;
      const size_t ownerEnd = walkName(msg, p, onPtr);
      if (ownerEnd == 0 || msg.size() - ownerEnd < 10) return done(InsertOutcome::kMalformed);
      const uint8_t* h = m + ownerEnd;
      const uint16_t type = dns::getU16(h), cls = dns::getU16(h + 2);
      const uint32_t ttl = dns::getU32(h + 4);
      const size_t rdLen = dns::getU16(h + 8);
      const size_t rd = ownerEnd + 10;
      if (msg.size() - rd < rdLen) return done(InsertOutcome::kMalformed);
      const size_t rdEnd = rd + rdLen;
      p = rdEnd;
      if (hasOpt) recordAfterOpt = true;
      if (type == dns::kTypeOPT) {
        if (s != 2 || hasOpt || ownerEnd != start + 1) return done(InsertOutcome::kMalformed);
        hasOpt = true;
        optStart = start;
        optEnd = rdEnd;
        optTtl = ttl;
        continue;
      }
      // Names inside RDATA of the types that carry compressible names (RFC 3597 4) must be
      // valid too: a client decompresses them.
      size_t q = rd;
      switch (type) {
        case dns::kTypeCNAME: case dns::kTypeNS: case dns::kTypePTR: case kTypeDNAME:
          q = walkName(msg, rd, onPtr);
          if (q != rdEnd) return done(InsertOutcome::kMalformed);
          break;
        case dns::kTypeMX:
          if (rdLen < 3 || walkName(msg, rd + 2, onPtr) != rdEnd) return done(InsertOutcome::kMalformed);
          break;
        case dns::kTypeSRV:
          if (rdLen < 7 || walkName(msg, rd + 6, onPtr) != rdEnd) return done(InsertOutcome::kMalformed);
          break;
        case dns::kTypeSOA: {
          q = walkName(msg, rd, onPtr);
          if (q == 0 || q > rdEnd) return done(InsertOutcome::kMalformed);
          q = walkName(msg, q, onPtr);
          if (q == 0 || q + 20 != rdEnd) return done(InsertOutcome::kMalformed);
          break;
        }
        default:
          break;
      }
      uint32_t eff = effectiveTtl(ttl);
      if (type == dns::kTypeSOA && s == 1) {
        hasSoa = true;
        eff = std::min(eff, effectiveTtl(dns::getU32(m + rdEnd - 4)));  // RFC 2308 5: min(TTL, MINIMUM)
      }
      try {
        ttlScratch_.push_back(uint16_t(ownerEnd + 4));
        baseScratch_.push_back(eff);
        secScratch_.push_back(uint8_t(s));
      } catch (...) {
        return done(InsertOutcome::kTooLarge);
      }
      // A/AAAA runs in the answer section.
      if (s == 0) {
        const size_t ownerLen = ownerEnd - start, size = rdEnd - start;
        const bool addr = type == dns::kTypeA || type == dns::kTypeAAAA;
        const bool extends = addr && run.count > 0 && type == run.type && cls == run.cls &&
                             size == run.recordSize && ownerLen == run.ownerLen &&
                             start == run.start + run.count * run.recordSize &&
                             std::memcmp(m + start, m + run.start, ownerLen) == 0;
        if (extends) {
          ++run.count;
        } else {
          closeRun();
          if (addr) run = Run{start, ownerLen, size, 1, type, cls};
        }
      }
    }
    if (s == 0) closeRun();
  }
  if (hasOpt && recordAfterOpt) return done(InsertOutcome::kOptNotLast);
  (void)optEnd;
  const size_t storedLen = hasOpt ? optStart : p;  // bytes after the last record are dropped

  // Cacheability and the entry's kind.
  const uint16_t rcode = flags & 0x000F;
  if (hasOpt && (optTtl >> 24) != 0) return done(InsertOutcome::kRcode);  // extended RCODE
  uint8_t kind;
  if (rcode == uint16_t(dns::Rcode::kNoError)) {
    kind = counts[0] > 0 ? kKindPositive : kKindNegative;  // NODATA is negative (RFC 2308 2.2)
  } else if (rcode == uint16_t(dns::Rcode::kNxDomain)) {
    kind = kKindNegative;
  } else if (rcode == uint16_t(dns::Rcode::kServFail)) {
    kind = kKindServfail;
  } else {
    return done(InsertOutcome::kRcode);
  }
  if (kind == kKindNegative && !hasSoa) return done(InsertOutcome::kNoSoa);

  // TTLs: each record's clamped; the entry's is the least over answer + authority.
  uint32_t cap = cfg_.maxTtl_s;
  if (kind == kKindNegative) cap = std::min(cap, cfg_.negativeMaxTtl_s);
  uint32_t entryTtl = UINT32_MAX;
  for (size_t i = 0; i < baseScratch_.size(); ++i) {
    const uint32_t b = std::min(std::max(baseScratch_[i], cfg_.minTtl_s), cap);
    baseScratch_[i] = b;
    if (secScratch_[i] < 2) entryTtl = std::min(entryTtl, b);
  }
  if (kind == kKindServfail) entryTtl = cfg_.servfailTtl_s;
  if (entryTtl == UINT32_MAX) entryTtl = 0;
  secScratch_.clear();
  if (entryTtl == 0) return done(InsertOutcome::kZeroTtl);

  // A name that reads through a TTL field would read differently once the TTL is aged (only a
  // crafted message does that): not cached. A run some name reads through is not rotatable.
  for (uint16_t off : ttlScratch_) {
    if (jumpedInto(off, off + 4u)) return done(InsertOutcome::kMalformed);
  }
  size_t kept = 0;
  for (size_t i = 0; i < spanCount; ++i) {
    const size_t lo = spans[i].offset, hi = lo + size_t{spans[i].count} * spans[i].recordSize;
    if (!jumpedInto(lo, hi)) spans[kept++] = spans[i];
  }
  spanCount = kept;

  const size_t ttlCount = ttlScratch_.size();
  const size_t eb = entryBytes(storedLen, ttlCount, spanCount);
  if (eb > cfg_.maxBytes) return done(InsertOutcome::kTooLarge);

  // An existing entry: replaced, except that a SERVFAIL does not push out an answer that could
  // still be served stale (RFC 8767 exists exactly for upstream failures).
  const int64_t old = find(key);
  if (old >= 0) {
    const Entry& o = slots_[size_t(old)];
    if (kind == kKindServfail && o.kind != kKindServfail) {
      const uint64_t age = now_ms >= o.insertedMs ? now_ms - o.insertedMs : 0;
      if (age < (uint64_t{o.ttl_s} + cfg_.maxStale_s) * 1000) return done(InsertOutcome::kKeptStale);
    }
  }

  const size_t blockSize = ((storedLen + 1) & ~size_t{1}) + ttlCount * 2 + spanCount * sizeof(RrsetSpan);
  uint8_t* block = new (std::nothrow) uint8_t[blockSize];
  if (block == nullptr) return done(InsertOutcome::kTooLarge);
  if (old >= 0) {
    remove(uint32_t(old));
    stats_.replaced.fetch_add(1, std::memory_order_relaxed);
  }
  while (count_ >= cfg_.maxEntries && count_ > 0) evictOne(now_ms, EvictReason::kEntries);
  while (bytes_ + eb > cfg_.maxBytes && count_ > 0) evictOne(now_ms, EvictReason::kBytes);

  // A slot (reserving free_ room so remove() never allocates) and table room.
  uint32_t idx;
  try {
    if ((count_ + 1) * 2 > table_.size() && !growTable()) throw std::bad_alloc();
    if (!free_.empty()) {
      idx = free_.back();
      free_.pop_back();
    } else {
      if (slots_.size() >= UINT32_MAX - 1) throw std::bad_alloc();
      slots_.emplace_back();
      free_.reserve(slots_.size());
      idx = uint32_t(slots_.size() - 1);
    }
  } catch (...) {
    delete[] block;
    return done(InsertOutcome::kTooLarge);
  }

  std::memcpy(block, m, storedLen);
  if (hasOpt) dns::putU16(block + dns::kOffAr, uint16_t(counts[2] - 1));
  std::memcpy(block + dns::kHeaderSize, key.name.data(), nameLen);  // lower-cased question
  uint16_t* offs = reinterpret_cast<uint16_t*>(block + ((storedLen + 1) & ~size_t{1}));
  for (size_t i = 0; i < ttlCount; ++i) {
    offs[i] = ttlScratch_[i];
    dns::putU32(block + ttlScratch_[i], baseScratch_[i]);
  }
  if (spanCount) std::memcpy(offs + ttlCount, spans, spanCount * sizeof(RrsetSpan));

  Entry& e = slots_[idx];
  e = Entry{};
  e.hash = key.hash;
  e.block = block;
  e.insertedMs = now_ms;
  e.ttl_s = entryTtl;
  e.bytes = uint32_t(eb);
  e.msgLen = uint16_t(storedLen);
  e.ttlCount = uint16_t(ttlCount);
  e.qtype = key.qtype;
  e.qclass = key.qclass;
  e.nameLen = uint8_t(nameLen);
  e.rrsetCount = uint8_t(spanCount);
  e.kind = kind;
  e.dnssecOk = key.dnssecOk;
  pushFront(idx);
  const size_t mask = table_.size() - 1;
  size_t i = key.hash & mask;
  while (table_[i] != 0) i = (i + 1) & mask;
  table_[i] = idx + 1;
  ++count_;
  bytes_ += eb;
  stats_.entries.store(int64_t(count_), std::memory_order_relaxed);
  stats_.bytes.store(int64_t(bytes_), std::memory_order_relaxed);
  return done(kind == kKindPositive   ? InsertOutcome::kPositive
              : kind == kKindNegative ? InsertOutcome::kNegative
                                      : InsertOutcome::kServfail);
}

bool Cache::servable(const Entry& e, uint64_t now_ms) const noexcept {
  const uint64_t age = now_ms >= e.insertedMs ? now_ms - e.insertedMs : 0;
  const uint64_t stale = e.kind == kKindServfail ? 0 : uint64_t{cfg_.maxStale_s} * 1000;
  return age < uint64_t{e.ttl_s} * 1000 + stale;
}

void Cache::forEachHottest(size_t max, uint64_t now_ms, const std::function<void(const EntryView&)>& fn) const {
  size_t n = 0;
  for (const bool visited : {true, false}) {  // LRU never sets visited: its first walk finds none
    for (uint32_t i = head_; i != kNone && n < max; i = slots_[i].older) {
      const Entry& e = slots_[i];
      if (e.visited != visited || !servable(e, now_ms)) continue;
      fn(EntryView{{e.block, e.msgLen}, e.dnssecOk, e.insertedMs, e.ttl_s});
      ++n;
    }
  }
}

InsertOutcome Cache::restore(std::span<const uint8_t> message, bool dnssecOk, uint64_t insertedMs,
                             uint64_t now_ms) noexcept {
  dns::NameKey name;
  auto end = dns::readName(message, dns::kHeaderSize, &name);
  if (!end || message.size() - *end < 4) {
    stats_.inserts[size_t(InsertOutcome::kMalformed)].fetch_add(1, std::memory_order_relaxed);
    return InsertOutcome::kMalformed;
  }
  const uint8_t* q = message.data() + *end;
  const Key key = Key::make(name, dns::getU16(q), dns::getU16(q + 2), dnssecOk, seed_);
  const InsertOutcome o = insert(key, message, now_ms);
  if (!stored(o)) return o;
  const int64_t idx = find(key);
  if (idx < 0) return InsertOutcome::kTooLarge;  // cannot happen: insert just stored it
  slots_[size_t(idx)].insertedMs = std::min(insertedMs, now_ms);
  if (!servable(slots_[size_t(idx)], now_ms)) {
    remove(uint32_t(idx));
    return InsertOutcome::kZeroTtl;
  }
  return o;
}

namespace {

void writeOpt(uint8_t* o, uint16_t udpSize, bool dnssecOk) noexcept {
  o[0] = 0;  // root
  dns::putU16(o + 1, dns::kTypeOPT);
  dns::putU16(o + 3, udpSize);
  dns::putU32(o + 5, dnssecOk ? 0x8000u : 0u);  // ext RCODE 0 (cached RCODEs fit 4 bits), v0, DO
  dns::putU16(o + 9, 0);
}

}  // namespace

LookupResult Cache::lookup(const Key& key, std::span<const uint8_t> query, const dns::Query& q,
                           uint64_t now_ms, std::span<uint8_t> out, size_t limit,
                           Serve serve) noexcept {
  LookupResult r;  // every return is `return r` (no copy: the caller's object is built in place)
  auto miss = [this] { stats_.misses.fetch_add(1, std::memory_order_relaxed); };
  const int64_t found = find(key);
  if (found < 0) {
    miss();
    return r;
  }
  const uint32_t idx = uint32_t(found);
  Entry& e = slots_[idx];
  const uint64_t age = now_ms >= e.insertedMs ? now_ms - e.insertedMs : 0;
  const uint64_t ttlMs = uint64_t{e.ttl_s} * 1000;
  const bool fresh = age < ttlMs;
  if (!fresh) {
    const uint64_t stale = e.kind == kKindServfail ? 0 : uint64_t{cfg_.maxStale_s} * 1000;
    if (age >= ttlMs + stale) {
      remove(idx);
      stats_.evictions[size_t(EvictReason::kExpired)].fetch_add(1, std::memory_order_relaxed);
      miss();
      return r;
    }
    if (serve != Serve::kStaleToo) {
      miss();
      return r;
    }
  }
  // The question as asked has the stored one's length (same name, maybe other case).
  const size_t qEnd = dns::kHeaderSize + e.nameLen + 4;
  if (q.questionEnd != qEnd || query.size() < qEnd) {
    miss();
    return r;
  }

  const bool edns = q.edns.present;
  const size_t optLen = edns ? kOptSize : 0;
  const size_t cap = std::min(limit, out.size());
  uint16_t flags = dns::kFlagQR | dns::kFlagRA | (q.flags & (dns::kFlagRD | dns::kFlagCD)) |
                   (dns::getU16(e.block + dns::kOffFlags) & kKeepFlags);
  if (!(key.dnssecOk || (q.flags & dns::kFlagAD))) flags &= uint16_t(~dns::kFlagAD);
  uint8_t* o = out.data();

  if (size_t{e.msgLen} + optLen > cap) {
    if (qEnd + optLen > cap) {  // not even the question fits: caller's fallback
      miss();
      return r;
    }
    copyWords(o, query.data(), qEnd);  // ID and question as asked
    dns::putU16(o + dns::kOffFlags, flags | dns::kFlagTC);
    dns::putU16(o + dns::kOffQd, 1);
    dns::putU16(o + dns::kOffAn, 0);
    dns::putU16(o + dns::kOffNs, 0);
    dns::putU16(o + dns::kOffAr, edns ? 1 : 0);
    if (edns) writeOpt(o + qEnd, cfg_.ednsUdpSize, key.dnssecOk);
    r.size = qEnd + optLen;
    r.truncated = true;
    stats_.truncated.fetch_add(1, std::memory_order_relaxed);
  } else {
    copyWords(o, query.data(), qEnd);                          // ID and question as asked
    std::memcpy(o + dns::kOffQd, e.block + dns::kOffQd, 8);     // the stored counts
    std::memcpy(o + qEnd, e.block + qEnd, e.msgLen - qEnd);     // the records
    dns::putU16(o + dns::kOffFlags, flags);
    const uint16_t* offs = e.ttlOffs();
    if (fresh) {
      const uint32_t age_s = uint32_t(age / 1000);
      for (size_t i = 0; i < e.ttlCount; ++i) {
        const uint32_t base = dns::getU32(e.block + offs[i]);
        dns::putU32(o + offs[i], base > age_s ? base - age_s : 0);
      }
    } else {
      for (size_t i = 0; i < e.ttlCount; ++i) dns::putU32(o + offs[i], cfg_.staleTtl_s);
    }
    size_t n = e.msgLen;
    if (edns) {
      writeOpt(o + n, cfg_.ednsUdpSize, key.dnssecOk);
      n += kOptSize;
      dns::putU16(o + dns::kOffAr, uint16_t(dns::getU16(o + dns::kOffAr) + 1));
    }
    r.size = n;
    r.rrsetCount = e.rrsetCount;
    for (size_t i = 0; i < e.rrsetCount; ++i) r.rrsets[i] = e.rrsets()[i];
  }
  r.status = fresh ? Status::kFresh : Status::kStale;
  r.negative = e.kind == kKindNegative;
  r.rcode = uint8_t(flags & 0x000F);
  (fresh ? stats_.hits : stats_.staleServed).fetch_add(1, std::memory_order_relaxed);

  // Policy: SIEVE marks, LRU moves to the front.
  if (cfg_.policy == Policy::kSieve) {
    e.visited = true;
  } else if (head_ != idx) {
    unlink(idx);
    pushFront(idx);
  }
  // Prefetch: still asked for with < prefetchPercent of its TTL left; once per entry.
  if (fresh && cfg_.prefetchPercent > 0 && !e.prefetched &&
      (ttlMs - age) * 100 < ttlMs * cfg_.prefetchPercent) {
    e.prefetched = true;
    r.prefetch = true;
    stats_.prefetches.fetch_add(1, std::memory_order_relaxed);
  }
  return r;
}

}  // namespace hdnsd::cache
