#include "hdnsd/autopath/autopath.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace hdnsd::autopath {
namespace {

constexpr std::string_view kSvcLabel("\3svc", 4);

bool parseIp(const std::string& text, std::array<uint8_t, 16>* out, uint8_t* len) {
  if (inet_pton(AF_INET, text.c_str(), out->data()) == 1) {
    *len = 4;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out->data()) == 1) {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out->data(), kMapped, 12) == 0) {  // ::ffff:a.b.c.d: the IPv4 address
      std::memmove(out->data(), out->data() + 12, 4);
      std::fill(out->begin() + 4, out->end(), 0);
      *len = 4;
    } else {
      *len = 16;
    }
    return true;
  }
  return false;
}

bool lessAddr(const std::array<uint8_t, 16>& a, uint8_t alen, const std::array<uint8_t, 16>& b, uint8_t blen) {
  if (alen != blen) return alen < blen;
  return std::memcmp(a.data(), b.data(), alen) < 0;
}

}  // namespace

const char* resultName(Result r) noexcept {
  switch (r) {
    case Result::kView: return "view";
    case Result::kUpstream: return "upstream";
    case Result::kNxDomain: return "nxdomain";
    case Result::kCount: break;
  }
  return "?";
}

std::shared_ptr<const PodIndex> PodIndex::build(const std::vector<PodEntry>& pods) {
  auto idx = std::make_shared<PodIndex>();
  std::map<std::string, uint32_t> nsIds;
  for (const auto& p : pods) {
    bool any = false;
    for (const auto& ip : p.ips) {
      Entry e;
      if (!parseIp(ip, &e.addr, &e.len)) continue;
      auto [it, fresh] = nsIds.try_emplace(p.ns, uint32_t(idx->namespaces_.size()));
      if (fresh) idx->namespaces_.push_back(p.ns);
      e.ns = it->second;
      idx->entries_.push_back(e);
      any = true;
    }
    if (any) ++idx->pods_;
  }
  auto& v = idx->entries_;
  std::sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
    if (a.len != b.len || a.addr != b.addr) return lessAddr(a.addr, a.len, b.addr, b.len);
    return a.ns < b.ns;
  });
  // Same IP twice: one pod listing it twice, or two pods of one namespace (a restarted pod's
  // old object still around) keep one entry; two namespaces drop the IP.
  std::vector<Entry> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size();) {
    size_t j = i + 1;
    bool conflict = false;
    while (j < v.size() && v[j].len == v[i].len && v[j].addr == v[i].addr) {
      conflict = conflict || v[j].ns != v[i].ns;
      ++j;
    }
    if (conflict) ++idx->conflicts_;
    else out.push_back(v[i]);
    i = j;
  }
  v = std::move(out);
  return idx;
}

std::string_view PodIndex::namespaceOf(std::span<const uint8_t> addr) const noexcept {
  if (addr.size() != 4 && addr.size() != 16) return {};
  std::array<uint8_t, 16> key{};
  std::memcpy(key.data(), addr.data(), addr.size());
  const auto len = uint8_t(addr.size());
  auto it = std::lower_bound(entries_.begin(), entries_.end(), 0, [&](const Entry& e, int) {
    return lessAddr(e.addr, e.len, key, len);
  });
  if (it == entries_.end() || it->len != len || it->addr != key) return {};
  return namespaces_[it->ns];
}

size_t splitFirstSearch(const dns::NameKey& qname, std::string_view ns, std::string_view zoneWire) noexcept {
  // qname = X . ns . svc . zone: the suffix after X is (1 + |ns|) + 4 + |zone| bytes.
  if (ns.empty() || ns.size() > dns::kMaxLabel || zoneWire.empty()) return 0;
  const std::string_view q = qname.wire();
  const size_t suffix = 1 + ns.size() + kSvcLabel.size() + zoneWire.size();
  if (q.size() <= suffix) return 0;
  const size_t at = q.size() - suffix;
  if (q.substr(q.size() - zoneWire.size()) != zoneWire) return 0;
  if (q.substr(at + 1 + ns.size(), kSvcLabel.size()) != kSvcLabel) return 0;
  if (uint8_t(q[at]) != ns.size() || q.substr(at + 1, ns.size()) != ns) return 0;
  // `at` must be a label boundary: count X's labels up to it.
  size_t labels = 0, pos = 0;
  while (pos < at) {
    pos += 1 + size_t(uint8_t(q[pos]));
    ++labels;
  }
  return pos == at ? labels : 0;
}

bool candidate(const dns::NameKey& qname, size_t xLabels, size_t step, std::string_view zoneWire,
               dns::NameKey* out) noexcept {
  if (xLabels == 0 || xLabels > qname.labelCount() || step >= kSteps) return false;
  if (step == 0) return out->assignWire(qname.wire());
  const std::string_view q = qname.wire();
  const size_t xLen = qname.labelOffset(xLabels);  // X's labels, without the root
  char buf[dns::kMaxNameWire + 8];
  std::string_view suffix = step == 1 ? std::string_view{} : step == 2 ? zoneWire : std::string_view("\0", 1);
  size_t n = xLen;
  if (step == 1) {
    if (xLen + kSvcLabel.size() + zoneWire.size() > dns::kMaxNameWire) return false;
    std::memcpy(buf, q.data(), xLen);
    std::memcpy(buf + n, kSvcLabel.data(), kSvcLabel.size());
    n += kSvcLabel.size();
    std::memcpy(buf + n, zoneWire.data(), zoneWire.size());
    n += zoneWire.size();
  } else {
    if (xLen + suffix.size() > dns::kMaxNameWire) return false;
    std::memcpy(buf, q.data(), xLen);
    std::memcpy(buf + n, suffix.data(), suffix.size());
    n += suffix.size();
  }
  return out->assignWire({buf, n});
}

}  // namespace hdnsd::autopath
