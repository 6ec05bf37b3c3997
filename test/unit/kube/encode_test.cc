// kube::encodeList: ClusterModel → kubectl List JSON that decodeList reads back into the same
// model (every field of cluster/model.h), and so into the same answers. The oracle is a
// field-by-field description of the model written here, not the encoder's own output.
#include "hdnsd/kube/encode.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/dns/name.h"
#include "hdnsd/dns/wire.h"
#include "hdnsd/kube/decode.h"

namespace {

using namespace hdnsd;
using namespace hdnsd::cluster;

IpAddr ip(const char* t) {
  auto a = IpAddr::parse(t);
  REQUIRE(a.has_value());
  return *a;
}

std::string opt(const std::optional<bool>& b) { return b ? (*b ? "T" : "F") : "-"; }

std::string ports(const std::vector<Port>& ps) {
  std::string s;
  for (const auto& p : ps) s += " [" + p.name + ":" + std::to_string(p.port) + "/" + std::to_string(int(p.protocol)) + "]";
  return s;
}

// Every field of the model, one line per object (the test's oracle).
std::string describe(const ClusterModel& m) {
  std::string s;
  for (const auto& [key, v] : m.services) {
    s += "svc " + key + " " + v.ns + "/" + v.name + " type=" + std::to_string(int(v.type)) +
         " headless=" + std::to_string(v.headless) + " ext=" + v.externalName +
         " pna=" + std::to_string(v.publishNotReadyAddresses) + " ips=";
    for (const auto& a : v.clusterIPs) s += a.text() + ",";
    s += ports(v.ports) + " ann=";
    for (const auto& [k, a] : v.annotations) s += "{" + k + "=" + a + "}";
    s += "\n";
  }
  for (const auto& [key, v] : m.slices()) {
    s += "slice " + key + " " + v.ns + "/" + v.name + " svc=" + v.serviceName +
         " at=" + std::to_string(int(v.addressType)) + ports(v.ports) + "\n";
    for (const auto& e : v.endpoints) {
      s += "  ep";
      for (const auto& a : e.addresses) s += " " + a.text();
      s += " r=" + opt(e.ready) + " s=" + opt(e.serving) + " t=" + opt(e.terminating) + " h=" + e.hostname +
           " n=" + e.nodeName + " z=" + e.zone + " pod=" + e.podName + " fz=";
      for (const auto& z : e.forZones) s += z + ",";
      s += " fn=";
      for (const auto& n : e.forNodes) s += n + ",";
      s += "\n";
    }
  }
  return s;
}

ClusterModel everyField() {
  ClusterModel m;
  Service web;
  web.ns = "demo";
  web.name = "web";
  web.headless = true;
  web.publishNotReadyAddresses = true;
  web.ports = {{"http", 80, Protocol::kTcp}, {"dns", 53, Protocol::kUdp}, {"", 9000, Protocol::kSctp}};
  // Quotes, backslash, a newline, a control byte and UTF-8 must survive the round trip.
  web.annotations = {{"hdnsd.io/weight", "{\"10.0.0.1\": 3}"}, {"note", "a\\b\n\x01 caf\xc3\xa9"}};
  m.services["demo/web"] = web;

  Service api;
  api.ns = "demo";
  api.name = "api";
  api.type = ServiceType::kLoadBalancer;
  api.clusterIPs = {ip("10.96.0.10"), ip("fd00:10:96::a")};
  api.ports = {{"https", 443, Protocol::kTcp}};
  m.services["demo/api"] = api;

  Service ext;
  ext.ns = "other";
  ext.name = "ext";
  ext.type = ServiceType::kExternalName;
  ext.externalName = "db.example.com";
  m.services["other/ext"] = ext;

  Service np;
  np.ns = "other";
  np.name = "np";
  np.type = ServiceType::kNodePort;
  np.clusterIPs = {ip("10.96.0.11")};
  m.services["other/np"] = np;

  EndpointSlice v4;
  v4.ns = "demo";
  v4.name = "web-abc";
  v4.serviceName = "web";
  v4.ports = {{"http", 8080, Protocol::kTcp}, {"", 9090, Protocol::kUdp}};
  Endpoint e1;
  e1.addresses = {ip("10.244.1.1")};
  e1.ready = true;
  e1.serving = true;
  e1.terminating = false;
  e1.hostname = "web-0";
  e1.nodeName = "node-a";
  e1.zone = "zone-a";
  e1.podName = "web-0";
  e1.forZones = {"zone-a", "zone-b"};
  e1.forNodes = {"node-a"};
  Endpoint e2;  // only some conditions set: absent stays absent
  e2.addresses = {ip("10.244.1.2")};
  e2.ready = false;
  Endpoint e3;  // nothing set but the address
  e3.addresses = {ip("10.244.1.3")};
  v4.endpoints = {e1, e2, e3};
  m.upsertSlice("demo/web-abc", v4);

  EndpointSlice v6;
  v6.ns = "demo";
  v6.name = "web#0v6";  // a slice made from v1 Endpoints (decodeEndpointsObject's name)
  v6.serviceName = "web";
  v6.addressType = AddressType::kIPv6;
  Endpoint e6;
  e6.addresses = {ip("fd00::1")};
  e6.terminating = true;
  e6.forZones = {"zone-c"};
  v6.endpoints = {e6};
  m.upsertSlice("demo/web#0v6", v6);

  EndpointSlice fqdn;
  fqdn.ns = "demo";
  fqdn.name = "api-fqdn";
  fqdn.serviceName = "api";
  fqdn.addressType = AddressType::kFQDN;
  fqdn.endpoints = {Endpoint{}};
  m.upsertSlice("demo/api-fqdn", fqdn);
  return m;
}

ClusterModel roundTrip(const ClusterModel& m) {
  const std::string text = kube::encodeList(m);
  auto back = kube::decodeList(text);
  REQUIRE_MESSAGE(back.has_value(), (back ? "" : back.error()), "\n", text);
  return std::move(*back);
}

std::string readFile(const char* rel) {
  for (const char* up : {"", "../", "../../"}) {
    std::ifstream f(std::string(up) + rel);
    if (f) {
      std::stringstream ss;
      ss << f.rdbuf();
      return ss.str();
    }
  }
  FAIL(rel << " not found (run from the repository root)");
  return {};
}

// What a Snapshot answers for `name`/`type`: the kind and every RDATA, as text.
std::string answers(const Snapshot& s, const std::string& name, uint16_t type) {
  std::string wire;
  REQUIRE(dns::textToWire(name, &wire));
  dns::NameKey key;
  REQUIRE(key.assignWire(wire));
  const Lookup l = s.lookup(key, type);
  std::string out = std::to_string(int(l.kind));
  if (l.answer)
    for (const auto& r : l.answer->rdatas) out += "|" + std::string(r.bytes);
  for (const auto& x : l.additional) {
    out += "+" + std::string(x.ownerWire);
    if (x.rrset)
      for (const auto& r : x.rrset->rdatas) out += "|" + std::string(r.bytes);
  }
  return out;
}

}  // namespace

TEST_CASE("encodeList: decodeList reads back every field of the model") {
  const ClusterModel m = everyField();
  const ClusterModel back = roundTrip(m);
  CHECK(describe(back) == describe(m));
  CHECK(back.sliceKeysOf("demo/web").size() == 2);  // the service index is rebuilt too
}

TEST_CASE("encodeList: the same answers from the decoded model") {
  const ClusterModel m = everyField();
  ViewOptions o;
  o.serial = 7;  // pinned: the two builds must not differ by the clock
  auto a = Snapshot::build(m, o);
  auto b = Snapshot::build(roundTrip(m), o);
  for (const char* name : {"web.demo.svc.cluster.local", "web-0.web.demo.svc.cluster.local",
                           "_http._tcp.web.demo.svc.cluster.local", "_dns._udp.web.demo.svc.cluster.local",
                           "api.demo.svc.cluster.local", "_https._tcp.api.demo.svc.cluster.local",
                           "ext.other.svc.cluster.local", "np.other.svc.cluster.local",
                           "1.1.244.10.in-addr.arpa", "nope.demo.svc.cluster.local"})
    for (uint16_t t : {dns::kTypeA, dns::kTypeAAAA, dns::kTypeSRV, dns::kTypeCNAME, dns::kTypePTR})
      CHECK_MESSAGE(answers(*a, name, t) == answers(*b, name, t), name, " type ", t);
  CHECK(a->serviceCount() == b->serviceCount());
  CHECK(a->endpointCount() == b->endpointCount());
}

TEST_CASE("encodeList: the demo cluster and the integration fixture survive decode → encode → decode") {
  for (const char* file : {"examples/demo-cluster.json", "test/integration/data/cluster.json"}) {
    auto first = kube::decodeList(readFile(file));
    REQUIRE_MESSAGE(first.has_value(), file);
    REQUIRE(!first->services.empty());
    CHECK_MESSAGE(describe(roundTrip(*first)) == describe(*first), file);
  }
}

TEST_CASE("encodeList: an empty model is an empty List; one object per line") {
  ClusterModel empty;
  CHECK(kube::encodeList(empty) ==
        "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},\"items\":[]}\n");
  CHECK(roundTrip(empty).services.empty());
  const std::string text = kube::encodeList(everyField());
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  CHECK(lines == 4 + 3 + 2);  // one before each of 4 services and 3 slices, one before "]", the last
}

TEST_CASE("appendJsonString escapes what JSON requires and nothing else") {
  std::string out;
  kube::appendJsonString(out, "a\"b\\c\nd\x1f\xc3\xa9/");
  CHECK(out == "\"a\\\"b\\\\c\\u000ad\\u001f\xc3\xa9/\"");
}
