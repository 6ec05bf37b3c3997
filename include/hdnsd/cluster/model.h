// The slim cluster model: what hdnsd keeps of Kubernetes Services and EndpointSlices.
// Built on the control path (file load, watch events); never touched by queries, which read
// the compiled Snapshot (snapshot.h) instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace hdnsd::cluster {

struct IpAddr {
  uint8_t family = 0;  // 4 or 6
  uint8_t bytes[16] = {};
  static std::optional<IpAddr> parse(const std::string& text);  // "10.0.0.1", "fd00::1"
  std::string text() const;  // RFC 5952 form for IPv6 ("fd00:10:96::20")
  size_t size() const noexcept { return family == 4 ? 4 : 16; }  // bytes used
  bool operator==(const IpAddr& o) const;
  bool operator<(const IpAddr& o) const;
};

enum class Protocol : uint8_t { kTcp, kUdp, kSctp };

struct Port {
  std::string name;  // empty: unnamed (no SRV record)
  uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;
};

enum class ServiceType : uint8_t { kClusterIP, kNodePort, kLoadBalancer, kExternalName };

struct Service {
  std::string ns, name;
  ServiceType type = ServiceType::kClusterIP;
  bool headless = false;             // spec.clusterIP == "None"
  std::vector<IpAddr> clusterIPs;    // spec.clusterIPs (or spec.clusterIP)
  std::string externalName;          // ExternalName services
  bool publishNotReadyAddresses = false;
  std::vector<Port> ports;
  std::map<std::string, std::string> annotations;
};

struct Endpoint {
  std::vector<IpAddr> addresses;
  // EndpointSlice conditions; absent ready means ready (discovery.k8s.io/v1 API docs).
  std::optional<bool> ready, serving, terminating;
  std::string hostname;
  std::string nodeName, zone;
  std::string podName;  // targetRef.name when targetRef.kind == Pod
  // Topology Aware Routing hints (hints.forZones[].name, hints.forNodes[].name): the zones /
  // nodes this endpoint should serve; the topology policy ranks it local for them.
  std::vector<std::string> forZones, forNodes;
};

enum class AddressType : uint8_t { kIPv4, kIPv6, kFQDN };

struct EndpointSlice {
  std::string ns, name;
  std::string serviceName;  // label kubernetes.io/service-name
  AddressType addressType = AddressType::kIPv4;
  std::vector<Endpoint> endpoints;
  std::vector<Port> ports;
};

// The key of a namespaced object in ClusterModel: "ns/name".
inline std::string objectKey(const std::string& ns, const std::string& name) {
  return ns + "/" + name;
}

// Everything known, keyed for per-object updates: services by "ns/name", slices by "ns/name".
// Slices change only through upsertSlice/eraseSlice, which keep an index from each service
// ("ns/svc") to its slices, so that one watch event costs in proportion to its service, not
// to its namespace or the cluster (Snapshot::rebuildService reads the index).
class ClusterModel {
 public:
  std::map<std::string, Service> services;

  const std::map<std::string, EndpointSlice>& slices() const noexcept { return slices_; }
  void upsertSlice(const std::string& key, EndpointSlice slice);
  void eraseSlice(const std::string& key);
  // Keys of the slices labelled with service "ns/svc" (empty set if none).
  const std::set<std::string>& sliceKeysOf(const std::string& serviceKey) const;

 private:
  std::map<std::string, EndpointSlice> slices_;
  std::map<std::string, std::set<std::string>> byService_;
};

}  // namespace hdnsd::cluster
