// Spreading data compiled into the view (annotations, weights, tiers, SRV priority/weight,
// terminating fallback, learned zone) and applied by the Responder to real answers.
#include <arpa/inet.h>
#include <doctest/doctest.h>

// Test tables list only the fields that matter to each case.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/dns/name.h"
#include "hdnsd/policy/annotations.h"
#include "hdnsd/query/responder.h"
#include "hdnsd/upstream/forwarder.h"

namespace {

using namespace hdnsd;

struct Ep {
  std::string ip, node, zone, pod;
  std::optional<bool> ready = true, serving, terminating;
  std::vector<std::string> forZones = {};
};

cluster::ClusterModel model(const std::vector<Ep>& eps, std::map<std::string, std::string> annotations = {}) {
  cluster::ClusterModel m;
  cluster::Service s;
  s.ns = "demo";
  s.name = "web";
  s.headless = true;
  s.annotations = std::move(annotations);
  m.services["demo/web"] = s;
  cluster::EndpointSlice sl;
  sl.ns = "demo";
  sl.name = "web-1";
  sl.serviceName = "web";
  sl.ports.push_back({"http", 8080, cluster::Protocol::kTcp});
  for (const auto& e : eps) {
    cluster::Endpoint ep;
    ep.addresses.push_back(*cluster::IpAddr::parse(e.ip));
    ep.nodeName = e.node;
    ep.zone = e.zone;
    ep.podName = e.pod;
    ep.ready = e.ready;
    ep.serving = e.serving;
    ep.terminating = e.terminating;
    ep.forZones = e.forZones;
    sl.endpoints.push_back(ep);
  }
  m.upsertSlice("demo/web-1", sl);
  return m;
}

const cluster::RrSet* lookup(const cluster::Snapshot& s, const std::string& name, uint16_t type) {
  dns::NameKey key;
  std::string wire;
  REQUIRE(dns::textToWire(name, &wire));
  REQUIRE(key.assignWire(wire));
  auto r = s.lookup(key, type);
  return r.kind == cluster::Lookup::Kind::kAnswer ? r.answer : nullptr;
}

std::vector<uint8_t> makeQuery(const std::string& name, uint16_t qtype) {
  std::vector<uint8_t> q = {0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  std::string wire;
  dns::textToWire(name, &wire);
  q.insert(q.end(), wire.begin(), wire.end());
  q.insert(q.end(), {0, uint8_t(qtype), 0, 1});
  return q;
}

// The A records' addresses in answer order (answers written by our writer: owner = pointer).
std::vector<std::string> answerAddresses(const uint8_t* m, size_t len) {
  std::vector<std::string> out;
  size_t p = 12;
  while (p < len && m[p] != 0) p += 1 + m[p];
  p += 5;
  const int an = m[6] << 8 | m[7];
  for (int i = 0; i < an && p + 12 <= len; ++i) {
    const uint16_t type = uint16_t(m[p + 2] << 8 | m[p + 3]);
    const uint16_t rdlen = uint16_t(m[p + 10] << 8 | m[p + 11]);
    if (type == 1) {
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, m + p + 12, buf, sizeof buf);
      out.push_back(buf);
    }
    p += 12 + rdlen;
  }
  return out;
}

}  // namespace

TEST_CASE("annotations: policy, max-answers and weights parse; bad values are reported, not fatal") {
  auto s = policy::parseServiceAnnotations({{"hdnsd.io/policy", "weighted"},
                                           {"hdnsd.io/max-answers", "8"},
                                           {"hdnsd.io/weights", R"({"pod/web-0": 3, "10.0.0.5": 2, "zone/a": 5, "default": 0})"}});
  CHECK(s.errors.empty());
  CHECK(s.kind == policy::Kind::kWeighted);
  CHECK(s.maxAnswers == 8);
  CHECK(s.weightOf({"10.0.0.5", "web-0", "", "", "a"}) == 2);   // IP beats pod and zone
  CHECK(s.weightOf({"10.0.0.6", "web-0", "", "", "a"}) == 3);   // pod beats zone
  CHECK(s.weightOf({"10.0.0.7", "web-9", "", "", "a"}) == 5);   // zone-level default
  CHECK(s.weightOf({"10.0.0.7", "web-9", "", "", "b"}) == 0);   // service default
  auto bad = policy::parseServiceAnnotations({{"hdnsd.io/policy", "fastest"},
                                             {"hdnsd.io/max-answers", "-1"},
                                             {"hdnsd.io/weights", R"({"10.0.0.5": -2})"}});
  CHECK(bad.errors.size() == 3);
  CHECK(!bad.kind);
  CHECK(!bad.hasWeights);
  CHECK(bad.weightOf({"10.0.0.5", "", "", "", ""}) == 1);
  auto v6 = policy::parseServiceAnnotations({{"hdnsd.io/weights", R"({"FD00:0::1": 7})"}});
  CHECK(v6.weightOf({"fd00::1", "", "", "", ""}) == 7);  // canonical IPv6 text
}

TEST_CASE("compile: headless sets are managed with weights, tiers and ids; SRV carries weight and tier") {
  cluster::ViewOptions o;
  o.nodeName = "node-a";
  o.policy = policy::Kind::kTopology;
  auto snap = cluster::Snapshot::build(
      model({{"10.0.0.1", "node-a", "z1", "web-0"}, {"10.0.0.2", "node-b", "z1", "web-1"},
             {"10.0.0.3", "node-c", "z2", "web-2"}},
            {{"hdnsd.io/weights", R"({"pod/web-0": 3, "zone/z2": 7})"}}),
      o);
  CHECK(snap->nodeZone() == "z1");  // learned: the zone of endpoints on node-a
  const auto* a = lookup(*snap, "web.demo.svc.cluster.local", dns::kTypeA);
  REQUIRE(a != nullptr);
  CHECK(a->spread().managed);
  CHECK(a->spread().tiers == std::vector<uint8_t>{0, 1, 2});
  CHECK(a->spread().invWeights == std::vector<float>{1.0f / 3, 1.0f, 1.0f / 7});
  CHECK(a->spread().ids.size() == 3);
  const auto* srv = lookup(*snap, "_http._tcp.web.demo.svc.cluster.local", dns::kTypeSRV);
  REQUIRE(srv != nullptr);
  REQUIRE(srv->rdatas.size() == 3);
  std::set<std::pair<int, int>> prioWeight;
  for (const auto& r : srv->rdatas) {
    const auto* b = reinterpret_cast<const uint8_t*>(r.bytes.data());
    prioWeight.insert({b[0] << 8 | b[1], b[2] << 8 | b[3]});
  }
  CHECK(prioWeight == std::set<std::pair<int, int>>{{0, 3}, {1, 1}, {2, 7}});
  CHECK(srv->spread().extras.size() == 3);
  // ClusterIP-style sets (SOA here) stay unmanaged.
  CHECK(!snap->soa().spread().managed);
}

TEST_CASE("compile: without weights or topology, SRV keeps priority 0 and even weights") {
  auto snap = cluster::Snapshot::build(model({{"10.0.0.1"}, {"10.0.0.2"}}), cluster::ViewOptions{});
  const auto* srv = lookup(*snap, "_http._tcp.web.demo.svc.cluster.local", dns::kTypeSRV);
  REQUIRE(srv != nullptr);
  for (const auto& r : srv->rdatas) {
    CHECK(r.bytes[0] == 0);
    CHECK(r.bytes[1] == 0);
    CHECK(uint8_t(r.bytes[3]) == 50);
  }
  const auto* a = lookup(*snap, "web.demo.svc.cluster.local", dns::kTypeA);
  CHECK(a->spread().invWeights.empty());
  CHECK(a->spread().tiers.empty());
}

TEST_CASE("compile: hints.forZones decide the zone tier; a not-ready local endpoint is not preferred") {
  cluster::ViewOptions o;
  o.nodeName = "node-a";
  o.nodeZone = "z1";
  auto snap = cluster::Snapshot::build(
      model({{"10.0.0.1", "node-a", "z1", "", false},                    // ours, not ready
             {"10.0.0.2", "node-b", "z2", "", true, {}, {}, {"z1"}},     // hinted for z1
             {"10.0.0.3", "node-c", "z1", "", true, {}, {}, {"z3"}}}),   // in z1, lent to z3
      o);
  const auto* a = lookup(*snap, "web.demo.svc.cluster.local", dns::kTypeA);
  REQUIRE(a != nullptr);
  REQUIRE(a->rdatas.size() == 2);
  CHECK(a->spread().tiers == std::vector<uint8_t>{policy::kTierZone, policy::kTierOther});
}

TEST_CASE("compile: --terminating-fallback serves serving+terminating endpoints when none is ready") {
  auto m = model({{"10.0.0.1", "", "", "", false, true, true}, {"10.0.0.2", "", "", "", false, false, true}});
  auto off = cluster::Snapshot::build(m, cluster::ViewOptions{});
  CHECK(lookup(*off, "web.demo.svc.cluster.local", dns::kTypeA) == nullptr);  // NXDOMAIN (spec)
  cluster::ViewOptions o;
  o.terminatingFallback = true;
  auto on = cluster::Snapshot::build(m, o);
  const auto* a = lookup(*on, "web.demo.svc.cluster.local", dns::kTypeA);
  REQUIRE(a != nullptr);
  CHECK(a->rdatas.size() == 1);  // the serving one only
  // With one ready endpoint, the terminating ones are not added.
  auto mixed = model({{"10.0.0.1", "", "", "", false, true, true}, {"10.0.0.3"}});
  CHECK(lookup(*cluster::Snapshot::build(mixed, o), "web.demo.svc.cluster.local", dns::kTypeA)->rdatas.size() == 1);
}

TEST_CASE("compile: rebuildService keeps spreading options and learns the zone") {
  cluster::ViewOptions o;
  o.nodeName = "node-a";
  auto m = model({{"10.0.0.1", "node-b", "z2"}});
  auto s1 = cluster::Snapshot::build(m, o);
  CHECK(s1->nodeZone().empty());
  m = model({{"10.0.0.1", "node-b", "z2"}, {"10.0.0.2", "node-a", "z1"}}, {{"hdnsd.io/policy", "random"}});
  auto s2 = cluster::Snapshot::rebuildService(*s1, m, "demo/web");
  CHECK(s2->nodeZone() == "z1");
  const auto* a = lookup(*s2, "web.demo.svc.cluster.local", dns::kTypeA);
  REQUIRE(a != nullptr);
  CHECK(a->spread().kind == policy::Kind::kRandom);
  CHECK(a->spread().tiers == std::vector<uint8_t>{policy::kTierOther, policy::kTierNode});
}

TEST_CASE("responder: answers follow the policy; --max-answers caps; the snapshot is not mutated") {
  query::QueryStats stats;
  query::ResponderOptions ro;
  ro.spread = {policy::Kind::kRoundRobin, 0, 77};
  query::Responder r(ro, stats);
  std::vector<Ep> eps;
  for (int i = 1; i <= 5; ++i) eps.push_back({"10.0.0." + std::to_string(i)});
  r.setSnapshot(cluster::Snapshot::build(model(eps), cluster::ViewOptions{}));
  const auto* set = lookup(*r.snapshot(), "web.demo.svc.cluster.local", dns::kTypeA);
  std::vector<std::string> stored;  // copies: the records are views into the snapshot
  for (const auto& rd : set->rdatas) stored.emplace_back(rd.bytes);
  auto q = makeQuery("web.demo.svc.cluster.local", dns::kTypeA);
  std::array<uint8_t, 4096> out;
  std::map<std::string, int> first;
  std::string prev;
  for (int i = 0; i < 50; ++i) {
    size_t n = r.respond(q, out, query::Transport::kUdp);
    auto addrs = answerAddresses(out.data(), n);
    REQUIRE(addrs.size() == 5);
    CHECK(std::set<std::string>(addrs.begin(), addrs.end()).size() == 5);
    if (!prev.empty()) CHECK(addrs[0] != prev);
    prev = addrs[0];
    ++first[addrs[0]];
  }
  CHECK(first.size() == 5);
  for (const auto& [ip, c] : first) CHECK(c == 10);
  CHECK(set->rdatas.size() == stored.size());
  for (size_t i = 0; i < stored.size(); ++i) CHECK(set->rdatas[i].bytes == stored[i]);

  ro.spread.maxAnswers = 2;
  r.setOptions(ro);
  size_t n = r.respond(q, out, query::Transport::kUdp);
  CHECK(answerAddresses(out.data(), n).size() == 2);
}

TEST_CASE("responder: consistent gives each client address its own stable first record") {
  query::QueryStats stats;
  query::ResponderOptions ro;
  ro.spread = {policy::Kind::kConsistent, 0, 1};
  query::Responder r(ro, stats);
  std::vector<Ep> eps;
  for (int i = 1; i <= 4; ++i) eps.push_back({"10.0.0." + std::to_string(i)});
  r.setSnapshot(cluster::Snapshot::build(model(eps), cluster::ViewOptions{}));
  auto q = makeQuery("web.demo.svc.cluster.local", dns::kTypeA);
  std::array<uint8_t, 4096> out;
  std::set<std::string> firsts;
  for (int c = 1; c <= 40; ++c) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x0A630000u + uint32_t(c));
    const upstream::Client client{nullptr, reinterpret_cast<const sockaddr*>(&sin), query::Transport::kUdp};
    const auto a = answerAddresses(out.data(), r.respond(q, out, query::Transport::kUdp, &client));
    for (int again = 0; again < 3; ++again)
      CHECK(answerAddresses(out.data(), r.respond(q, out, query::Transport::kUdp, &client)) == a);
    firsts.insert(a.at(0));
  }
  CHECK(firsts.size() == 4);  // 40 clients spread over the 4 endpoints
}

TEST_CASE("responder: an SRV answer cut by max-answers carries only its targets' addresses") {
  query::QueryStats stats;
  query::ResponderOptions ro;
  ro.spread = {policy::Kind::kRoundRobin, 2, 3};
  query::Responder r(ro, stats);
  std::vector<Ep> eps;
  for (int i = 1; i <= 6; ++i) eps.push_back({"10.0.0." + std::to_string(i)});
  r.setSnapshot(cluster::Snapshot::build(model(eps), cluster::ViewOptions{}));
  auto q = makeQuery("_http._tcp.web.demo.svc.cluster.local", dns::kTypeSRV);
  std::array<uint8_t, 4096> out;
  size_t n = r.respond(q, out, query::Transport::kUdp);
  REQUIRE(n > 12);
  CHECK((out[6] << 8 | out[7]) == 2);    // ANCOUNT
  CHECK((out[10] << 8 | out[11]) == 2);  // ARCOUNT: the two targets' A records
}
