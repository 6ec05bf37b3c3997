// Domain names: the compressed-name reader used on the data path (noexcept, no allocation)
// and the text <-> wire conversions used on the control path (they allocate strings).
#include "hdnsd/dns/name.h"

#include <sys/random.h>
#include <unistd.h>

#include <bit>
#include <cstring>

#include "hdnsd/dns/wire.h"

namespace hdnsd::dns {

namespace {

// Walks the (possibly compressed) name at `pos`, calling onLabel(ptr, len) for every label
// in order. Returns the offset just past the name where it stands.
//
// Pointer rule (RFC 1035 4.1.4, tightened as most hardened servers do): a pointer must point
// strictly before the start of the label sequence it belongs to. That sequence starts at `pos`
// or at the previous pointer's target, and the pointer itself stands at or after that start,
// so the rule also implies "strictly before the pointer". Targets therefore strictly decrease
// and no loop can be built; kMaxPointerJumps still bounds long chains of pointers to pointers.
// A pointer into the 12-byte header is rejected too: no name can start there.
template <class OnLabel>
Result<size_t, NameError> walkName(std::span<const uint8_t> msg, size_t pos,
                                   OnLabel&& onLabel) noexcept {
  size_t seqStart = pos;
  size_t end = 0;  // set at the first pointer: the name "stands" only up to there
  bool jumped = false;
  size_t jumps = 0;
  size_t wireLen = 1;  // the root byte
  for (;;) {
    if (pos >= msg.size()) return Unexpected{NameError::kTruncated};
    const uint8_t b = msg[pos];
    if ((b & 0xC0) == 0xC0) {
      if (pos + 1 >= msg.size()) return Unexpected{NameError::kTruncated};
      const size_t target = (size_t{b & 0x3Fu} << 8) | msg[pos + 1];
      if (target >= seqStart || target < kHeaderSize) return Unexpected{NameError::kBadPointer};
      if (++jumps > kMaxPointerJumps) return Unexpected{NameError::kPointerLoop};
      if (!jumped) {
        end = pos + 2;
        jumped = true;
      }
      pos = seqStart = target;
      continue;
    }
    // 0x40 (extended label, RFC 6891 5) and 0x80 (reserved): also covers "length > 63".
    if (b & 0xC0) return Unexpected{NameError::kLabelTooLong};
    if (b == 0) return jumped ? end : pos + 1;
    if (msg.size() - pos - 1 < b) return Unexpected{NameError::kTruncated};
    wireLen += 1 + size_t{b};
    if (wireLen > kMaxNameWire) return Unexpected{NameError::kNameTooLong};
    onLabel(msg.data() + pos + 1, size_t{b});
    pos += 1 + size_t{b};
  }
}

// nameHash's key: random per process (getrandom).
struct HashSeed {
  uint64_t k0 = 0, k1 = 0;
};

[[gnu::noinline]] HashSeed randomSeed() noexcept {
  uint64_t k[2] = {0, 0};
  if (getrandom(k, sizeof k, 0) != static_cast<ssize_t>(sizeof k)) {
    // No entropy source: still differ per process (flooding needs the exact seed).
    k[0] = reinterpret_cast<uintptr_t>(&k) ^ 0x9E3779B97F4A7C15ULL;
    k[1] = static_cast<uint64_t>(getpid()) * 0xBF58476D1CE4E5B9ULL;
  }
  return {k[0], k[1]};
}

// A function-local static: set on first use whatever the order of static initialisation, and
// after that one predicted branch per use.
inline HashSeed& hashSeed() noexcept {
  static HashSeed seed = randomSeed();
  return seed;
}

inline uint64_t fromLittleEndian(uint64_t w) noexcept {
  if constexpr (std::endian::native == std::endian::big) return __builtin_bswap64(w);
  return w;
}

// The word of the `rem` (>= 1) bytes left at p, zero-padded past them, as a little-endian
// number; `avail` (>= rem) bytes are readable at p, and `before` bytes before it.
inline uint64_t loadWord(const uint8_t* p, size_t rem, size_t avail, size_t before) noexcept {
  uint64_t w = 0;
  if (avail >= 8) {
    std::memcpy(&w, p, 8);
    w = fromLittleEndian(w);
    return rem >= 8 ? w : w & (~uint64_t{0} >> (64 - 8 * rem));
  }
  if (before + rem >= 8) {  // the 8 bytes ending with the name's last: drop the leading ones
    std::memcpy(&w, p + rem - 8, 8);
    return fromLittleEndian(w) >> (64 - 8 * rem);
  }
  for (size_t i = 0; i < rem; ++i) w |= uint64_t{p[i]} << (8 * i);
  return w;
}

// ASCII lower-casing of 8 bytes at once (the SWAR form of Rust's make_ascii_lowercase): 0x20
// is added to the bytes 'A'..'Z' only. Length bytes (1..63) are never letters, so a whole wire
// name can go through it.
inline uint64_t lowerWord(uint64_t w) noexcept {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  const uint64_t low7 = w & (0x7F * kOnes);
  const uint64_t atLeastA = low7 + (0x80 - 'A') * kOnes;  // top bit: low 7 bits >= 'A'
  const uint64_t aboveZ = low7 + (0x7F - 'Z') * kOnes;    // top bit: low 7 bits > 'Z'
  const uint64_t upper = (atLeastA ^ aboveZ) & ~w & (0x80 * kOnes);
  return w | (upper >> 2);
}

// Lower-cases and hashes the `len` bytes of a wire name at src (`avail` >= len readable there),
// one folded multiply per 8 bytes; with kStore also writes them to dst, rounded up to whole
// zero-padded words (dst must hold len rounded up to 8: NameKey's buffer does). The root name
// (len 1) hashes to 0, so NameKey::clear() needs no seed.
template <bool kStore>
uint64_t lowerAndHash(const uint8_t* src, size_t len, size_t avail, uint8_t* dst) noexcept {
  if (len <= 1) return 0;
  const HashSeed& s = hashSeed();
  const uint64_t k1 = s.k1;
  uint64_t h = s.k0 ^ len;
  auto step = [&](size_t o, uint64_t w) {
    w = lowerWord(w);
    if constexpr (kStore) {
      const uint64_t le = fromLittleEndian(w);
      std::memcpy(dst + o, &le, 8);
    }
    h = foldedMultiply(h ^ w, k1);
  };
  const size_t last = (len - 1) & ~size_t{7};  // offset of the last word
  if (avail >= last + 8) {  // the usual case: whole words readable (a question has 4 bytes after)
    uint64_t w;
    for (size_t o = 0; o < last; o += 8) {
      std::memcpy(&w, src + o, 8);
      step(o, fromLittleEndian(w));
    }
    std::memcpy(&w, src + last, 8);
    step(last, fromLittleEndian(w) & (~uint64_t{0} >> (8 * (last + 8 - len))));
    return h;
  }
  for (size_t o = 0; o < len; o += 8) step(o, loadWord(src + o, len - o, avail - o, o));
  return h;
}

bool isPlainTextByte(uint8_t c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

uint64_t nameHash(std::string_view lowerWire) noexcept {
  return lowerAndHash<false>(reinterpret_cast<const uint8_t*>(lowerWire.data()), lowerWire.size(),
                             lowerWire.size(), nullptr);
}

void setNameHashSeed(uint64_t k0, uint64_t k1) noexcept { hashSeed() = {k0, k1}; }

size_t NameKey::labelOffset(size_t i) const noexcept {
  size_t off = 0;
  for (size_t n = 0; n < i && off < len_ && buf_[off] != 0; ++n) off += 1 + size_t{buf_[off]};
  return off;
}

bool NameKey::appendLabel(const uint8_t* label, size_t len) noexcept {
  if (!appendLabelNoHash(label, len)) return false;
  hash_ = lowerAndHash<false>(buf_, len_, sizeof buf_, nullptr);
  return true;
}

bool NameKey::appendLabelNoHash(const uint8_t* label, size_t len) noexcept {
  if (len == 0 || len > kMaxLabel || len_ + 1 + len > kMaxNameWire) return false;
  uint8_t* p = buf_ + len_ - 1;  // overwrite the root byte, write it again after the label
  *p++ = static_cast<uint8_t>(len);
  for (size_t i = 0; i < len; ++i) *p++ = lowerAscii(label[i]);
  *p = 0;
  len_ = static_cast<uint16_t>(len_ + 1 + len);
  ++labels_;
  return true;
}

bool NameKey::assignWire(std::string_view wire) noexcept {
  clear();
  const auto* w = reinterpret_cast<const uint8_t*>(wire.data());
  size_t pos = 0;
  while (pos < wire.size()) {
    const uint8_t b = w[pos];
    if (b == 0) {
      if (pos + 1 != wire.size()) break;  // bytes after the root
      hash_ = lowerAndHash<false>(buf_, len_, sizeof buf_, nullptr);
      return true;
    }
    if (b > kMaxLabel || wire.size() - pos - 1 < b || !appendLabelNoHash(w + pos + 1, b)) break;
    pos += 1 + size_t{b};
  }
  clear();
  return false;
}

std::string NameKey::text() const { return wireToText(wire()); }

Result<size_t, NameError> readName(std::span<const uint8_t> msg, size_t pos,
                                   NameKey* out) noexcept {
  // Fast path, a name without pointers (every question's: a pointer may only point back into an
  // earlier name, and none precedes the question): one walk over the length bytes validates it,
  // then it is copied, lower-cased and hashed 8 bytes at a time. Anything else (a pointer, a bad
  // label type, running off the end, too long) takes walkName below, which gives the verdict.
  const uint8_t* m = msg.data();
  const size_t size = msg.size();
  size_t p = pos;
  size_t labels = 0;
  while (p < size) {  // a label running past the end leaves p >= size
    const size_t b = m[p];
    if (b == 0) {
      const size_t len = p + 1 - pos;
      if (len > kMaxNameWire) break;
      out->len_ = static_cast<uint16_t>(len);
      out->labels_ = static_cast<uint8_t>(labels);
      out->hash_ = lowerAndHash<true>(m + pos, len, size - pos, out->buf_);
      return p + 1;
    }
    if (b > kMaxLabel) break;
    p += 1 + b;
    ++labels;
  }
  out->clear();
  // walkName already enforces the label and length limits appendLabel checks again.
  auto end = walkName(msg, pos, [out](const uint8_t* l, size_t n) { out->appendLabelNoHash(l, n); });
  out->hash_ = lowerAndHash<false>(out->buf_, out->len_, sizeof out->buf_, nullptr);
  return end;
}

Result<size_t, NameError> skipName(std::span<const uint8_t> msg, size_t pos) noexcept {
  return walkName(msg, pos, [](const uint8_t*, size_t) {});
}

bool textToWire(std::string_view text, std::string* wire) {
  if (text.empty() || text == ".") {
    wire->assign(1, '\0');
    return true;
  }
  std::string out;
  out.reserve(text.size() + 2);
  uint8_t label[kMaxLabel];
  size_t len = 0;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '.') {
      if (len == 0) return false;  // empty label: leading dot or ".."
      out.push_back(static_cast<char>(len));
      out.append(reinterpret_cast<const char*>(label), len);
      len = 0;
      ++i;
      continue;
    }
    uint8_t byte;
    if (c == '\\') {
      if (i + 1 >= text.size()) return false;  // dangling backslash
      const char d = text[i + 1];
      if (d >= '0' && d <= '9') {  // \DDD: exactly three decimal digits (RFC 1035 5.1)
        if (i + 3 >= text.size()) return false;
        unsigned v = 0;
        for (size_t k = 1; k <= 3; ++k) {
          const char x = text[i + k];
          if (x < '0' || x > '9') return false;
          v = v * 10 + static_cast<unsigned>(x - '0');
        }
        if (v > 255) return false;
        byte = static_cast<uint8_t>(v);
        i += 4;
      } else {  // \X: X literally (\. is a dot inside a label)
        byte = static_cast<uint8_t>(d);
        i += 2;
      }
    } else {
      byte = static_cast<uint8_t>(c);
      ++i;
    }
    if (len == kMaxLabel) return false;
    label[len++] = lowerAscii(byte);
  }
  if (len > 0) {  // no trailing dot
    out.push_back(static_cast<char>(len));
    out.append(reinterpret_cast<const char*>(label), len);
  }
  out.push_back('\0');
  if (out.size() > kMaxNameWire) return false;
  *wire = std::move(out);
  return true;
}

std::string wireToText(std::string_view wire) {
  const auto* w = reinterpret_cast<const uint8_t*>(wire.data());
  std::string out;
  size_t pos = 0;
  // Stops quietly at anything that is not a plain label (this is for logs and tests).
  while (pos < wire.size() && w[pos] != 0 && w[pos] <= kMaxLabel &&
         wire.size() - pos - 1 >= w[pos]) {
    const size_t n = w[pos];
    for (size_t k = 1; k <= n; ++k) {
      const uint8_t c = w[pos + k];
      if (isPlainTextByte(c)) {
        out.push_back(static_cast<char>(c));
      } else {
        char esc[5] = {'\\', static_cast<char>('0' + c / 100), static_cast<char>('0' + c / 10 % 10),
                       static_cast<char>('0' + c % 10), 0};
        out.append(esc, 4);
      }
    }
    out.push_back('.');
    pos += 1 + n;
  }
  if (out.empty()) out.push_back('.');  // the root (push_back: GCC 12 -Wrestrict misfires on = ".")
  return out;
}

bool isAtOrBelow(std::string_view name, std::string_view zone) noexcept {
  if (zone.size() > name.size()) return false;
  const size_t start = name.size() - zone.size();
  // The tail first: most names are not in the zone, and their last 8 bytes already differ.
  if (zone.size() >= 8) {
    uint64_t a, b;
    std::memcpy(&a, name.data() + name.size() - 8, 8);
    std::memcpy(&b, zone.data() + zone.size() - 8, 8);
    if (a != b) return false;
  }
  if (std::memcmp(name.data() + start, zone.data(), zone.size()) != 0) return false;
  // The bytes match; they must also start a label: "\10xcluster\5local" ends with the bytes
  // of "cluster\5local" but is not below "\7cluster\5local".
  const auto* w = reinterpret_cast<const uint8_t*>(name.data());
  size_t pos = 0;
  while (pos < start) {
    if (w[pos] == 0 || w[pos] > kMaxLabel) return false;
    pos += 1 + size_t{w[pos]};
  }
  return pos == start;
}

}  // namespace hdnsd::dns
