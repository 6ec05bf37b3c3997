// IpAddr: parsing and printing via inet_pton/inet_ntop (control path only).
#include "hdnsd/cluster/model.h"

#include <arpa/inet.h>

#include <cstring>

namespace hdnsd::cluster {

std::optional<IpAddr> IpAddr::parse(const std::string& text) {
  IpAddr a;
  // inet_pton rejects what the API server would too: leading zeros in IPv4 octets ("010.0.0.1"),
  // scope suffixes ("fe80::1%eth0") and surrounding spaces.
  if (text.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, text.c_str(), a.bytes) != 1) return std::nullopt;
    a.family = 4;
  } else {
    if (inet_pton(AF_INET6, text.c_str(), a.bytes) != 1) return std::nullopt;
    a.family = 6;
  }
  return a;
}

std::string IpAddr::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  // glibc prints the RFC 5952 form: lower case, longest zero run (of two or more) as "::".
  if (family == 4) {
    inet_ntop(AF_INET, bytes, buf, sizeof buf);
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes, buf, sizeof buf);
  }
  return buf;
}

bool IpAddr::operator==(const IpAddr& o) const {
  return family == o.family && std::memcmp(bytes, o.bytes, sizeof bytes) == 0;
}

bool IpAddr::operator<(const IpAddr& o) const {
  if (family != o.family) return family < o.family;  // IPv4 before IPv6
  return std::memcmp(bytes, o.bytes, sizeof bytes) < 0;
}

void ClusterModel::upsertSlice(const std::string& key, EndpointSlice slice) {
  eraseSlice(key);  // the service label may have changed
  auto& keys = byService_[objectKey(slice.ns, slice.serviceName)];
  keys.insert(key);
  slices_.insert_or_assign(key, std::move(slice));
}

void ClusterModel::eraseSlice(const std::string& key) {
  auto it = slices_.find(key);
  if (it == slices_.end()) return;
  auto idx = byService_.find(objectKey(it->second.ns, it->second.serviceName));
  if (idx != byService_.end()) {
    idx->second.erase(key);
    if (idx->second.empty()) byService_.erase(idx);
  }
  slices_.erase(it);
}

const std::set<std::string>& ClusterModel::sliceKeysOf(const std::string& serviceKey) const {
  static const std::set<std::string> kNone;
  auto it = byService_.find(serviceKey);
  return it == byService_.end() ? kNone : it->second;
}

}  // namespace hdnsd::cluster
