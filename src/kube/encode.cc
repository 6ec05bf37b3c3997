// ClusterModel → Kubernetes JSON text (see include/hdnsd/kube/encode.h). Every field written here
// is one decode.cc reads; test/unit/kube/encode_test.cc checks model → JSON → model is the identity.
#include "hdnsd/kube/encode.h"

#include <cstdio>

#include "hdnsd/kube/decode.h"

namespace hdnsd::kube {
namespace {

using cluster::AddressType;
using cluster::Protocol;
using cluster::ServiceType;

const char* protocolName(Protocol p) {
  switch (p) {
    case Protocol::kUdp: return "UDP";
    case Protocol::kSctp: return "SCTP";
    case Protocol::kTcp: break;
  }
  return "TCP";
}

const char* serviceTypeName(ServiceType t) {
  switch (t) {
    case ServiceType::kNodePort: return "NodePort";
    case ServiceType::kLoadBalancer: return "LoadBalancer";
    case ServiceType::kExternalName: return "ExternalName";
    case ServiceType::kClusterIP: break;
  }
  return "ClusterIP";
}

const char* addressTypeName(AddressType t) {
  switch (t) {
    case AddressType::kIPv6: return "IPv6";
    case AddressType::kFQDN: return "FQDN";
    case AddressType::kIPv4: break;
  }
  return "IPv4";
}

// `,"key":` — every object below starts with a fixed first member, so the rest lead with a comma.
void key(std::string& out, const char* k) {
  out += ",\"";
  out += k;
  out += "\":";
}

void appendStringField(std::string& out, const char* k, const std::string& v) {
  if (v.empty()) return;  // decode reads absent and "" alike
  key(out, k);
  appendJsonString(out, v);
}

void appendStringMap(std::string& out, const std::map<std::string, std::string>& m) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ',';
    first = false;
    appendJsonString(out, k);
    out += ':';
    appendJsonString(out, v);
  }
  out += '}';
}

void appendPorts(std::string& out, const std::vector<cluster::Port>& ports) {
  if (ports.empty()) return;
  key(out, "ports");
  out += '[';
  for (size_t i = 0; i < ports.size(); ++i) {
    if (i) out += ',';
    out += "{\"port\":" + std::to_string(ports[i].port);
    out += ",\"protocol\":\"";
    out += protocolName(ports[i].protocol);
    out += '"';
    appendStringField(out, "name", ports[i].name);
    out += '}';
  }
  out += ']';
}

void appendMetadata(std::string& out, const std::string& ns, const std::string& name) {
  out += "\"metadata\":{\"name\":";
  appendJsonString(out, name);
  out += ",\"namespace\":";
  appendJsonString(out, ns);
}

void appendNames(std::string& out, const char* k, const std::vector<std::string>& names, bool& first) {
  if (names.empty()) return;
  if (!first) out += ',';
  first = false;
  out += '"';
  out += k;
  out += "\":[";
  for (size_t i = 0; i < names.size(); ++i) {
    out += i ? ",{\"name\":" : "{\"name\":";
    appendJsonString(out, names[i]);
    out += '}';
  }
  out += ']';
}

void appendEndpoint(std::string& out, const cluster::Endpoint& e) {
  out += "{\"addresses\":[";
  for (size_t i = 0; i < e.addresses.size(); ++i) {
    if (i) out += ',';
    out += '"' + e.addresses[i].text() + '"';  // digits, dots, colons: nothing to escape
  }
  out += ']';
  if (e.ready || e.serving || e.terminating) {
    key(out, "conditions");
    out += '{';
    bool first = true;
    for (auto [k, v] : {std::pair{"ready", &e.ready}, std::pair{"serving", &e.serving},
                        std::pair{"terminating", &e.terminating}}) {
      if (!*v) continue;
      out += first ? "\"" : ",\"";
      first = false;
      out += k;
      out += **v ? "\":true" : "\":false";
    }
    out += '}';
  }
  appendStringField(out, "hostname", e.hostname);
  appendStringField(out, "nodeName", e.nodeName);
  appendStringField(out, "zone", e.zone);
  if (!e.forZones.empty() || !e.forNodes.empty()) {
    key(out, "hints");
    out += '{';
    bool first = true;
    appendNames(out, "forZones", e.forZones, first);
    appendNames(out, "forNodes", e.forNodes, first);
    out += '}';
  }
  if (!e.podName.empty()) {
    key(out, "targetRef");
    out += "{\"kind\":\"Pod\",\"name\":";
    appendJsonString(out, e.podName);
    out += '}';
  }
  out += '}';
}

}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '"';
}

void appendServiceJson(std::string& out, const cluster::Service& s) {
  out += "{\"apiVersion\":\"v1\",\"kind\":\"Service\",";
  appendMetadata(out, s.ns, s.name);
  if (!s.annotations.empty()) {
    key(out, "annotations");
    appendStringMap(out, s.annotations);
  }
  out += "},\"spec\":{\"type\":\"";
  out += serviceTypeName(s.type);
  out += '"';
  if (s.headless) {
    out += ",\"clusterIP\":\"None\",\"clusterIPs\":[\"None\"]";
  } else if (!s.clusterIPs.empty()) {
    key(out, "clusterIP");
    out += '"' + s.clusterIPs[0].text() + '"';
    key(out, "clusterIPs");
    out += '[';
    for (size_t i = 0; i < s.clusterIPs.size(); ++i) {
      if (i) out += ',';
      out += '"' + s.clusterIPs[i].text() + '"';
    }
    out += ']';
  }
  appendStringField(out, "externalName", s.externalName);
  if (s.publishNotReadyAddresses) out += ",\"publishNotReadyAddresses\":true";
  appendPorts(out, s.ports);
  out += "}}";
}

void appendSliceJson(std::string& out, const cluster::EndpointSlice& s) {
  out += "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",";
  appendMetadata(out, s.ns, s.name);
  key(out, "labels");
  out += '{';
  appendJsonString(out, kServiceNameLabel);
  out += ':';
  appendJsonString(out, s.serviceName);
  out += "}},\"addressType\":\"";
  out += addressTypeName(s.addressType);
  out += "\",\"endpoints\":[";
  for (size_t i = 0; i < s.endpoints.size(); ++i) {
    if (i) out += ',';
    appendEndpoint(out, s.endpoints[i]);
  }
  out += ']';
  appendPorts(out, s.ports);
  out += '}';
}

void appendItemsJson(std::string& out, const cluster::ClusterModel& model) {
  out += '[';
  bool first = true;
  auto next = [&] {
    out += first ? "\n" : ",\n";
    first = false;
  };
  for (const auto& [k, s] : model.services) {
    next();
    appendServiceJson(out, s);
  }
  for (const auto& [k, s] : model.slices()) {
    next();
    appendSliceJson(out, s);
  }
  out += first ? "]" : "\n]";
}

std::string encodeList(const cluster::ClusterModel& model) {
  std::string out = "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},\"items\":";
  appendItemsJson(out, model);
  out += "}\n";
  return out;
}

}  // namespace hdnsd::kube
