// The data path of the cluster view: Snapshot::lookup (noexcept, no allocation). A name at or
// below a service is one probe of the names table with the hash the query parse computed;
// everything else (the apex, empty non-terminals, pod names, reverse names) is classified by
// its labels. The structure is described in include/hdnsd/cluster/snapshot.h.
#include <array>
#include <cstring>

#include "snapshot_impl.h"

namespace hdnsd::cluster {

namespace {

constexpr std::string_view kInAddrArpa{"\7in-addr\4arpa\0", 14};
constexpr std::string_view kIp6Arpa{"\3ip6\4arpa\0", 10};

// Parses a decimal octet label ("0".."255", no leading zero) into *v.
bool parseOctet(std::string_view l, uint8_t* v) noexcept {
  if (l.empty() || l.size() > 3 || (l.size() > 1 && l[0] == '0')) return false;
  unsigned x = 0;
  for (char c : l) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + static_cast<unsigned>(c - '0');
  }
  if (x > 255) return false;
  *v = static_cast<uint8_t>(x);
  return true;
}

int hexNibble(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "10-3-0-1" -> 4 bytes; false if it is not exactly that form.
bool parseDashedV4(std::string_view l, uint8_t out[4]) noexcept {
  size_t part = 0, start = 0;
  for (size_t i = 0; i <= l.size(); ++i) {
    if (i == l.size() || l[i] == '-') {
      if (part == 4 || !parseOctet(l.substr(start, i - start), &out[part])) return false;
      ++part;
      start = i + 1;
    }
  }
  return part == 4;
}

// Parses dash-separated groups of 1..4 hex digits ("fd00-10-96"; "" is no group) into
// groups[*n...]. False on an empty group or more than `max` groups in total.
bool parseGroups(std::string_view s, uint16_t* groups, size_t* n, size_t max) noexcept {
  if (s.empty()) return true;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] != '-') continue;
    const std::string_view g = s.substr(start, i - start);
    if (g.empty() || g.size() > 4 || *n == max) return false;
    unsigned v = 0;
    for (char c : g) {
      const int h = hexNibble(c);
      if (h < 0) return false;
      v = (v << 4) | static_cast<unsigned>(h);
    }
    groups[(*n)++] = static_cast<uint16_t>(v);
    start = i + 1;
  }
  return true;
}

// "fd00--1" -> 16 bytes: the dashed IPv6 text ('-' for ':', so "--" is "::"), RFC 4291 2.2
// forms without the embedded IPv4 tail (its dots would be separate labels anyway).
bool parseDashedV6(std::string_view l, uint8_t out[16]) noexcept {
  uint16_t head[8] = {}, tail[8] = {};
  size_t nh = 0, nt = 0;
  const size_t gap = l.find("--");
  if (gap == std::string_view::npos) {
    if (!parseGroups(l, head, &nh, 8) || nh != 8) return false;
  } else {
    const std::string_view right = l.substr(gap + 2);
    if (right.find("--") != std::string_view::npos) return false;  // two "::"
    if (!parseGroups(l.substr(0, gap), head, &nh, 7) || !parseGroups(right, tail, &nt, 7) ||
        nh + nt > 7)
      return false;
  }
  uint16_t full[8] = {};
  for (size_t k = 0; k < nh; ++k) full[k] = head[k];
  for (size_t k = 0; k < nt; ++k) full[8 - nt + k] = tail[k];
  for (size_t k = 0; k < 8; ++k) {
    out[2 * k] = static_cast<uint8_t>(full[k] >> 8);
    out[2 * k + 1] = static_cast<uint8_t>(full[k] & 0xFF);
  }
  return true;
}

// The answer at an existing name.
inline Lookup answerAt(const Node& node, uint16_t qtype) noexcept {
  Lookup r;
  const RrSet* hit = nullptr;
  for (const RrSet* s = node.sets; s != node.sets + node.setCount; ++s) {
    // A CNAME owns its name: it answers every type (RFC 1034 3.6.2); the caller does not chase.
    if (s->type == qtype || s->type == dns::kTypeCNAME) {
      hit = s;
      break;
    }
    if (qtype == dns::kTypeANY && hit == nullptr) hit = s;
  }
  if (hit == nullptr) {
    r.kind = Lookup::Kind::kNoData;
    return r;
  }
  r.kind = Lookup::Kind::kAnswer;
  r.answer = hit;
  if (hit->type == dns::kTypeSRV) r.additional = {node.extras, node.extraCount};
  return r;
}

// n bytes equal: names are short, a call to memcmp costs more than the compare. Words of 8
// bytes, the last one overlapping the one before.
inline bool sameBytes(const uint8_t* a, const char* b, size_t n) noexcept {
  auto word = [](const void* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  if (n < 8) return std::memcmp(a, b, n) == 0;
  for (size_t i = 0; i + 8 < n; i += 8)
    if (word(a + i) != word(b + i)) return false;
  return word(a + n - 8) == word(b + n - 8);
}

}  // namespace

Lookup Snapshot::lookup(const dns::NameKey& qname, uint16_t qtype) const noexcept {
  // Most questions are for names that exist at or below a service: the table of every such
  // name answers them with the hash the parse computed. Only the table's names can match, so
  // a hit needs no check of the zone or the labels.
  if (impl_) {
    const std::string_view w = qname.wire();
    const Node* node = impl_->names.find(qname.hash(), [w](const Node* nd) noexcept {
      return nd->nameLen == w.size() && sameBytes(nd->name, w.data(), w.size());
    });
    if (node != nullptr) return answerAt(*node, qtype);
  }
  return lookupByLabels(qname, qtype);
}

Lookup Snapshot::lookupByLabels(const dns::NameKey& qname, uint16_t qtype) const noexcept {
  Lookup r;  // kNotInZone
  if (!impl_) return r;
  const Impl& im = *impl_;
  const std::string_view w = qname.wire();
  // Label offsets, left to right (at most 127 labels fit in 255 bytes).
  std::array<uint8_t, 128> off;
  size_t n = 0, pos = 0;
  while (pos < w.size() && w[pos] != 0) {
    if (n == off.size()) return r;
    off[n++] = static_cast<uint8_t>(pos);
    pos += 1 + static_cast<uint8_t>(w[pos]);
  }
  if (pos + 1 != w.size()) return r;  // not a well-formed key: nothing of ours
  auto label = [&](size_t i) { return w.substr(off[i] + 1, static_cast<uint8_t>(w[off[i]])); };
  auto suffixFrom = [&](size_t i) { return i < n ? w.substr(off[i]) : w.substr(w.size() - 1); };

  if (n >= im.zoneLabels && suffixFrom(n - im.zoneLabels) == zoneWire_) {
    const size_t rel = n - im.zoneLabels;  // labels above the zone
    if (rel == 0) {  // the apex
      if (qtype == dns::kTypeSOA || qtype == dns::kTypeANY) {
        r.kind = Lookup::Kind::kAnswer;
        r.answer = &soa_;
      } else {
        r.kind = Lookup::Kind::kNoData;
      }
      return r;
    }
    const std::string_view top = label(rel - 1);
    r.kind = Lookup::Kind::kNxDomain;
    if (top == "svc") {
      if (rel == 1) {
        r.kind = Lookup::Kind::kNoData;
      } else if (rel == 2) {
        if (im.namespaces.find(w.substr(off[0], off[1] - off[0])) != nullptr)
          r.kind = Lookup::Kind::kNoData;
      }  // deeper: not in the names table, so no such name (or its service has no endpoint)
    } else if (top == "pod") {
      // Spec 2.6 (CoreDNS "pods insecure"): any address, no check that a pod has it.
      if (rel <= 2) {
        r.kind = Lookup::Kind::kNoData;  // pod.<zone>, <ns>.pod.<zone>: empty non-terminals
      } else if (rel == 3) {
        const std::string_view l = label(0);
        std::memset(r.synth, 0, sizeof r.synth);
        if (parseDashedV4(l, r.synth)) {
          r.synthType = dns::kTypeA;
        } else if (parseDashedV6(l, r.synth)) {
          r.synthType = dns::kTypeAAAA;
        } else {
          std::memset(r.synth, 0, sizeof r.synth);
          return r;  // malformed: NXDOMAIN
        }
        r.kind = (qtype == r.synthType || qtype == dns::kTypeANY) ? Lookup::Kind::kSynthAddress
                                                                   : Lookup::Kind::kNoData;
      }
    } else if (rel == 1 && top == "dns-version") {
      if (qtype == dns::kTypeTXT || qtype == dns::kTypeANY) {
        r.kind = Lookup::Kind::kAnswer;
        r.answer = &im.versionTxt;
      } else {
        r.kind = Lookup::Kind::kNoData;
      }
    }
    return r;
  }

  // Reverse names: answered only for addresses in the view, only for PTR.
  if (qtype != dns::kTypePTR && qtype != dns::kTypeANY) return r;
  char key[16];
  size_t keyLen = 0;
  if (n == 6 && suffixFrom(4) == kInAddrArpa) {
    for (size_t i = 0; i < 4; ++i) {
      uint8_t b;
      if (!parseOctet(label(i), &b)) return r;
      key[3 - i] = static_cast<char>(b);
    }
    keyLen = 4;
  } else if (n == 34 && suffixFrom(32) == kIp6Arpa) {
    for (size_t i = 0; i < 32; ++i) {  // label 0 is the lowest nibble (RFC 3596 2.5)
      const std::string_view l = label(i);
      const int h = l.size() == 1 ? hexNibble(l[0]) : -1;
      if (h < 0) return r;
      char& b = key[15 - i / 2];
      b = (i % 2 == 0) ? static_cast<char>(h) : static_cast<char>(b | (h << 4));
    }
    keyLen = 16;
  } else {
    return r;
  }
  const std::string_view k(key, keyLen);
  const PtrEntry* e = im.reverse.find(dns::nameHash(k), [k](const PtrEntry* p) noexcept { return p->key() == k; });
  if (e == nullptr) return r;
  r.kind = Lookup::Kind::kAnswer;
  r.answer = &e->set;
  return r;
}

}  // namespace hdnsd::cluster
