// Kubernetes JSON -> ClusterModel. Control path: nlohmann::json may throw (parse errors, and our
// own FieldError for a wrong type); everything is caught in decodeList and turned into one
// line that names the item and the field.
#include "hdnsd/kube/decode.h"

#include <nlohmann/json.hpp>

#include <utility>

namespace hdnsd::kube {

namespace {

using nlohmann::json;
using cluster::AddressType;
using cluster::IpAddr;
using cluster::Protocol;

// A field with the wrong shape. `path` is relative to the item ("spec.ports[1].port").
struct FieldError {
  std::string path, msg;
};

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// The value at `key`, or nullptr if it is absent or null (the API server omits empty optional
// fields, kubectl sometimes prints them as null: both mean "not set").
const json* get(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const json* getObject(const json& obj, std::string_view key, const std::string& path) {
  const json* v = get(obj, key);
  if (v != nullptr && !v->is_object()) throw FieldError{join(path, key), "expected an object"};
  return v;
}

const json* getArray(const json& obj, std::string_view key, const std::string& path) {
  const json* v = get(obj, key);
  if (v != nullptr && !v->is_array()) throw FieldError{join(path, key), "expected an array"};
  return v;
}

std::string getString(const json& obj, std::string_view key, const std::string& path) {
  const json* v = get(obj, key);
  if (v == nullptr) return {};
  if (!v->is_string()) throw FieldError{join(path, key), "expected a string"};
  return v->get<std::string>();
}

std::optional<bool> getBool(const json& obj, std::string_view key, const std::string& path) {
  const json* v = get(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) throw FieldError{join(path, key), "expected a boolean"};
  return v->get<bool>();
}

// A port number: an integer in 1..65535, or nullopt if absent.
std::optional<uint16_t> getPort(const json& obj, std::string_view key, const std::string& path) {
  const json* v = get(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) throw FieldError{join(path, key), "expected an integer"};
  const auto n = v->get<int64_t>();
  if (n < 1 || n > 65535) throw FieldError{join(path, key), "out of range 1..65535"};
  return static_cast<uint16_t>(n);
}

Protocol getProtocol(const json& obj, const std::string& path) {
  const std::string p = getString(obj, "protocol", path);
  if (p.empty() || p == "TCP") return Protocol::kTcp;  // the API's default
  if (p == "UDP") return Protocol::kUdp;
  if (p == "SCTP") return Protocol::kSctp;
  throw FieldError{join(path, "protocol"), "unknown protocol \"" + p + "\""};
}

std::map<std::string, std::string> getStringMap(const json& obj, std::string_view key,
                                                const std::string& path) {
  std::map<std::string, std::string> out;
  const json* m = getObject(obj, key, path);
  if (m == nullptr) return out;
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (!it->is_string()) throw FieldError{join(join(path, key), it.key()), "expected a string"};
    out[it.key()] = it->get<std::string>();
  }
  return out;
}

IpAddr parseIp(const std::string& text, const std::string& path) {
  auto ip = IpAddr::parse(text);
  if (!ip) throw FieldError{path, "invalid IP address \"" + text + "\""};
  return *ip;
}

// Ports of a Service (spec.ports) or an EndpointSlice (ports).
std::vector<cluster::Port> decodePorts(const json& obj, const std::string& path, bool portRequired) {
  std::vector<cluster::Port> out;
  const json* ports = getArray(obj, "ports", path);
  if (ports == nullptr) return out;
  for (size_t i = 0; i < ports->size(); ++i) {
    const json& p = (*ports)[i];
    const std::string at = index(join(path, "ports"), i);
    if (!p.is_object()) throw FieldError{at, "expected an object"};
    cluster::Port port;
    port.name = getString(p, "name", at);
    port.protocol = getProtocol(p, at);
    auto number = getPort(p, "port", at);
    if (!number) {
      if (portRequired) throw FieldError{join(at, "port"), "required"};
      continue;  // EndpointSlice: a nil port means "all ports"; nothing for SRV to name
    }
    port.port = *number;
    out.push_back(std::move(port));
  }
  return out;
}

cluster::Service decodeService(const json& item, const std::string& ns, const std::string& name) {
  cluster::Service s;
  s.ns = ns;
  s.name = name;
  if (const json* md = getObject(item, "metadata", ""))
    s.annotations = getStringMap(*md, "annotations", "metadata");
  const json* spec = getObject(item, "spec", "");
  if (spec == nullptr) return s;  // a Service without spec has nothing to serve

  const std::string type = getString(*spec, "type", "spec");
  if (type.empty() || type == "ClusterIP") {
    s.type = cluster::ServiceType::kClusterIP;
  } else if (type == "NodePort") {
    s.type = cluster::ServiceType::kNodePort;
  } else if (type == "LoadBalancer") {
    s.type = cluster::ServiceType::kLoadBalancer;
  } else if (type == "ExternalName") {
    s.type = cluster::ServiceType::kExternalName;
  } else {
    throw FieldError{"spec.type", "unknown service type \"" + type + "\""};
  }

  // spec.clusterIPs (dual-stack, 1.20+) supersedes spec.clusterIP, whose value it repeats first.
  std::vector<std::pair<std::string, std::string>> ips;  // (text, path)
  if (const json* list = getArray(*spec, "clusterIPs", "spec"); list != nullptr && !list->empty()) {
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string at = index("spec.clusterIPs", i);
      if (!(*list)[i].is_string()) throw FieldError{at, "expected a string"};
      ips.emplace_back((*list)[i].get<std::string>(), at);
    }
  } else {
    std::string one = getString(*spec, "clusterIP", "spec");
    if (!one.empty()) ips.emplace_back(std::move(one), "spec.clusterIP");
  }
  for (const auto& [text, at] : ips) {
    if (text == "None") {
      s.headless = true;
      continue;
    }
    if (text.empty()) continue;
    s.clusterIPs.push_back(parseIp(text, at));
  }
  if (s.headless) s.clusterIPs.clear();

  s.externalName = getString(*spec, "externalName", "spec");
  s.publishNotReadyAddresses = getBool(*spec, "publishNotReadyAddresses", "spec").value_or(false);
  s.ports = decodePorts(*spec, "spec", /*portRequired=*/true);
  return s;
}

cluster::EndpointSlice decodeSlice(const json& item, const std::string& ns, const std::string& name,
                                   std::string serviceName) {
  cluster::EndpointSlice sl;
  sl.ns = ns;
  sl.name = name;
  sl.serviceName = std::move(serviceName);

  const std::string type = getString(item, "addressType", "");
  if (type.empty() || type == "IPv4") {
    sl.addressType = AddressType::kIPv4;
  } else if (type == "IPv6") {
    sl.addressType = AddressType::kIPv6;
  } else if (type == "FQDN") {
    sl.addressType = AddressType::kFQDN;
  } else {
    throw FieldError{"addressType", "unknown address type \"" + type + "\""};
  }

  if (const json* eps = getArray(item, "endpoints", "")) {
    for (size_t i = 0; i < eps->size(); ++i) {
      const json& e = (*eps)[i];
      const std::string at = index("endpoints", i);
      if (!e.is_object()) throw FieldError{at, "expected an object"};
      cluster::Endpoint ep;
      if (const json* addrs = getArray(e, "addresses", at)) {
        for (size_t k = 0; k < addrs->size(); ++k) {
          const std::string aat = index(join(at, "addresses"), k);
          if (!(*addrs)[k].is_string()) throw FieldError{aat, "expected a string"};
          if (sl.addressType == AddressType::kFQDN) continue;  // not served (not IPs)
          IpAddr ip = parseIp((*addrs)[k].get<std::string>(), aat);
          if ((ip.family == 4) != (sl.addressType == AddressType::kIPv4))
            throw FieldError{aat, "address family does not match addressType " + type};
          ep.addresses.push_back(ip);
        }
      }
      if (const json* c = getObject(e, "conditions", at)) {
        const std::string cat = join(at, "conditions");
        ep.ready = getBool(*c, "ready", cat);
        ep.serving = getBool(*c, "serving", cat);
        ep.terminating = getBool(*c, "terminating", cat);
      }
      ep.hostname = getString(e, "hostname", at);
      ep.nodeName = getString(e, "nodeName", at);
      ep.zone = getString(e, "zone", at);
      if (const json* hints = getObject(e, "hints", at)) {
        // [{"name": "us-east-1a"}, ...]; v1beta1 and v1 spell them the same.
        const std::string hat = join(at, "hints");
        for (auto [key, list] : {std::pair{"forZones", &ep.forZones}, std::pair{"forNodes", &ep.forNodes}}) {
          const json* arr = getArray(*hints, key, hat);
          if (arr == nullptr) continue;
          for (size_t k = 0; k < arr->size(); ++k) {
            const std::string hk = index(join(hat, key), k);
            if (!(*arr)[k].is_object()) throw FieldError{hk, "expected an object"};
            std::string name = getString((*arr)[k], "name", hk);
            if (!name.empty()) list->push_back(std::move(name));
          }
        }
      }
      if (const json* ref = getObject(e, "targetRef", at)) {
        if (getString(*ref, "kind", join(at, "targetRef")) == "Pod")
          ep.podName = getString(*ref, "name", join(at, "targetRef"));
      }
      sl.endpoints.push_back(std::move(ep));
    }
  }
  sl.ports = decodePorts(item, "", /*portRequired=*/false);
  return sl;
}

enum class ItemKind { kService, kSlice, kOther };

ItemKind classify(const std::string& kind, const std::string& apiVersion) {
  if (kind == "Service" && (apiVersion.empty() || apiVersion == "v1")) return ItemKind::kService;
  // v1beta1 (removed in 1.25) has the same fields we read, except zone/nodeName in topology.
  if (kind == "EndpointSlice" && (apiVersion.empty() || apiVersion == "discovery.k8s.io/v1" ||
                                  apiVersion == "discovery.k8s.io/v1beta1"))
    return ItemKind::kSlice;
  return ItemKind::kOther;
}

}  // namespace

Result<cluster::ClusterModel, std::string> decodeList(std::string_view text) {
  return decodeList(text, nullptr);
}

Result<cluster::ClusterModel, std::string> decodeList(std::string_view text, DecodeStats* stats) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    if (stats != nullptr) *stats = {};
    return Unexpected{std::string("invalid JSON: ") + e.what()};
  }
  return decodeListJson(root, stats);
}

Result<cluster::ClusterModel, std::string> decodeListJson(const json& root, DecodeStats* stats) {
  DecodeStats local;
  DecodeStats& st = stats != nullptr ? *stats : local;
  st = {};
  if (!root.is_object()) return Unexpected{std::string("top level: expected an object")};

  cluster::ClusterModel model;
  std::string itemName = "top level";
  try {
    const std::string listKind = getString(root, "kind", "");
    std::string defaultKind;  // for items of a typed list, which carry no kind of their own
    if (listKind == "ServiceList") {
      defaultKind = "Service";
    } else if (listKind == "EndpointSliceList") {
      defaultKind = "EndpointSlice";
    } else if (listKind != "List") {
      throw FieldError{"kind", "expected List, ServiceList or EndpointSliceList, got \"" +
                                   listKind + "\""};
    }
    const json* items = getArray(root, "items", "");
    if (items == nullptr) return model;  // an empty list

    for (size_t i = 0; i < items->size(); ++i) {
      const json& item = (*items)[i];
      itemName = index("items", i);
      if (!item.is_object()) throw FieldError{"", "expected an object"};
      std::string kind = getString(item, "kind", "");
      if (kind.empty()) kind = defaultKind;
      const ItemKind ik = classify(kind, getString(item, "apiVersion", ""));
      if (ik == ItemKind::kOther) {
        ++st.skippedKinds;
        continue;
      }
      // Name the item as soon as we can, for every later message.
      std::string ns, name;
      std::map<std::string, std::string> labels;
      if (const json* md = getObject(item, "metadata", "")) {
        name = getString(*md, "name", "metadata");
        ns = getString(*md, "namespace", "metadata");
        itemName += " (" + kind + " " + (ns.empty() ? "default" : ns) + "/" + name + ")";
        if (ik == ItemKind::kSlice) labels = getStringMap(*md, "labels", "metadata");
      } else {
        itemName += " (" + kind + ")";
      }
      if (name.empty()) throw FieldError{"metadata.name", "required"};
      if (ns.empty()) ns = "default";  // what kubectl apply assumes too

      if (ik == ItemKind::kService) {
        model.services[cluster::objectKey(ns, name)] = decodeService(item, ns, name);
        ++st.services;
      } else {
        auto label = labels.find(kServiceNameLabel);
        if (label == labels.end() || label->second.empty()) {
          ++st.skippedUnlabeled;  // a slice managed by something else: no Service to serve it
          continue;
        }
        model.upsertSlice(cluster::objectKey(ns, name), decodeSlice(item, ns, name, label->second));
        ++st.slices;
      }
    }
  } catch (const FieldError& e) {
    std::string msg = itemName;
    if (!e.path.empty()) msg += ": " + e.path;
    return Unexpected{msg + ": " + e.msg};
  } catch (const std::exception& e) {  // nlohmann type_error & co: should not happen, still name it
    return Unexpected{itemName + ": " + e.what()};
  }
  return model;
}

// ---- One object (the API watch and list pages) ----------------------------------------------

namespace {

struct ObjectMeta {
  std::string ns, name;
  std::map<std::string, std::string> labels;
};

ObjectMeta decodeMeta(const json& obj) {
  if (!obj.is_object()) throw FieldError{"", "expected an object"};
  ObjectMeta m;
  if (const json* md = getObject(obj, "metadata", "")) {
    m.name = getString(*md, "name", "metadata");
    m.ns = getString(*md, "namespace", "metadata");
    m.labels = getStringMap(*md, "labels", "metadata");
  }
  if (m.name.empty()) throw FieldError{"metadata.name", "required"};
  if (m.ns.empty()) m.ns = "default";
  return m;
}

std::string describe(const char* kind, const ObjectMeta* m, const FieldError& e) {
  std::string msg = kind;
  if (m != nullptr) msg += " " + m->ns + "/" + m->name;
  if (!e.path.empty()) msg += ": " + e.path;
  return msg + ": " + e.msg;
}

}  // namespace

Result<cluster::Service, std::string> decodeServiceObject(const json& obj) {
  std::optional<ObjectMeta> m;
  try {
    m = decodeMeta(obj);
    return decodeService(obj, m->ns, m->name);
  } catch (const FieldError& e) {
    return Unexpected{describe("Service", m ? &*m : nullptr, e)};
  } catch (const std::exception& e) {
    return Unexpected{std::string("Service: ") + e.what()};
  }
}

Result<std::optional<cluster::EndpointSlice>, std::string> decodeSliceObject(const json& obj) {
  std::optional<ObjectMeta> m;
  try {
    m = decodeMeta(obj);
    auto label = m->labels.find(kServiceNameLabel);
    if (label == m->labels.end() || label->second.empty())
      return std::optional<cluster::EndpointSlice>();
    return std::optional<cluster::EndpointSlice>(decodeSlice(obj, m->ns, m->name, label->second));
  } catch (const FieldError& e) {
    return Unexpected{describe("EndpointSlice", m ? &*m : nullptr, e)};
  } catch (const std::exception& e) {
    return Unexpected{std::string("EndpointSlice: ") + e.what()};
  }
}

Result<std::vector<cluster::EndpointSlice>, std::string> decodeEndpointsObject(const json& obj) {
  std::optional<ObjectMeta> m;
  try {
    m = decodeMeta(obj);
    std::vector<cluster::EndpointSlice> out;
    const json* subsets = getArray(obj, "subsets", "");
    if (subsets == nullptr) return out;
    for (size_t i = 0; i < subsets->size(); ++i) {
      const json& sub = (*subsets)[i];
      const std::string at = index("subsets", i);
      if (!sub.is_object()) throw FieldError{at, "expected an object"};
      cluster::EndpointSlice v4, v6;
      for (auto* sl : {&v4, &v6}) {
        sl->ns = m->ns;
        sl->serviceName = m->name;
        sl->ports = decodePorts(sub, at, /*portRequired=*/false);
      }
      v4.name = m->name + "#" + std::to_string(i) + "v4";
      v4.addressType = AddressType::kIPv4;
      v6.name = m->name + "#" + std::to_string(i) + "v6";
      v6.addressType = AddressType::kIPv6;
      for (const char* key : {"addresses", "notReadyAddresses"}) {
        const bool ready = std::string_view(key) == "addresses";
        const json* addrs = getArray(sub, key, at);
        if (addrs == nullptr) continue;
        for (size_t k = 0; k < addrs->size(); ++k) {
          const json& a = (*addrs)[k];
          const std::string aat = index(join(at, key), k);
          if (!a.is_object()) throw FieldError{aat, "expected an object"};
          cluster::Endpoint ep;
          IpAddr ip = parseIp(getString(a, "ip", aat), join(aat, "ip"));
          ep.addresses.push_back(ip);
          ep.ready = ready;
          ep.hostname = getString(a, "hostname", aat);
          ep.nodeName = getString(a, "nodeName", aat);
          if (const json* ref = getObject(a, "targetRef", aat))
            if (getString(*ref, "kind", join(aat, "targetRef")) == "Pod")
              ep.podName = getString(*ref, "name", join(aat, "targetRef"));
          (ip.family == 4 ? v4 : v6).endpoints.push_back(std::move(ep));
        }
      }
      if (!v4.endpoints.empty()) out.push_back(std::move(v4));
      if (!v6.endpoints.empty()) out.push_back(std::move(v6));
    }
    return out;
  } catch (const FieldError& e) {
    return Unexpected{describe("Endpoints", m ? &*m : nullptr, e)};
  } catch (const std::exception& e) {
    return Unexpected{std::string("Endpoints: ") + e.what()};
  }
}

}  // namespace hdnsd::kube
