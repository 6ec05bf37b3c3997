// Domain names: the compressed-name reader used on the data path (noexcept, no allocation)
// and the text <-> wire conversions used on the control path (they allocate strings).
#include "hdnsd/dns/name.h"

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

bool isPlainTextByte(uint8_t c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

size_t NameKey::labelOffset(size_t i) const noexcept {
  size_t off = 0;
  for (size_t n = 0; n < i && off < len_ && buf_[off] != 0; ++n) off += 1 + size_t{buf_[off]};
  return off;
}

bool NameKey::appendLabel(const uint8_t* label, size_t len) noexcept {
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
      if (pos + 1 == wire.size()) return true;
      break;  // bytes after the root
    }
    if (b > kMaxLabel || wire.size() - pos - 1 < b || !appendLabel(w + pos + 1, b)) break;
    pos += 1 + size_t{b};
  }
  clear();
  return false;
}

std::string NameKey::text() const { return wireToText(wire()); }

Result<size_t, NameError> readName(std::span<const uint8_t> msg, size_t pos,
                                   NameKey* out) noexcept {
  out->clear();
  // walkName already enforces the label and length limits appendLabel checks again.
  return walkName(msg, pos, [out](const uint8_t* l, size_t n) { out->appendLabel(l, n); });
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
  const auto* w = reinterpret_cast<const uint8_t*>(name.data());
  size_t pos = 0;
  // Compare only at label boundaries: "\10xcluster\5local" ends with the bytes of
  // "cluster\5local" but is not below "\7cluster\5local".
  for (;;) {
    const size_t rest = name.size() - pos;
    if (rest == zone.size()) return std::memcmp(w + pos, zone.data(), rest) == 0;
    if (rest < zone.size() || w[pos] == 0 || w[pos] > kMaxLabel) return false;
    pos += 1 + size_t{w[pos]};
    if (pos >= name.size()) return false;
  }
}

}  // namespace hdnsd::dns
