// ResponseWriter: header + question copy, records with name compression (RFC 1035 4.1.4),
// and the OPT record (RFC 6891 6.1). noexcept, no allocation: the compression table holds
// offsets of names already in the message, and matching walks the message itself.
#include "hdnsd/dns/writer.h"

#include <algorithm>
#include <cstring>

#include "hdnsd/dns/name.h"

namespace hdnsd::dns {

namespace {

inline constexpr size_t kOptSize = 11;          // root, type, class, TTL, RDLENGTH=0
inline constexpr size_t kMaxPointerTarget = 0x3FFF;  // 14 bits of offset in a pointer
inline constexpr size_t kSoaFixed = 20;         // serial, refresh, retry, expire, minimum
inline constexpr size_t kSrvFixed = 6;          // priority, weight, port
inline constexpr size_t kMaxLabels = 127;       // (255 - 1) / 2

// Splits an uncompressed wire name at the front of `w` into label offsets. Returns the name's
// length (through the root byte), or 0 if it is not a valid uncompressed name.
size_t scanWire(const uint8_t* w, size_t size, uint8_t* labelOffs, size_t* labels) noexcept {
  size_t pos = 0, n = 0;
  while (pos < size) {
    const uint8_t b = w[pos];
    if (b == 0) {
      *labels = n;
      return pos + 1;
    }
    if (b > kMaxLabel || size - pos - 1 < b || pos + 1 + b + 1 > kMaxNameWire) return 0;
    labelOffs[n++] = static_cast<uint8_t>(pos);
    pos += 1 + size_t{b};
  }
  return 0;
}

// Follows pointers at *pos in msg[0, len) until it stands on a label length byte (or the root).
// Only backward pointers, bounded jumps: the message is ours, but the question was copied
// from the client, so stay defensive.
bool landOnLabel(const uint8_t* msg, size_t len, size_t* pos) noexcept {
  for (size_t jumps = 0;; ++jumps) {
    if (*pos >= len) return false;
    const uint8_t b = msg[*pos];
    if ((b & 0xC0) == 0xC0) {
      if (*pos + 1 >= len || jumps >= kMaxPointerJumps) return false;
      const size_t t = (size_t{b & 0x3Fu} << 8) | msg[*pos + 1];
      if (t >= *pos) return false;
      *pos = t;
      continue;
    }
    if (b & 0xC0) return false;
    return b == 0 || len - *pos - 1 >= b;
  }
}

// Number of labels in the message name at `pos`, or -1 if it cannot be walked.
int countLabels(const uint8_t* msg, size_t len, size_t pos) noexcept {
  for (int n = 0; n <= static_cast<int>(kMaxLabels); ++n) {
    if (!landOnLabel(msg, len, &pos)) return -1;
    if (msg[pos] == 0) return n;
    pos += 1 + size_t{msg[pos]};
  }
  return -1;
}

// Case-insensitive comparison of the message name at `pos` with the uncompressed labels at w
// (which end with the root byte).
bool sameName(const uint8_t* msg, size_t len, size_t pos, const uint8_t* w) noexcept {
  size_t i = 0;
  for (size_t guard = 0; guard <= kMaxLabels; ++guard) {
    if (!landOnLabel(msg, len, &pos)) return false;
    const uint8_t b = msg[pos];
    if (b != w[i]) return false;
    if (b == 0) return true;
    for (size_t k = 1; k <= b; ++k) {
      if (lowerAscii(msg[pos + k]) != lowerAscii(w[i + k])) return false;
    }
    pos += 1 + size_t{b};
    i += 1 + size_t{b};
  }
  return false;
}

}  // namespace

bool ResponseWriter::start(std::span<const uint8_t> query, const Query& q, size_t limit) noexcept {
  pos_ = 0;
  counts_[0] = counts_[1] = counts_[2] = 0;
  rcode_ = 0;
  targetCount_ = 0;
  edns_ = q.edns.present;
  dnssecOk_ = q.edns.dnssecOk;
  size_t lim = std::min({limit, buf_.size(), kMaxMessage});
  if (edns_) lim = lim >= kOptSize ? lim - kOptSize : 0;  // finish() always has room for OPT
  limit_ = lim;
  // A question is at least the root byte plus QTYPE and QCLASS.
  if (q.questionEnd < kHeaderSize + 5 || q.questionEnd > query.size() || !room(q.questionEnd)) {
    limit_ = 0;  // nothing else can be added either
    edns_ = false;
    return false;
  }
  uint8_t* b = buf_.data();
  putU16(b + kOffId, q.id);
  putU16(b + kOffFlags,
         static_cast<uint16_t>(kFlagQR | (q.flags & (kOpcodeMask | kFlagRD | kFlagCD))));
  putU16(b + kOffQd, 1);
  putU16(b + kOffAn, 0);
  putU16(b + kOffNs, 0);
  putU16(b + kOffAr, 0);
  std::memcpy(b + kHeaderSize, query.data() + kHeaderSize, q.questionEnd - kHeaderSize);
  pos_ = q.questionEnd;
  targets_[targetCount_++] = kQuestionOffset;
  return true;
}

bool ResponseWriter::startHeaderOnly(std::span<const uint8_t> query, size_t limit) noexcept {
  pos_ = 0;
  counts_[0] = counts_[1] = counts_[2] = 0;
  rcode_ = 0;
  targetCount_ = 0;
  edns_ = false;  // the OPT, if any, was never parsed
  dnssecOk_ = false;
  limit_ = std::min({limit, buf_.size(), kMaxMessage});
  if (query.size() < kHeaderSize || !room(kHeaderSize)) {
    limit_ = 0;
    return false;
  }
  uint8_t* b = buf_.data();
  const uint16_t qflags = getU16(query.data() + kOffFlags);
  putU16(b + kOffId, getU16(query.data() + kOffId));
  putU16(b + kOffFlags, static_cast<uint16_t>(kFlagQR | (qflags & (kOpcodeMask | kFlagRD))));
  std::memset(b + kOffQd, 0, kHeaderSize - kOffQd);
  pos_ = kHeaderSize;
  return true;
}

void ResponseWriter::setRcode(Rcode rc) noexcept {
  rcode_ = static_cast<uint16_t>(rc);
  uint16_t low = rcode_ & 0x0F;
  // An extended RCODE needs the OPT record; BADVERS without one would read as NOERROR. The
  // caller only sends BADVERS to EDNS queries, so this is a bug guard, not a protocol choice.
  if (rcode_ > 0x0F && !edns_) low = static_cast<uint16_t>(Rcode::kServFail);
  if (pos_ < kHeaderSize) return;
  uint8_t* f = buf_.data() + kOffFlags;
  putU16(f, static_cast<uint16_t>((getU16(f) & ~0x000Fu) | low));
}

void ResponseWriter::clearFlags(uint16_t bits) noexcept {
  if (pos_ < kHeaderSize) return;
  uint8_t* f = buf_.data() + kOffFlags;
  putU16(f, static_cast<uint16_t>(getU16(f) & ~bits));
}

bool ResponseWriter::writeName(std::string_view wire, bool compress) noexcept {
  const auto* w = reinterpret_cast<const uint8_t*>(wire.data());
  uint8_t labelOffs[kMaxLabels];
  size_t n = 0;
  if (scanWire(w, wire.size(), labelOffs, &n) != wire.size()) return false;

  // Longest suffix of `wire` (k labels, k >= 1) already in the message. A suffix of k labels can
  // only equal the suffix of k labels of an earlier name, so each target is probed once per k.
  size_t literal = wire.size();  // bytes written as labels; the rest becomes a pointer
  size_t pointer = 0;
  if (compress && n > 0) {
    const uint8_t* msg = buf_.data();
    int targetLabels[kMaxCompressionTargets];
    for (size_t t = 0; t < targetCount_; ++t) targetLabels[t] = countLabels(msg, pos_, targets_[t]);
    for (size_t k = n; k >= 1 && literal == wire.size(); --k) {
      const uint8_t* suffix = w + labelOffs[n - k];
      for (size_t t = 0; t < targetCount_; ++t) {
        if (targetLabels[t] < static_cast<int>(k)) continue;
        size_t p = targets_[t];
        bool ok = true;
        for (int skip = targetLabels[t] - static_cast<int>(k); skip > 0 && ok; --skip) {
          ok = landOnLabel(msg, pos_, &p);
          if (ok) p += 1 + size_t{msg[p]};
        }
        if (!ok || !landOnLabel(msg, pos_, &p) || p > kMaxPointerTarget) continue;
        if (sameName(msg, pos_, p, suffix)) {
          literal = labelOffs[n - k];
          pointer = p;
          break;
        }
      }
    }
  }

  const bool usePointer = literal != wire.size();
  if (!room(literal + (usePointer ? 2 : 0))) return false;
  const size_t start = pos_;
  std::memcpy(buf_.data() + pos_, w, literal);
  pos_ += literal;
  if (usePointer) {
    putU16(buf_.data() + pos_, static_cast<uint16_t>(0xC000 | pointer));
    pos_ += 2;
  }
  // Register the new name if it starts with at least one literal label; its suffixes are
  // found by walking from here, so one entry covers all of them.
  const bool hasLiteralLabel = usePointer ? literal > 0 : n > 0;
  if (hasLiteralLabel && start <= kMaxPointerTarget && targetCount_ < kMaxCompressionTargets) {
    targets_[targetCount_++] = static_cast<uint16_t>(start);
  }
  return true;
}

void ResponseWriter::registerName(size_t at) noexcept {
  // As writeName(.., false) registers the name it writes: at least one label, within pointer
  // reach, while the table has room.
  if (buf_[at] != 0 && at <= kMaxPointerTarget && targetCount_ < kMaxCompressionTargets)
    targets_[targetCount_++] = static_cast<uint16_t>(at);
}

bool ResponseWriter::writeOwner(Section s, Owner owner) noexcept {
  const size_t si = static_cast<size_t>(s);
  if (si > 2 || pos_ < kHeaderSize) return false;
  for (size_t later = si + 1; later < 3; ++later) {
    if (counts_[later] != 0) return false;  // sections go in order on the wire
  }
  if (counts_[si] == 0xFFFF) return false;
  if (owner.wire.empty()) {
    // The question's name: only if there is a question to point to.
    if (getU16(buf_.data() + kOffQd) != 1 || !room(2)) return false;
    putU16(buf_.data() + pos_, kPointerToQuestion);
    pos_ += 2;
    return true;
  }
  return writeName(owner.wire, true);  // writes nothing when it fails
}

bool ResponseWriter::addRecordWire(Section s, Owner owner, std::span<const uint8_t> tail,
                                   size_t nameAt) noexcept {
  const Mark m = mark();
  if (!writeOwner(s, owner)) return false;
  if (!room(tail.size())) {
    rollback(m);
    return false;
  }
  copyTail(buf_.data() + pos_, tail.data(), tail.size());
  if (nameAt > 0 && nameAt < tail.size()) registerName(pos_ + nameAt);  // an SRV target
  pos_ += tail.size();
  ++counts_[static_cast<size_t>(s)];
  return true;
}

bool ResponseWriter::addRecord(Section s, Owner owner, uint16_t type, uint16_t cls, uint32_t ttl_s,
                               RdataView rdata) noexcept {
  const size_t si = static_cast<size_t>(s);
  const Mark m = mark();
  if (!writeOwner(s, owner)) return false;
  if (!room(10)) {
    rollback(m);
    return false;
  }
  uint8_t* f = buf_.data() + pos_;
  putU16(f, type);
  putU16(f + 2, cls);
  putU32(f + 4, ttl_s);
  const size_t rdStart = pos_ + 10;
  pos_ = rdStart;

  const auto* rd = reinterpret_cast<const uint8_t*>(rdata.bytes.data());
  const size_t rdSize = rdata.bytes.size();
  bool ok = true;
  uint8_t offs[kMaxLabels];
  size_t labels = 0;
  switch (rdata.kind) {
    case RdataKind::kOpaque: {
      // SRV: the target goes out uncompressed (RFC 2782) but still becomes a compression
      // target for later names (writeName with compress=false writes the same bytes).
      const bool srvName = type == kTypeSRV && rdSize > kSrvFixed &&
                           scanWire(rd + kSrvFixed, rdSize - kSrvFixed, offs, &labels) ==
                               rdSize - kSrvFixed;
      if (srvName) {
        ok = room(kSrvFixed);
        if (ok) {
          std::memcpy(buf_.data() + pos_, rd, kSrvFixed);
          pos_ += kSrvFixed;
          ok = writeName(rdata.bytes.substr(kSrvFixed), false);
        }
      } else {
        ok = room(rdSize);
        if (ok) {
          if (rdSize > 0) std::memcpy(buf_.data() + pos_, rd, rdSize);
          pos_ += rdSize;
        }
      }
      break;
    }
    case RdataKind::kName:
      ok = scanWire(rd, rdSize, offs, &labels) == rdSize && writeName(rdata.bytes, true);
      break;
    case RdataKind::kSoa: {
      const size_t mname = scanWire(rd, rdSize, offs, &labels);
      const size_t rname = mname ? scanWire(rd + mname, rdSize - mname, offs, &labels) : 0;
      ok = mname != 0 && rname != 0 && rdSize - mname - rname == kSoaFixed &&
           writeName(rdata.bytes.substr(0, mname), true) &&
           writeName(rdata.bytes.substr(mname, rname), true) && room(kSoaFixed);
      if (ok) {
        std::memcpy(buf_.data() + pos_, rd + mname + rname, kSoaFixed);
        pos_ += kSoaFixed;
      }
      break;
    }
  }
  // RDLENGTH is what compression left, not the input size. limit_ <= 65535 keeps it in 16 bits.
  if (!ok || pos_ - rdStart > 0xFFFF) {
    rollback(m);
    return false;
  }
  putU16(buf_.data() + rdStart - 2, static_cast<uint16_t>(pos_ - rdStart));
  ++counts_[si];
  return true;
}

void ResponseWriter::rollback(const Mark& m) noexcept {
  pos_ = m.pos;
  for (int i = 0; i < 3; ++i) counts_[i] = m.counts[i];
  targetCount_ = m.targets;
}

size_t ResponseWriter::finish() noexcept {
  if (pos_ < kHeaderSize) return 0;
  if (edns_) {
    // start() kept kOptSize bytes out of limit_, so this always fits.
    uint8_t* o = buf_.data() + pos_;
    o[0] = 0;  // owner: root
    putU16(o + 1, kTypeOPT);
    putU16(o + 3, ednsUdpSize_);  // CLASS: our UDP payload size
    // TTL: extended RCODE high 8 bits, VERSION 0 (all we speak), DO echoed (RFC 3225 3).
    const uint32_t ttl = (uint32_t{static_cast<uint8_t>(rcode_ >> 4)} << 24) |
                         (dnssecOk_ ? 0x8000u : 0u);
    putU32(o + 5, ttl);
    putU16(o + 9, 0);  // no options
    pos_ += kOptSize;
    limit_ += kOptSize;
    ++counts_[static_cast<int>(Section::kAdditional)];
    edns_ = false;  // a second finish() must not add another OPT
  }
  uint8_t* b = buf_.data();
  putU16(b + kOffAn, counts_[0]);
  putU16(b + kOffNs, counts_[1]);
  putU16(b + kOffAr, counts_[2]);
  return pos_;
}

}  // namespace hdnsd::dns
