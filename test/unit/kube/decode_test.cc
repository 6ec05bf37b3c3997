// kube::decodeList: kubectl List / ServiceList / EndpointSliceList JSON -> ClusterModel, and the
// examples/demo-cluster.json used by `make run`, checked end to end through the Snapshot.
#include "hdnsd/kube/decode.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/dns/name.h"

namespace {

using namespace hdnsd;
using cluster::AddressType;
using cluster::Protocol;
using cluster::ServiceType;

// Wraps items into a kubectl List.
std::string list(const std::string& items) {
  return R"({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [)" +
         items + "]}";
}

const char* kSvcWeb = R"({"apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "web", "namespace": "demo", "uid": "u1", "resourceVersion": "7",
               "annotations": {"a": "b"}},
  "spec": {"clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP",
           "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}})";

// A slice with one endpoint whose fields the test splices in.
std::string slice(const std::string& endpoint, const std::string& extra = "") {
  return R"({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
    "metadata": {"name": "web-abc", "namespace": "demo",
                 "labels": {"kubernetes.io/service-name": "web"}},
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    "endpoints": [)" + endpoint + "]" + extra + "}";
}

std::string decodeError(const std::string& json) {
  auto r = kube::decodeList(json);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

std::string readDemo() {
  for (const char* p : {"examples/demo-cluster.json", "../examples/demo-cluster.json",
                        "../../examples/demo-cluster.json"}) {
    std::ifstream f(p);
    if (f) {
      std::stringstream ss;
      ss << f.rdbuf();
      return ss.str();
    }
  }
  FAIL("examples/demo-cluster.json not found (run from the repository root)");
  return {};
}

cluster::Lookup look(const cluster::Snapshot& s, const char* text, uint16_t qtype) {
  std::string wire;
  REQUIRE(dns::textToWire(text, &wire));
  dns::NameKey k;
  REQUIRE(k.assignWire(wire));
  return s.lookup(k, qtype);
}

}  // namespace

TEST_CASE("decodeList: a Service with every field we read") {
  auto r = kube::decodeList(list(R"({"apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "api", "namespace": "demo",
                 "annotations": {"service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}},
    "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20", "fd00:10:96::20"],
             "publishNotReadyAddresses": true,
             "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
                       {"name": "dns", "port": 53, "protocol": "UDP"},
                       {"name": "s", "port": 9, "protocol": "SCTP"},
                       {"port": 8443}]}})"));
  REQUIRE(r.has_value());
  REQUIRE(r->services.count("demo/api") == 1);
  const auto& s = r->services.at("demo/api");
  CHECK(s.ns == "demo");
  CHECK(s.name == "api");
  CHECK(s.type == ServiceType::kNodePort);
  CHECK_FALSE(s.headless);
  REQUIRE(s.clusterIPs.size() == 2);
  CHECK(s.clusterIPs[0].text() == "10.96.0.20");
  CHECK(s.clusterIPs[1].text() == "fd00:10:96::20");
  CHECK(s.publishNotReadyAddresses);
  CHECK(s.annotations.at("service.alpha.kubernetes.io/tolerate-unready-endpoints") == "true");
  REQUIRE(s.ports.size() == 4);
  CHECK(s.ports[0].name == "http");
  CHECK(s.ports[0].port == 80);
  CHECK(s.ports[0].protocol == Protocol::kTcp);
  CHECK(s.ports[1].protocol == Protocol::kUdp);
  CHECK(s.ports[2].protocol == Protocol::kSctp);
  CHECK(s.ports[3].name.empty());
  CHECK(s.ports[3].protocol == Protocol::kTcp);  // the API default
}

TEST_CASE("decodeList: spec.clusterIP is used when spec.clusterIPs is absent; None is headless") {
  auto r = kube::decodeList(list(R"({"kind": "Service", "apiVersion": "v1",
      "metadata": {"name": "old", "namespace": "n"}, "spec": {"clusterIP": "10.0.0.1"}},
    {"kind": "Service", "apiVersion": "v1",
      "metadata": {"name": "hl", "namespace": "n"}, "spec": {"clusterIP": "None"}},
    {"kind": "Service", "apiVersion": "v1",
      "metadata": {"name": "ext", "namespace": "n"},
      "spec": {"type": "ExternalName", "externalName": "www.example.com"}})"));
  REQUIRE(r.has_value());
  REQUIRE(r->services.at("n/old").clusterIPs.size() == 1);
  CHECK(r->services.at("n/old").clusterIPs[0].text() == "10.0.0.1");
  CHECK(r->services.at("n/hl").headless);
  CHECK(r->services.at("n/hl").clusterIPs.empty());
  CHECK(r->services.at("n/ext").type == ServiceType::kExternalName);
  CHECK(r->services.at("n/ext").externalName == "www.example.com");
}

TEST_CASE("decodeList: an EndpointSlice with every field we read") {
  auto r = kube::decodeList(list(slice(
      R"({"addresses": ["10.244.1.10"], "conditions": {"ready": false, "serving": true, "terminating": true},
          "hostname": "web-0", "nodeName": "kind-worker", "zone": "zone-a",
          "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "demo", "uid": "p1"}},
         {"addresses": ["10.244.1.11"]})")));
  REQUIRE(r.has_value());
  REQUIRE(r->slices().count("demo/web-abc") == 1);
  const auto& sl = r->slices().at("demo/web-abc");
  CHECK(sl.serviceName == "web");
  CHECK(sl.addressType == AddressType::kIPv4);
  REQUIRE(sl.endpoints.size() == 2);
  const auto& e = sl.endpoints[0];
  REQUIRE(e.addresses.size() == 1);
  CHECK(e.addresses[0].text() == "10.244.1.10");
  CHECK(e.ready == std::optional<bool>(false));
  CHECK(e.serving == std::optional<bool>(true));
  CHECK(e.terminating == std::optional<bool>(true));
  CHECK(e.hostname == "web-0");
  CHECK(e.nodeName == "kind-worker");
  CHECK(e.zone == "zone-a");
  CHECK(e.podName == "web-0");
  // Absent conditions stay absent (the snapshot reads absent ready as ready).
  CHECK_FALSE(sl.endpoints[1].ready.has_value());
  CHECK(sl.endpoints[1].hostname.empty());
  REQUIRE(sl.ports.size() == 1);
  CHECK(sl.ports[0].name == "http");
  CHECK(sl.ports[0].port == 8080);
}

TEST_CASE("decodeList: missing and null optional fields are tolerated") {
  auto r = kube::decodeList(list(R"({"kind": "Service", "apiVersion": "v1",
      "metadata": {"name": "bare", "namespace": "n", "annotations": null}},
    {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "nons"}, "spec": {"ports": null}},
    {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
      "metadata": {"name": "s1", "namespace": "n", "labels": {"kubernetes.io/service-name": "bare"}},
      "endpoints": null, "ports": [{"name": "all", "port": null}]},
    {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1", "addressType": "IPv4",
      "metadata": {"name": "s2", "namespace": "n", "labels": {"kubernetes.io/service-name": "bare"}},
      "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {}, "targetRef": {"kind": "Node", "name": "x"}}]})"));
  REQUIRE(r.has_value());
  CHECK(r->services.at("n/bare").ports.empty());
  CHECK(r->services.at("n/bare").type == ServiceType::kClusterIP);
  CHECK(r->services.count("default/nons") == 1);  // no namespace: default
  CHECK(r->slices().at("n/s1").endpoints.empty());
  CHECK(r->slices().at("n/s1").ports.empty());  // a nil port names no SRV target port
  CHECK(r->slices().at("n/s2").endpoints.at(0).podName.empty());  // targetRef to a non-Pod
  CHECK_FALSE(r->slices().at("n/s2").endpoints.at(0).ready.has_value());
}

TEST_CASE("decodeList: ServiceList and EndpointSliceList items carry no kind") {
  auto svcs = kube::decodeList(R"({"apiVersion": "v1", "kind": "ServiceList", "items": [
      {"metadata": {"name": "a", "namespace": "n"}, "spec": {"clusterIP": "10.0.0.1"}}]})");
  REQUIRE(svcs.has_value());
  CHECK(svcs->services.count("n/a") == 1);
  auto slices = kube::decodeList(R"({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList",
    "items": [{"metadata": {"name": "a-1", "namespace": "n", "labels": {"kubernetes.io/service-name": "a"}},
               "addressType": "IPv6", "endpoints": [{"addresses": ["fd00::1"]}]}]})");
  REQUIRE(slices.has_value());
  CHECK(slices->slices().at("n/a-1").addressType == AddressType::kIPv6);
  CHECK(slices->slices().at("n/a-1").endpoints.at(0).addresses.at(0).family == 6);
  auto empty = kube::decodeList(R"({"apiVersion": "v1", "kind": "List", "items": []})");
  REQUIRE(empty.has_value());
  CHECK(empty->services.empty());
}

TEST_CASE("decodeList: other kinds and unlabeled slices are skipped and counted") {
  kube::DecodeStats st;
  auto r = kube::decodeList(
      list(R"({"kind": "Endpoints", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "demo"},
               "subsets": "not even checked"},
              {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "demo"}},
              {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
               "metadata": {"name": "mine", "namespace": "demo", "labels": {"app": "x"}},
               "endpoints": [{"addresses": ["10.0.0.1"]}]},
              )" + std::string(kSvcWeb)),
      &st);
  REQUIRE(r.has_value());
  CHECK(st.skippedKinds == 2);
  CHECK(st.skippedUnlabeled == 1);
  CHECK(st.services == 1);
  CHECK(st.slices == 0);
  CHECK(r->slices().empty());
}

TEST_CASE("decodeList: FQDN slices keep no addresses") {
  auto r = kube::decodeList(list(R"({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
      "addressType": "FQDN",
      "metadata": {"name": "f", "namespace": "n", "labels": {"kubernetes.io/service-name": "s"}},
      "endpoints": [{"addresses": ["db.example.com"]}]})"));
  REQUIRE(r.has_value());
  CHECK(r->slices().at("n/f").addressType == AddressType::kFQDN);
  CHECK(r->slices().at("n/f").endpoints.at(0).addresses.empty());
}

TEST_CASE("decodeList: errors name the item and the field") {
  // The message from the brief, exactly.
  CHECK(decodeError(list(std::string(kSvcWeb) + "," + slice(R"({"addresses": "10.0.0.1"})"))) ==
        "items[1] (EndpointSlice demo/web-abc): endpoints[0].addresses: expected an array");
  CHECK(decodeError(list(slice(R"({"addresses": ["10.0.0.1"]}, {"addresses": [7]})"))) ==
        "items[0] (EndpointSlice demo/web-abc): endpoints[1].addresses[0]: expected a string");
  CHECK(decodeError(list(slice(R"({"addresses": ["10.0.0.300"]})"))) ==
        "items[0] (EndpointSlice demo/web-abc): endpoints[0].addresses[0]: invalid IP address \"10.0.0.300\"");
  CHECK(decodeError(list(slice(R"({"addresses": ["fd00::1"]})"))) ==
        "items[0] (EndpointSlice demo/web-abc): endpoints[0].addresses[0]: address family does not match "
        "addressType IPv4");
  CHECK(decodeError(list(slice(R"({"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}})"))) ==
        "items[0] (EndpointSlice demo/web-abc): endpoints[0].conditions.ready: expected a boolean");
  CHECK(decodeError(list(slice(R"({"addresses": ["10.0.0.1"], "hostname": 5})"))) ==
        "items[0] (EndpointSlice demo/web-abc): endpoints[0].hostname: expected a string");
  CHECK(decodeError(list(slice(R"("x")"))) ==
        "items[0] (EndpointSlice demo/web-abc): endpoints[0]: expected an object");
  CHECK(decodeError(list(slice("", R"(, "addressType": "IPv5")"))) ==
        "items[0] (EndpointSlice demo/web-abc): addressType: unknown address type \"IPv5\"");
}

TEST_CASE("decodeList: Service field errors") {
  auto svc = [](const std::string& spec) {
    return list(R"({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s", "namespace": "n"},
                    "spec": )" + spec + "}");
  };
  CHECK(decodeError(svc(R"({"ports": [{"name": "http", "port": "80"}]})")) ==
        "items[0] (Service n/s): spec.ports[0].port: expected an integer");
  CHECK(decodeError(svc(R"({"ports": [{"name": "http", "port": 70000}]})")) ==
        "items[0] (Service n/s): spec.ports[0].port: out of range 1..65535");
  CHECK(decodeError(svc(R"({"ports": [{"name": "http", "port": 80.5}]})")) ==
        "items[0] (Service n/s): spec.ports[0].port: expected an integer");
  CHECK(decodeError(svc(R"({"ports": [{"name": "http"}]})")) ==
        "items[0] (Service n/s): spec.ports[0].port: required");
  CHECK(decodeError(svc(R"({"ports": [{"port": 80, "protocol": "QUIC"}]})")) ==
        "items[0] (Service n/s): spec.ports[0].protocol: unknown protocol \"QUIC\"");
  CHECK(decodeError(svc(R"({"ports": {"port": 80}})")) ==
        "items[0] (Service n/s): spec.ports: expected an array");
  CHECK(decodeError(svc(R"({"clusterIPs": ["10.0.0.1", "nope"]})")) ==
        "items[0] (Service n/s): spec.clusterIPs[1]: invalid IP address \"nope\"");
  CHECK(decodeError(svc(R"({"clusterIP": 10})")) ==
        "items[0] (Service n/s): spec.clusterIP: expected a string");
  CHECK(decodeError(svc(R"({"type": "Magic"})")) ==
        "items[0] (Service n/s): spec.type: unknown service type \"Magic\"");
  CHECK(decodeError(svc(R"({"publishNotReadyAddresses": "true"})")) ==
        "items[0] (Service n/s): spec.publishNotReadyAddresses: expected a boolean");
  CHECK(decodeError(svc(R"([])")) == "items[0] (Service n/s): spec: expected an object");
  CHECK(decodeError(list(R"({"kind": "Service", "apiVersion": "v1",
      "metadata": {"name": "s", "namespace": "n", "annotations": {"x": 1}}})")) ==
        "items[0] (Service n/s): metadata.annotations.x: expected a string");
  CHECK(decodeError(list(R"({"kind": "Service", "apiVersion": "v1", "metadata": {"namespace": "n"}})")) ==
        "items[0] (Service n/): metadata.name: required");
  CHECK(decodeError(list(R"({"kind": "Service", "apiVersion": "v1"})")) ==
        "items[0] (Service): metadata.name: required");
}

TEST_CASE("decodeList: document-level errors") {
  CHECK(decodeError("{").rfind("invalid JSON: ", 0) == 0);
  CHECK(decodeError("[]") == "top level: expected an object");
  CHECK(decodeError(R"({"kind": "PodList", "items": []})") ==
        "top level: kind: expected List, ServiceList or EndpointSliceList, got \"PodList\"");
  CHECK(decodeError(R"({"kind": "List", "items": {}})") == "top level: items: expected an array");
  CHECK(decodeError(list("3")) == "items[0]: expected an object");
}

// ---- the demo cluster, end to end ---------------------------------------------------------------

TEST_CASE("examples/demo-cluster.json decodes and serves what the README promises") {
  kube::DecodeStats st;
  auto r = kube::decodeList(readDemo(), &st);
  REQUIRE_MESSAGE(r.has_value(), (r.has_value() ? "" : r.error()));
  CHECK(st.services == 6);
  CHECK(st.slices == 7);
  CHECK(st.skippedKinds == 0);
  const auto& m = *r;
  CHECK(m.services.at("demo/web").headless);
  CHECK(m.services.at("demo/dual").clusterIPs.size() == 2);
  CHECK(m.services.at("demo/search").type == ServiceType::kExternalName);

  cluster::ViewOptions o;
  auto s = cluster::Snapshot::build(m, o);
  using K = cluster::Lookup::Kind;
  CHECK(s->skippedObjects() == 0);

  // web: 3 ready (web-3 is not), merged from two slices with web-1 in both.
  auto web = look(*s, "web.demo.svc.cluster.local", dns::kTypeA);
  REQUIRE(web.kind == K::kAnswer);
  CHECK(web.answer->rdatas.size() == 3);
  CHECK(look(*s, "web-2.web.demo.svc.cluster.local", dns::kTypeA).kind == K::kAnswer);
  CHECK(look(*s, "web-3.web.demo.svc.cluster.local", dns::kTypeA).kind == K::kNxDomain);
  auto srv = look(*s, "_http._tcp.web.demo.svc.cluster.local", dns::kTypeSRV);
  REQUIRE(srv.kind == K::kAnswer);
  CHECK(srv.answer->rdatas.size() == 3);
  CHECK(srv.additional.size() == 3);

  auto dual = look(*s, "dual.demo.svc.cluster.local", dns::kTypeAAAA);
  REQUIRE(dual.kind == K::kAnswer);
  CHECK(dual.answer->rdatas.size() == 1);
  CHECK(look(*s, "_http._tcp.api.demo.svc.cluster.local", dns::kTypeSRV).kind == K::kAnswer);
  CHECK(look(*s, "_grpc._tcp.api.demo.svc.cluster.local", dns::kTypeSRV).kind == K::kAnswer);
  auto search = look(*s, "search.demo.svc.cluster.local", dns::kTypeA);
  REQUIRE(search.kind == K::kAnswer);
  CHECK(search.answer->type == dns::kTypeCNAME);
  CHECK(look(*s, "10-244-2-5.db.demo.svc.cluster.local", dns::kTypeA).kind == K::kAnswer);
  CHECK(look(*s, "_postgres._tcp.db.demo.svc.cluster.local", dns::kTypeSRV).kind == K::kAnswer);
  CHECK(look(*s, "10.0.96.10.in-addr.arpa", dns::kTypePTR).kind == K::kAnswer);
  CHECK(look(*s, "kubernetes.default.svc.cluster.local", dns::kTypeA).kind == K::kAnswer);
}
