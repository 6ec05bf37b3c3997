// The cluster view: one TEST_CASE per rule of the Kubernetes DNS specification (schema 1.1.0)
// and per lookup outcome. Expected RDATA is decoded here by hand (or written as annotated
// bytes), never produced by the compiler under test.
#include "hdnsd/cluster/snapshot.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "hdnsd/dns/name.h"
#include "hdnsd/dns/wire.h"
#include "../../support/alloc_counter.h"

namespace {

using namespace hdnsd;
using namespace hdnsd::cluster;
using Kind = Lookup::Kind;

// ---- model builders --------------------------------------------------------------------------

IpAddr ip(const char* t) {
  auto a = IpAddr::parse(t);
  REQUIRE(a.has_value());
  return *a;
}

Port port(const char* name, uint16_t number, Protocol p = Protocol::kTcp) {
  return Port{name, number, p};
}

Service clusterIp(const char* ns, const char* name, std::vector<const char*> ips,
                  std::vector<Port> ports = {}) {
  Service s;
  s.ns = ns;
  s.name = name;
  for (auto* t : ips) s.clusterIPs.push_back(ip(t));
  s.ports = std::move(ports);
  return s;
}

Service headless(const char* ns, const char* name) {
  Service s;
  s.ns = ns;
  s.name = name;
  s.headless = true;
  return s;
}

Service externalName(const char* ns, const char* name, const char* target) {
  Service s;
  s.ns = ns;
  s.name = name;
  s.type = ServiceType::kExternalName;
  s.externalName = target;
  return s;
}

Endpoint ep(std::vector<const char*> ips, const char* hostname = "",
            std::optional<bool> ready = true) {
  Endpoint e;
  for (auto* t : ips) e.addresses.push_back(ip(t));
  e.hostname = hostname;
  e.ready = ready;
  return e;
}

EndpointSlice slice(const char* ns, const char* name, const char* svc, std::vector<Endpoint> eps,
                    std::vector<Port> ports = {}, AddressType at = AddressType::kIPv4) {
  EndpointSlice s;
  s.ns = ns;
  s.name = name;
  s.serviceName = svc;
  s.addressType = at;
  s.endpoints = std::move(eps);
  s.ports = std::move(ports);
  return s;
}

void add(ClusterModel& m, Service s) { m.services[objectKey(s.ns, s.name)] = std::move(s); }
void add(ClusterModel& m, EndpointSlice s) {
  std::string key = objectKey(s.ns, s.name);  // before the move below
  m.upsertSlice(key, std::move(s));
}

std::shared_ptr<const Snapshot> build(const ClusterModel& m, uint32_t ttl = 5) {
  ViewOptions o;
  o.ttl_s = ttl;
  o.serial = 42;
  return Snapshot::build(m, o);
}

// ---- lookup helpers ---------------------------------------------------------------------------

Lookup look(const Snapshot& s, const char* text, uint16_t qtype) {
  std::string wire;
  REQUIRE(dns::textToWire(text, &wire));
  dns::NameKey k;
  REQUIRE(k.assignWire(wire));
  return s.lookup(k, qtype);
}

// Addresses of an A or AAAA RrSet as text, in stored order.
std::vector<std::string> addrs(const RrSet* rr) {
  std::vector<std::string> out;
  REQUIRE(rr != nullptr);
  for (const auto& r : rr->rdatas) {
    IpAddr a;
    REQUIRE((r.bytes.size() == 4 || r.bytes.size() == 16));
    a.family = r.bytes.size() == 4 ? 4 : 6;
    std::copy(r.bytes.begin(), r.bytes.end(), a.bytes);
    CHECK(r.kind == dns::RdataKind::kOpaque);
    out.push_back(a.text());
  }
  return out;
}

std::vector<std::string> answerAddrs(const Snapshot& s, const char* name, uint16_t qtype) {
  Lookup l = look(s, name, qtype);
  REQUIRE(l.kind == Kind::kAnswer);
  REQUIRE(l.answer->type == qtype);
  return addrs(l.answer);
}

// SRV RDATA (RFC 2782) decoded by hand: "priority weight port target".
std::string srvText(const Rdata& r) {
  const auto* b = reinterpret_cast<const uint8_t*>(r.bytes.data());
  REQUIRE(r.bytes.size() > 6);
  CHECK(r.kind == dns::RdataKind::kOpaque);  // RFC 2782: the target is never compressed
  return std::to_string(dns::getU16(b)) + " " + std::to_string(dns::getU16(b + 2)) + " " +
         std::to_string(dns::getU16(b + 4)) + " " + dns::wireToText(r.bytes.substr(6));
}

std::vector<std::string> answerSrv(const Snapshot& s, const char* name) {
  Lookup l = look(s, name, dns::kTypeSRV);
  REQUIRE(l.kind == Kind::kAnswer);
  REQUIRE(l.answer->type == dns::kTypeSRV);
  std::vector<std::string> out;
  for (const auto& r : l.answer->rdatas) out.push_back(srvText(r));
  return out;
}

// The names in a PTR/CNAME RrSet, as text.
std::vector<std::string> answerNames(const Snapshot& s, const char* name, uint16_t qtype) {
  Lookup l = look(s, name, qtype);
  REQUIRE(l.kind == Kind::kAnswer);
  std::vector<std::string> out;
  for (const auto& r : l.answer->rdatas) {
    CHECK(r.kind == dns::RdataKind::kName);
    out.push_back(dns::wireToText(r.bytes));
  }
  return out;
}

// Additional records as "owner TYPE addr".
std::vector<std::string> extras(const Lookup& l) {
  std::vector<std::string> out;
  for (const auto& e : l.additional) {
    REQUIRE(e.rrset != nullptr);
    for (const auto& a : addrs(e.rrset))
      out.push_back(dns::wireToText(e.ownerWire) + (e.rrset->type == dns::kTypeA ? " A " : " AAAA ") + a);
  }
  return out;
}

using V = std::vector<std::string>;

// A string literal's bytes, embedded NULs included (minus the terminating one).
template <size_t N>
std::string bytes(const char (&lit)[N]) {
  return std::string(lit, N - 1);
}

// The demo-like model most tests use.
ClusterModel sampleModel() {
  ClusterModel m;
  add(m, clusterIp("demo", "api", {"10.96.0.10"},
                   {port("http", 80), port("grpc", 9090), port("", 8443), port("dns", 53, Protocol::kUdp)}));
  add(m, clusterIp("demo", "dual", {"10.96.0.20", "fd00:10:96::20"}, {port("http", 80)}));
  add(m, externalName("demo", "search", "www.Example.com"));
  add(m, headless("demo", "web"));
  add(m, slice("demo", "web-abc", "web",
               {ep({"10.244.1.10"}, "web-0"), ep({"10.244.1.11"}, "web-1"),
                ep({"10.244.1.13"}, "web-3", false)},
               {port("http", 80)}));
  add(m, slice("demo", "web-def", "web",
               {ep({"10.244.1.11"}, "web-1"), ep({"10.244.1.12"}, "web-2")}, {port("http", 80)}));
  add(m, headless("demo", "db"));
  add(m, slice("demo", "db-xyz", "db", {ep({"10.244.2.6"}), ep({"10.244.2.5"})},
               {port("postgres", 5432)}));
  return m;
}

}  // namespace

// ---- 2.2 schema version -------------------------------------------------------------------------

TEST_CASE("dns-version.<zone> TXT holds the schema version as one character-string") {
  auto s = build(sampleModel());
  Lookup l = look(*s, "dns-version.cluster.local", dns::kTypeTXT);
  REQUIRE(l.kind == Kind::kAnswer);
  REQUIRE(l.answer->type == dns::kTypeTXT);
  REQUIRE(l.answer->rdatas.size() == 1);
  CHECK(l.answer->rdatas[0].bytes == bytes("\x05" "1.1.0"));  // len 5, "1.1.0" (RFC 1035 3.3.14)
  CHECK(l.answer->rdatas[0].kind == dns::RdataKind::kOpaque);
  CHECK(l.additional.empty());
  CHECK(look(*s, "dns-version.cluster.local", dns::kTypeA).kind == Kind::kNoData);
  CHECK(look(*s, "x.dns-version.cluster.local", dns::kTypeTXT).kind == Kind::kNxDomain);
}

// ---- SOA and the apex ------------------------------------------------------------------------

TEST_CASE("the apex answers SOA; its RDATA has the documented fields") {
  auto s = build(sampleModel(), 7);
  Lookup l = look(*s, "Cluster.Local", dns::kTypeSOA);
  REQUIRE(l.kind == Kind::kAnswer);
  REQUIRE(l.answer == &s->soa());
  REQUIRE(l.answer->type == dns::kTypeSOA);
  REQUIRE(l.answer->rdatas.size() == 1);
  const std::string expected = bytes(
      "\x02" "ns" "\x03" "dns" "\x07" "cluster" "\x05" "local" "\x00"          // MNAME
      "\x0a" "hostmaster" "\x07" "cluster" "\x05" "local" "\x00"              // RNAME
      "\x00\x00\x00\x2a"                                                      // SERIAL 42
      "\x00\x00\x1c\x20"                                                      // REFRESH 7200
      "\x00\x00\x07\x08"                                                      // RETRY 1800
      "\x00\x01\x51\x80"                                                      // EXPIRE 86400
      "\x00\x00\x00\x07");                                                    // MINIMUM = ttl 7
  CHECK(l.answer->rdatas[0].bytes == expected);
  CHECK(l.answer->rdatas[0].kind == dns::RdataKind::kSoa);
  CHECK(s->zoneWire() == bytes("\x07" "cluster" "\x05" "local" "\x00"));
  CHECK(s->ttl() == 7);
  CHECK(s->serial() == 42);
  // NS at the apex: NoData (documented in snapshot.h), and so is A.
  CHECK(look(*s, "cluster.local", dns::kTypeNS).kind == Kind::kNoData);
  CHECK(look(*s, "cluster.local", dns::kTypeA).kind == Kind::kNoData);
  CHECK(look(*s, "cluster.local", dns::kTypeANY).kind == Kind::kAnswer);
}

TEST_CASE("SOA serial: from the clock when not pinned, increasing between builds") {
  ClusterModel m;
  auto a = Snapshot::build(m, ViewOptions{});
  auto b = Snapshot::build(m, ViewOptions{});
  CHECK(a->serial() > 1700000000u);  // seconds since the epoch (2023-11 onwards)
  CHECK(b->serial() > a->serial());
}

TEST_CASE("another zone name is honoured everywhere") {
  ViewOptions o;
  o.zone = "Kube.Example.";
  auto s = Snapshot::build(sampleModel(), o);
  CHECK(answerAddrs(*s, "api.demo.svc.kube.example", dns::kTypeA) == V{"10.96.0.10"});
  CHECK(look(*s, "api.demo.svc.cluster.local", dns::kTypeA).kind == Kind::kNotInZone);
  CHECK(look(*s, "kube.example", dns::kTypeSOA).kind == Kind::kAnswer);
}

// ---- 2.3 ClusterIP -----------------------------------------------------------------------------

TEST_CASE("ClusterIP service: A for its IPv4 cluster IP, NoData for AAAA") {
  auto s = build(sampleModel());
  CHECK(answerAddrs(*s, "api.demo.svc.cluster.local", dns::kTypeA) == V{"10.96.0.10"});
  Lookup l = look(*s, "api.demo.svc.cluster.local", dns::kTypeA);
  CHECK(l.answer->rdatas[0].bytes == bytes("\x0a\x60\x00\x0a"));  // 10.96.0.10
  CHECK(l.additional.empty());
  CHECK(look(*s, "api.demo.svc.cluster.local", dns::kTypeAAAA).kind == Kind::kNoData);
  CHECK(look(*s, "api.demo.svc.cluster.local", dns::kTypeTXT).kind == Kind::kNoData);
}

TEST_CASE("dual-stack ClusterIP service: A and AAAA") {
  auto s = build(sampleModel());
  CHECK(answerAddrs(*s, "dual.demo.svc.cluster.local", dns::kTypeA) == V{"10.96.0.20"});
  CHECK(answerAddrs(*s, "dual.demo.svc.cluster.local", dns::kTypeAAAA) == V{"fd00:10:96::20"});
}

TEST_CASE("NodePort and LoadBalancer services are served like ClusterIP") {
  ClusterModel m;
  Service np = clusterIp("ns1", "np", {"10.96.1.1"}, {port("http", 80)});
  np.type = ServiceType::kNodePort;
  Service lb = clusterIp("ns1", "lb", {"10.96.1.2"});
  lb.type = ServiceType::kLoadBalancer;
  add(m, np);
  add(m, lb);
  auto s = build(m);
  CHECK(answerAddrs(*s, "np.ns1.svc.cluster.local", dns::kTypeA) == V{"10.96.1.1"});
  CHECK(answerAddrs(*s, "lb.ns1.svc.cluster.local", dns::kTypeA) == V{"10.96.1.2"});
  CHECK(answerSrv(*s, "_http._tcp.np.ns1.svc.cluster.local") ==
        V{"0 100 80 np.ns1.svc.cluster.local."});
}

TEST_CASE("ClusterIP SRV: one per named port, target the service, its A/AAAA as additional") {
  auto s = build(sampleModel());
  Lookup l = look(*s, "_http._tcp.api.demo.svc.cluster.local", dns::kTypeSRV);
  REQUIRE(l.kind == Kind::kAnswer);
  REQUIRE(l.answer->rdatas.size() == 1);
  const std::string golden = bytes(
      "\x00\x00"                                                       // priority 0
      "\x00\x64"                                                       // weight 100
      "\x00\x50"                                                       // port 80
      "\x03" "api" "\x04" "demo" "\x03" "svc" "\x07" "cluster" "\x05" "local" "\x00");  // target
  CHECK(l.answer->rdatas[0].bytes == golden);
  CHECK(extras(l) == V{"api.demo.svc.cluster.local. A 10.96.0.10"});
  CHECK(answerSrv(*s, "_grpc._tcp.api.demo.svc.cluster.local") ==
        V{"0 100 9090 api.demo.svc.cluster.local."});
  CHECK(answerSrv(*s, "_dns._udp.api.demo.svc.cluster.local") ==
        V{"0 100 53 api.demo.svc.cluster.local."});
  // The protocol label must match: grpc is TCP only.
  CHECK(look(*s, "_grpc._udp.api.demo.svc.cluster.local", dns::kTypeSRV).kind == Kind::kNxDomain);
  // The unnamed port 8443 has no SRV name at all.
  CHECK(look(*s, "_8443._tcp.api.demo.svc.cluster.local", dns::kTypeSRV).kind == Kind::kNxDomain);
  // An SRV name asked for another type: it exists, so NoData.
  CHECK(look(*s, "_http._tcp.api.demo.svc.cluster.local", dns::kTypeA).kind == Kind::kNoData);

  Lookup d = look(*s, "_http._tcp.dual.demo.svc.cluster.local", dns::kTypeSRV);
  REQUIRE(d.kind == Kind::kAnswer);
  CHECK(extras(d) == V{"dual.demo.svc.cluster.local. A 10.96.0.20",
                       "dual.demo.svc.cluster.local. AAAA fd00:10:96::20"});
}

TEST_CASE("SRV protocol labels are lower-case tcp/udp/sctp") {
  ClusterModel m;
  add(m, clusterIp("ns1", "s", {"10.96.1.1"},
                   {port("a", 1, Protocol::kTcp), port("b", 2, Protocol::kUdp), port("c", 3, Protocol::kSctp)}));
  auto s = build(m);
  CHECK(answerSrv(*s, "_a._tcp.s.ns1.svc.cluster.local") == V{"0 100 1 s.ns1.svc.cluster.local."});
  CHECK(answerSrv(*s, "_b._udp.s.ns1.svc.cluster.local") == V{"0 100 2 s.ns1.svc.cluster.local."});
  CHECK(answerSrv(*s, "_c._sctp.s.ns1.svc.cluster.local") == V{"0 100 3 s.ns1.svc.cluster.local."});
  CHECK(look(*s, "_c._SCTP.s.ns1.svc.cluster.local", dns::kTypeSRV).kind == Kind::kAnswer);
}

TEST_CASE("ClusterIP PTR: in-addr.arpa and ip6.arpa nibbles name the service") {
  auto s = build(sampleModel());
  CHECK(answerNames(*s, "10.0.96.10.in-addr.arpa", dns::kTypePTR) == V{"api.demo.svc.cluster.local."});
  CHECK(answerNames(*s, "20.0.96.10.in-addr.arpa", dns::kTypePTR) == V{"dual.demo.svc.cluster.local."});
  // fd00:10:96::20 = fd00:0010:0096:0000:0000:0000:0000:0020, nibbles reversed (RFC 3596 2.5).
  CHECK(answerNames(*s,
                    "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
                    dns::kTypePTR) == V{"dual.demo.svc.cluster.local."});
  // Upper-case hex nibbles arrive lower-cased.
  CHECK(look(*s, "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.D.F.IP6.ARPA",
             dns::kTypePTR).kind == Kind::kAnswer);
}

TEST_CASE("ClusterIP service without cluster IPs exists but has no addresses") {
  ClusterModel m;
  add(m, clusterIp("ns1", "pending", {}));
  auto s = build(m);
  CHECK(look(*s, "pending.ns1.svc.cluster.local", dns::kTypeA).kind == Kind::kNoData);
  CHECK(look(*s, "ns1.svc.cluster.local", dns::kTypeA).kind == Kind::kNoData);
}

// ---- 2.4 headless ------------------------------------------------------------------------------

TEST_CASE("headless: slices merged, duplicate addresses once, not-ready left out, sorted") {
  auto s = build(sampleModel());
  CHECK(answerAddrs(*s, "web.demo.svc.cluster.local", dns::kTypeA) ==
        V{"10.244.1.10", "10.244.1.11", "10.244.1.12"});
  CHECK(look(*s, "web.demo.svc.cluster.local", dns::kTypeAAAA).kind == Kind::kNoData);
  CHECK(s->endpointCount() == 3 + 2);  // web (3 ready) + db (2)
}

TEST_CASE("headless: hostname records for ready endpoints only") {
  auto s = build(sampleModel());
  CHECK(answerAddrs(*s, "web-0.web.demo.svc.cluster.local", dns::kTypeA) == V{"10.244.1.10"});
  CHECK(answerAddrs(*s, "web-1.web.demo.svc.cluster.local", dns::kTypeA) == V{"10.244.1.11"});
  CHECK(answerAddrs(*s, "web-2.web.demo.svc.cluster.local", dns::kTypeA) == V{"10.244.1.12"});
  CHECK(look(*s, "web-3.web.demo.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(look(*s, "web-0.web.demo.svc.cluster.local", dns::kTypeAAAA).kind == Kind::kNoData);
  CHECK(look(*s, "x.web-0.web.demo.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
}

TEST_CASE("headless: endpoints without hostname get the dashed address as a name") {
  ClusterModel m = sampleModel();
  add(m, slice("demo", "db-v6", "db", {ep({"fd00:10:244:2::5"})}, {port("postgres", 5432)},
               AddressType::kIPv6));
  auto s = build(m);
  CHECK(answerAddrs(*s, "10-244-2-5.db.demo.svc.cluster.local", dns::kTypeA) == V{"10.244.2.5"});
  CHECK(answerAddrs(*s, "10-244-2-6.db.demo.svc.cluster.local", dns::kTypeA) == V{"10.244.2.6"});
  CHECK(answerAddrs(*s, "fd00-10-244-2--5.db.demo.svc.cluster.local", dns::kTypeAAAA) ==
        V{"fd00:10:244:2::5"});
  CHECK(answerAddrs(*s, "db.demo.svc.cluster.local", dns::kTypeAAAA) == V{"fd00:10:244:2::5"});
  CHECK(answerSrv(*s, "_postgres._tcp.db.demo.svc.cluster.local") ==
        V{"0 33 5432 10-244-2-5.db.demo.svc.cluster.local.",
          "0 33 5432 10-244-2-6.db.demo.svc.cluster.local.",
          "0 33 5432 fd00-10-244-2--5.db.demo.svc.cluster.local."});
}

TEST_CASE("headless SRV: one per (ready endpoint, named port), weight 100/N, targets' A extra") {
  auto s = build(sampleModel());
  Lookup l = look(*s, "_http._tcp.web.demo.svc.cluster.local", dns::kTypeSRV);
  REQUIRE(l.kind == Kind::kAnswer);
  REQUIRE(l.answer->rdatas.size() == 3);
  // First record by hand: priority 0, weight 33 (100/3), port 80, web-0.web.demo.svc.cluster.local.
  CHECK(l.answer->rdatas[0].bytes ==
        bytes("\x00\x00" "\x00\x21" "\x00\x50"
              "\x05" "web-0" "\x03" "web" "\x04" "demo" "\x03" "svc" "\x07" "cluster" "\x05" "local" "\x00"));
  CHECK(answerSrv(*s, "_http._tcp.web.demo.svc.cluster.local") ==
        V{"0 33 80 web-0.web.demo.svc.cluster.local.", "0 33 80 web-1.web.demo.svc.cluster.local.",
          "0 33 80 web-2.web.demo.svc.cluster.local."});
  CHECK(extras(l) == V{"web-0.web.demo.svc.cluster.local. A 10.244.1.10",
                       "web-1.web.demo.svc.cluster.local. A 10.244.1.11",
                       "web-2.web.demo.svc.cluster.local. A 10.244.1.12"});
  // Unnamed slice ports make no SRV; weight never drops to 0.
  ClusterModel m;
  add(m, headless("ns1", "big"));
  std::vector<Endpoint> eps;
  std::vector<std::string> texts;
  for (int i = 0; i < 150; ++i) texts.push_back("10.1." + std::to_string(i / 100) + "." + std::to_string(i % 100 + 1));
  for (auto& t : texts) eps.push_back(ep({t.c_str()}));
  add(m, slice("ns1", "big-1", "big", eps, {port("", 81), port("p", 80)}));
  auto b = build(m);
  Lookup bl = look(*b, "_p._tcp.big.ns1.svc.cluster.local", dns::kTypeSRV);
  REQUIRE(bl.kind == Kind::kAnswer);
  CHECK(bl.answer->rdatas.size() == 150);
  CHECK(srvText(bl.answer->rdatas[0]).rfind("0 1 80 ", 0) == 0);
}

TEST_CASE("headless: port numbers, names and protocols come from the slices") {
  ClusterModel m;
  Service svc = headless("ns1", "h");
  svc.ports = {port("svcport", 1234)};  // the Service's own ports are not used for headless SRV
  add(m, svc);
  add(m, slice("ns1", "h-1", "h", {ep({"10.0.0.1"}, "a")}, {port("dns", 5353, Protocol::kUdp)}));
  add(m, slice("ns1", "h-2", "h", {ep({"10.0.0.2"}, "b")}, {port("dns", 5354, Protocol::kUdp)}));
  auto s = build(m);
  CHECK(answerSrv(*s, "_dns._udp.h.ns1.svc.cluster.local") ==
        V{"0 50 5353 a.h.ns1.svc.cluster.local.", "0 50 5354 b.h.ns1.svc.cluster.local."});
  CHECK(look(*s, "_svcport._tcp.h.ns1.svc.cluster.local", dns::kTypeSRV).kind == Kind::kNxDomain);
  CHECK(look(*s, "_dns._tcp.h.ns1.svc.cluster.local", dns::kTypeSRV).kind == Kind::kNxDomain);
}

TEST_CASE("headless: a hostname with several addresses answers all of them, one SRV target") {
  ClusterModel m;
  add(m, headless("ns1", "h"));
  add(m, slice("ns1", "h-v4", "h", {ep({"10.0.0.1"}, "pod-a"), ep({"10.0.0.9"}, "pod-a")},
               {port("http", 80)}));
  add(m, slice("ns1", "h-v6", "h", {ep({"fd00::1"}, "pod-a")}, {port("http", 80)}, AddressType::kIPv6));
  auto s = build(m);
  CHECK(answerAddrs(*s, "pod-a.h.ns1.svc.cluster.local", dns::kTypeA) == V{"10.0.0.1", "10.0.0.9"});
  CHECK(answerAddrs(*s, "pod-a.h.ns1.svc.cluster.local", dns::kTypeAAAA) == V{"fd00::1"});
  Lookup l = look(*s, "_http._tcp.h.ns1.svc.cluster.local", dns::kTypeSRV);
  REQUIRE(l.kind == Kind::kAnswer);
  CHECK(answerSrv(*s, "_http._tcp.h.ns1.svc.cluster.local") == V{"0 100 80 pod-a.h.ns1.svc.cluster.local."});
  CHECK(extras(l) == V{"pod-a.h.ns1.svc.cluster.local. A 10.0.0.1",
                       "pod-a.h.ns1.svc.cluster.local. A 10.0.0.9",
                       "pod-a.h.ns1.svc.cluster.local. AAAA fd00::1"});
}

TEST_CASE("headless: conditions.ready absent means ready") {
  ClusterModel m;
  add(m, headless("ns1", "h"));
  add(m, slice("ns1", "h-1", "h", {ep({"10.0.0.1"}, "", std::nullopt), ep({"10.0.0.2"}, "", false)}));
  auto s = build(m);
  CHECK(answerAddrs(*s, "h.ns1.svc.cluster.local", dns::kTypeA) == V{"10.0.0.1"});
}

TEST_CASE("headless: an address ready in one slice and not in another is ready") {
  ClusterModel m;
  add(m, headless("ns1", "h"));
  add(m, slice("ns1", "h-1", "h", {ep({"10.0.0.1"}, "a", false)}, {port("p", 1)}));
  add(m, slice("ns1", "h-2", "h", {ep({"10.0.0.1"}, "a", true)}, {port("p", 1)}));
  auto s = build(m);
  CHECK(answerAddrs(*s, "h.ns1.svc.cluster.local", dns::kTypeA) == V{"10.0.0.1"});
  CHECK(answerSrv(*s, "_p._tcp.h.ns1.svc.cluster.local") == V{"0 100 1 a.h.ns1.svc.cluster.local."});
}

TEST_CASE("headless: publishNotReadyAddresses and the tolerate-unready annotation count all") {
  for (int variant = 0; variant < 2; ++variant) {
    CAPTURE(variant);
    ClusterModel m;
    Service h = headless("ns1", "h");
    if (variant == 0) {
      h.publishNotReadyAddresses = true;
    } else {
      h.annotations["service.alpha.kubernetes.io/tolerate-unready-endpoints"] = "true";
    }
    add(m, h);
    add(m, slice("ns1", "h-1", "h", {ep({"10.0.0.1"}, "a", false), ep({"10.0.0.2"}, "b", true)},
                 {port("p", 1)}));
    auto s = build(m);
    CHECK(answerAddrs(*s, "h.ns1.svc.cluster.local", dns::kTypeA) == V{"10.0.0.1", "10.0.0.2"});
    CHECK(answerAddrs(*s, "a.h.ns1.svc.cluster.local", dns::kTypeA) == V{"10.0.0.1"});
    CHECK(answerSrv(*s, "_p._tcp.h.ns1.svc.cluster.local").size() == 2);
    CHECK(answerNames(*s, "1.0.0.10.in-addr.arpa", dns::kTypePTR) == V{"a.h.ns1.svc.cluster.local."});
  }
  // The annotation with another value does nothing.
  ClusterModel m;
  Service h = headless("ns1", "h");
  h.annotations["service.alpha.kubernetes.io/tolerate-unready-endpoints"] = "false";
  add(m, h);
  add(m, slice("ns1", "h-1", "h", {ep({"10.0.0.1"}, "a", false), ep({"10.0.0.2"}, "b", true)}));
  CHECK(answerAddrs(*build(m), "h.ns1.svc.cluster.local", dns::kTypeA) == V{"10.0.0.2"});
}

TEST_CASE("headless with no ready endpoint: NXDOMAIN for the name and everything below it") {
  ClusterModel m;
  add(m, headless("lonely", "h"));
  add(m, slice("lonely", "h-1", "h", {ep({"10.0.0.1"}, "a", false)}, {port("p", 1)}));
  add(m, headless("lonely", "none"));  // no slice at all
  auto s = build(m);
  for (uint16_t t : {dns::kTypeA, dns::kTypeAAAA, dns::kTypeSRV, dns::kTypeTXT}) {
    CAPTURE(t);
    CHECK(look(*s, "h.lonely.svc.cluster.local", t).kind == Kind::kNxDomain);
    CHECK(look(*s, "none.lonely.svc.cluster.local", t).kind == Kind::kNxDomain);
  }
  CHECK(look(*s, "a.h.lonely.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(look(*s, "_p._tcp.h.lonely.svc.cluster.local", dns::kTypeSRV).kind == Kind::kNxDomain);
  CHECK(look(*s, "_tcp.h.lonely.svc.cluster.local", dns::kTypeSRV).kind == Kind::kNxDomain);
  // No existing name below lonely.svc: the namespace is not an empty non-terminal either.
  CHECK(look(*s, "lonely.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(look(*s, "1.0.0.10.in-addr.arpa", dns::kTypePTR).kind == Kind::kNotInZone);
}

TEST_CASE("headless PTR: each ready address names its endpoint; an address in two services: two") {
  ClusterModel m = sampleModel();
  add(m, headless("other", "h"));
  add(m, slice("other", "h-1", "h", {ep({"10.244.1.10"}, "x")}));
  auto s = build(m);
  V both = answerNames(*s, "10.1.244.10.in-addr.arpa", dns::kTypePTR);
  std::sort(both.begin(), both.end());  // stored order: by wire bytes (stable, not alphabetic)
  CHECK(both == V{"web-0.web.demo.svc.cluster.local.", "x.h.other.svc.cluster.local."});
  CHECK(answerNames(*s, "11.1.244.10.in-addr.arpa", dns::kTypePTR) ==
        V{"web-1.web.demo.svc.cluster.local."});  // in two slices of one service: once
  CHECK(answerNames(*s, "5.2.244.10.in-addr.arpa", dns::kTypePTR) ==
        V{"10-244-2-5.db.demo.svc.cluster.local."});
  // web-3 is not ready: no PTR, and the reverse name is not ours to deny.
  CHECK(look(*s, "13.1.244.10.in-addr.arpa", dns::kTypePTR).kind == Kind::kNotInZone);
}

TEST_CASE("FQDN slices are not served and counted as skipped") {
  ClusterModel m;
  add(m, headless("ns1", "h"));
  EndpointSlice f = slice("ns1", "h-fqdn", "h", {});
  f.addressType = AddressType::kFQDN;
  add(m, f);
  auto s = build(m);
  CHECK(look(*s, "h.ns1.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(s->skippedObjects() == 1);
}

// ---- 2.5 ExternalName --------------------------------------------------------------------------

TEST_CASE("ExternalName: a CNAME answers every type; sub-names do not exist") {
  auto s = build(sampleModel());
  for (uint16_t t : {dns::kTypeA, dns::kTypeAAAA, dns::kTypeMX, dns::kTypeCNAME, dns::kTypeSRV,
                     dns::kTypeANY, dns::kTypeTXT}) {
    CAPTURE(t);
    Lookup l = look(*s, "search.demo.svc.cluster.local", t);
    REQUIRE(l.kind == Kind::kAnswer);
    REQUIRE(l.answer->type == dns::kTypeCNAME);
    REQUIRE(l.answer->rdatas.size() == 1);
    // The target in wire form, lower-cased: \3www \7example \3com \0.
    CHECK(l.answer->rdatas[0].bytes == bytes("\x03" "www" "\x07" "example" "\x03" "com" "\x00"));
    CHECK(l.answer->rdatas[0].kind == dns::RdataKind::kName);
    CHECK(l.additional.empty());
  }
  CHECK(look(*s, "x.search.demo.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(look(*s, "_http._tcp.search.demo.svc.cluster.local", dns::kTypeSRV).kind == Kind::kNxDomain);
}

TEST_CASE("ExternalName without a usable name is skipped (NXDOMAIN)") {
  ClusterModel m;
  add(m, externalName("ns1", "empty", ""));
  add(m, externalName("ns1", "bad", "a..b"));
  auto s = build(m);
  CHECK(look(*s, "empty.ns1.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(look(*s, "bad.ns1.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(s->skippedObjects() == 2);
  CHECK(s->serviceCount() == 0);
}

// ---- empty non-terminals, NXDOMAIN, out of zone -------------------------------------------------

TEST_CASE("empty non-terminals are NoData (RFC 8020), not NXDOMAIN") {
  auto s = build(sampleModel());
  for (const char* n : {"svc.cluster.local", "demo.svc.cluster.local", "_tcp.api.demo.svc.cluster.local",
                        "_udp.api.demo.svc.cluster.local", "_tcp.web.demo.svc.cluster.local",
                        "pod.cluster.local", "demo.pod.cluster.local", "anything.pod.cluster.local"}) {
    CAPTURE(n);
    CHECK(look(*s, n, dns::kTypeA).kind == Kind::kNoData);
    CHECK(look(*s, n, dns::kTypeSRV).kind == Kind::kNoData);
  }
  CHECK(look(*s, "_sctp.api.demo.svc.cluster.local", dns::kTypeSRV).kind == Kind::kNxDomain);
}

TEST_CASE("names in the zone that do not exist are NXDOMAIN") {
  auto s = build(sampleModel());
  for (const char* n : {"nope.cluster.local", "a.b.cluster.local", "other.svc.cluster.local",
                        "nope.demo.svc.cluster.local", "x.api.demo.svc.cluster.local",
                        "api.other.svc.cluster.local", "ns.dns.cluster.local", "svc.svc.cluster.local",
                        "a.b.c.d.demo.pod.cluster.local"}) {
    CAPTURE(n);
    CHECK(look(*s, n, dns::kTypeA).kind == Kind::kNxDomain);
  }
}

TEST_CASE("names outside the zone are kNotInZone, label-aligned") {
  auto s = build(sampleModel());
  for (const char* n : {"example.com", ".", "local", "xcluster.local", "api.demo.svc.cluster.local.evil",
                        "api.demo.svc.xcluster.local", "in-addr.arpa", "10.in-addr.arpa",
                        "1.2.3.4.5.in-addr.arpa", "256.0.96.10.in-addr.arpa", "010.0.96.10.in-addr.arpa",
                        "99.99.99.99.in-addr.arpa", "1.ip6.arpa"}) {
    CAPTURE(n);
    CHECK(look(*s, n, dns::kTypePTR).kind == Kind::kNotInZone);
  }
  // A known reverse address asked for another type: forwarded, we are not authoritative there.
  CHECK(look(*s, "10.0.96.10.in-addr.arpa", dns::kTypeA).kind == Kind::kNotInZone);
  CHECK(look(*s, "10.0.96.10.in-addr.arpa", dns::kTypeANY).kind == Kind::kAnswer);
}

TEST_CASE("case-insensitive: mixed-case questions and model names") {
  ClusterModel m;
  add(m, clusterIp("MyNs", "MySvc", {"10.96.9.9"}, {port("HTTP", 80)}));
  add(m, headless("MyNs", "Hl"));
  add(m, slice("MyNs", "hl-1", "Hl", {ep({"10.0.0.1"}, "Pod-A")}, {port("Web", 8080)}));
  auto s = build(m);
  CHECK(answerAddrs(*s, "MYSVC.myns.SVC.Cluster.LOCAL", dns::kTypeA) == V{"10.96.9.9"});
  CHECK(answerSrv(*s, "_Http._TCP.mysvc.myns.svc.cluster.local") == V{"0 100 80 mysvc.myns.svc.cluster.local."});
  CHECK(answerAddrs(*s, "POD-A.hl.myns.svc.cluster.local", dns::kTypeA) == V{"10.0.0.1"});
  CHECK(answerSrv(*s, "_web._tcp.HL.MYNS.svc.cluster.local") == V{"0 100 8080 pod-a.hl.myns.svc.cluster.local."});
  CHECK(look(*s, "MyNs.svc.cluster.local", dns::kTypeA).kind == Kind::kNoData);
}

TEST_CASE("ANY returns the first RrSet (A before AAAA); SOA at the apex") {
  auto s = build(sampleModel());
  Lookup l = look(*s, "dual.demo.svc.cluster.local", dns::kTypeANY);
  REQUIRE(l.kind == Kind::kAnswer);
  CHECK(l.answer->type == dns::kTypeA);
  CHECK(look(*s, "dns-version.cluster.local", dns::kTypeANY).answer->type == dns::kTypeTXT);
  CHECK(look(*s, "svc.cluster.local", dns::kTypeANY).kind == Kind::kNoData);
}

// ---- 2.6 pod records --------------------------------------------------------------------------

TEST_CASE("pod records: <a-b-c-d>.<ns>.pod.<zone> A a.b.c.d for any address") {
  auto s = build(sampleModel());
  Lookup l = look(*s, "10-244-7-9.anyns.pod.cluster.local", dns::kTypeA);
  REQUIRE(l.kind == Kind::kSynthAddress);
  CHECK(l.synthType == dns::kTypeA);
  CHECK(l.synth[0] == 10);
  CHECK(l.synth[1] == 244);
  CHECK(l.synth[2] == 7);
  CHECK(l.synth[3] == 9);
  CHECK(l.answer == nullptr);
  Lookup z = look(*s, "0-0-0-0.ns.pod.cluster.local", dns::kTypeA);
  CHECK(z.kind == Kind::kSynthAddress);
  Lookup m = look(*s, "255-255-255-255.ns.pod.cluster.local", dns::kTypeA);
  REQUIRE(m.kind == Kind::kSynthAddress);
  CHECK(m.synth[3] == 255);
  CHECK(look(*s, "10-244-7-9.anyns.pod.cluster.local", dns::kTypeAAAA).kind == Kind::kNoData);
  CHECK(look(*s, "10-244-7-9.anyns.pod.cluster.local", dns::kTypeTXT).kind == Kind::kNoData);
  CHECK(look(*s, "10-244-7-9.anyns.pod.cluster.local", dns::kTypeANY).kind == Kind::kSynthAddress);
}

TEST_CASE("pod records: the dashed IPv6 form answers AAAA") {
  auto s = build(sampleModel());
  Lookup l = look(*s, "fd00-10-244-1--1e.demo.pod.cluster.local", dns::kTypeAAAA);
  REQUIRE(l.kind == Kind::kSynthAddress);
  CHECK(l.synthType == dns::kTypeAAAA);
  const uint8_t want[16] = {0xfd, 0x00, 0x00, 0x10, 0x02, 0x44, 0x00, 0x01,
                            0, 0, 0, 0, 0, 0, 0x00, 0x1e};
  CHECK(std::equal(want, want + 16, l.synth));
  Lookup full = look(*s, "1-2-3-4-5-6-7-8.demo.pod.cluster.local", dns::kTypeAAAA);
  REQUIRE(full.kind == Kind::kSynthAddress);
  CHECK(full.synth[1] == 1);
  CHECK(full.synth[15] == 8);
  Lookup lo = look(*s, "--1.demo.pod.cluster.local", dns::kTypeAAAA);
  REQUIRE(lo.kind == Kind::kSynthAddress);
  CHECK(lo.synth[15] == 1);
  CHECK(lo.synth[0] == 0);
  CHECK(look(*s, "fe80--.demo.pod.cluster.local", dns::kTypeAAAA).kind == Kind::kSynthAddress);
  CHECK(look(*s, "fd00--1.demo.pod.cluster.local", dns::kTypeA).kind == Kind::kNoData);
}

TEST_CASE("pod records: malformed names are NXDOMAIN") {
  auto s = build(sampleModel());
  for (const char* n : {"256-0-0-1.ns.pod.cluster.local", "1-2-3.ns.pod.cluster.local",
                        "01-2-3-4.ns.pod.cluster.local", "a-b-c-d.ns.pod.cluster.local",
                        "1-2-3-4-.ns.pod.cluster.local", "1--2--3.ns.pod.cluster.local",
                        "12345--1.ns.pod.cluster.local", "1-2-3-4-5-6-7-8-9.ns.pod.cluster.local",
                        "1---2.ns.pod.cluster.local", "x.1-2-3-4.ns.pod.cluster.local"}) {
    CAPTURE(n);
    CHECK(look(*s, n, dns::kTypeA).kind == Kind::kNxDomain);
    CHECK(look(*s, n, dns::kTypeAAAA).kind == Kind::kNxDomain);
  }
}

// ---- counters, lifetime, scale, incremental rebuild ---------------------------------------------

TEST_CASE("counters: services, endpoints, skipped objects") {
  ClusterModel m = sampleModel();
  add(m, slice("demo", "orphan-1", "gone", {ep({"10.9.9.9"})}));  // no such service
  add(m, clusterIp("demo", "this.has.dots", {"10.96.5.5"}));      // cannot be a label
  auto s = build(m);
  CHECK(s->serviceCount() == 5);
  CHECK(s->endpointCount() == 5);
  CHECK(s->skippedObjects() == 2);
}

TEST_CASE("lookup does not allocate, whatever the outcome") {
  ClusterModel m = sampleModel();
  add(m, slice("demo", "db-v6", "db", {ep({"fd00::5"})}, {port("postgres", 5432)}, AddressType::kIPv6));
  auto s = build(m);
  const char* names[] = {
      "web.demo.svc.cluster.local", "web-0.web.demo.svc.cluster.local",
      "_http._tcp.web.demo.svc.cluster.local", "_tcp.web.demo.svc.cluster.local",
      "search.demo.svc.cluster.local", "cluster.local", "dns-version.cluster.local",
      "nope.demo.svc.cluster.local", "demo.svc.cluster.local", "nope.svc.cluster.local",
      "1-2-3-4.demo.pod.cluster.local", "fd00--1.demo.pod.cluster.local", "bad.demo.pod.cluster.local",
      "10.0.96.10.in-addr.arpa", "99.0.96.10.in-addr.arpa", "example.com",
      "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa"};
  std::vector<dns::NameKey> keys;  // built before counting: NameKey itself never allocates
  for (const char* n : names) {
    std::string w;
    REQUIRE(dns::textToWire(n, &w));
    keys.emplace_back();
    REQUIRE(keys.back().assignWire(w));
  }
  const uint16_t types[] = {dns::kTypeA, dns::kTypeAAAA, dns::kTypeSRV, dns::kTypePTR,
                            dns::kTypeTXT, dns::kTypeSOA, dns::kTypeANY, dns::kTypeMX};
  int answers = 0;
  hdnsd::test::startCountingAllocations();
  for (const auto& k : keys)
    for (uint16_t t : types) answers += s->lookup(k, t).kind == Kind::kAnswer;
  const uint64_t allocs = hdnsd::test::stopCountingAllocations();
  CHECK(allocs == 0);
  CHECK(answers > 10);  // the loop did real work
}

TEST_CASE("a Snapshot does not depend on the model it was built from") {
  std::shared_ptr<const Snapshot> s;
  {
    ClusterModel m = sampleModel();
    s = build(m);
  }
  CHECK(answerAddrs(*s, "web.demo.svc.cluster.local", dns::kTypeA).size() == 3);
  Lookup l = look(*s, "_http._tcp.web.demo.svc.cluster.local", dns::kTypeSRV);
  CHECK(extras(l).size() == 3);
}

TEST_CASE("10,000 services and 100,000 endpoints compile correctly") {
  ClusterModel m;
  // 5,000 ClusterIP services and 5,000 headless ones with 20 endpoints each, in 100 namespaces.
  for (int i = 0; i < 10000; ++i) {
    const std::string ns = "ns" + std::to_string(i % 100), name = "svc" + std::to_string(i);
    Service s;
    s.ns = ns;
    s.name = name;
    s.ports = {port("http", 80)};
    if (i % 2 == 0) {
      IpAddr a;
      a.family = 4;
      a.bytes[0] = 10; a.bytes[1] = 96; a.bytes[2] = static_cast<uint8_t>(i >> 8); a.bytes[3] = static_cast<uint8_t>(i);
      s.clusterIPs = {a};
    } else {
      s.headless = true;
      EndpointSlice sl;
      sl.ns = ns;
      sl.name = name + "-x";
      sl.serviceName = name;
      sl.ports = {port("http", 8080)};
      for (int k = 0; k < 20; ++k) {
        const int n = i * 20 + k;
        Endpoint e;
        IpAddr a;
        a.family = 4;
        a.bytes[0] = 10; a.bytes[1] = static_cast<uint8_t>(n >> 16);
        a.bytes[2] = static_cast<uint8_t>(n >> 8); a.bytes[3] = static_cast<uint8_t>(n);
        e.addresses = {a};
        e.hostname = k % 2 == 0 ? "pod-" + std::to_string(k) : "";
        sl.endpoints.push_back(e);
      }
      m.upsertSlice(objectKey(ns, sl.name), sl);
    }
    m.services[objectKey(ns, name)] = s;
  }
  auto s = build(m);
  CHECK(s->serviceCount() == 10000);
  CHECK(s->endpointCount() == 100000);
  CHECK(s->skippedObjects() == 0);
  CHECK(answerAddrs(*s, "svc1234.ns34.svc.cluster.local", dns::kTypeA) == V{"10.96.4.210"});
  // svc9999 (headless): endpoints n = 199980..199999 -> 10.3.13.44 .. 10.3.13.63
  auto a = answerAddrs(*s, "svc9999.ns99.svc.cluster.local", dns::kTypeA);
  REQUIRE(a.size() == 20);
  CHECK(a.front() == "10.3.13.44");
  CHECK(a.back() == "10.3.13.63");
  CHECK(answerAddrs(*s, "pod-4.svc9999.ns99.svc.cluster.local", dns::kTypeA) == V{"10.3.13.48"});
  CHECK(answerAddrs(*s, "10-3-13-49.svc9999.ns99.svc.cluster.local", dns::kTypeA) == V{"10.3.13.49"});
  CHECK(answerSrv(*s, "_http._tcp.svc9999.ns99.svc.cluster.local").size() == 20);
  CHECK(answerNames(*s, "49.13.3.10.in-addr.arpa", dns::kTypePTR) ==
        V{"10-3-13-49.svc9999.ns99.svc.cluster.local."});
  CHECK(answerNames(*s, "210.4.96.10.in-addr.arpa", dns::kTypePTR) == V{"svc1234.ns34.svc.cluster.local."});
  CHECK(look(*s, "svc1234.ns35.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
}

TEST_CASE("rebuildService: one service changes, the rest is shared and unchanged") {
  ClusterModel m = sampleModel();
  add(m, headless("other", "h"));
  add(m, slice("other", "h-1", "h", {ep({"10.244.1.10"}, "x")}));
  auto before = build(m);

  // web loses web-0 and gains web-4; api is untouched.
  m.eraseSlice("demo/web-abc");
  add(m, slice("demo", "web-ghi", "web", {ep({"10.244.1.14"}, "web-4")}, {port("http", 80)}));
  auto after = Snapshot::rebuildService(*before, m, "demo/web");

  CHECK(answerAddrs(*after, "web.demo.svc.cluster.local", dns::kTypeA) ==
        V{"10.244.1.11", "10.244.1.12", "10.244.1.14"});
  CHECK(look(*after, "web-0.web.demo.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(answerAddrs(*after, "web-4.web.demo.svc.cluster.local", dns::kTypeA) == V{"10.244.1.14"});
  // The PTR for 10.244.1.10 keeps the other service's name only.
  CHECK(answerNames(*after, "10.1.244.10.in-addr.arpa", dns::kTypePTR) == V{"x.h.other.svc.cluster.local."});
  CHECK(answerNames(*after, "14.1.244.10.in-addr.arpa", dns::kTypePTR) == V{"web-4.web.demo.svc.cluster.local."});
  // Unchanged services are the very same compiled objects.
  CHECK(look(*after, "api.demo.svc.cluster.local", dns::kTypeA).answer ==
        look(*before, "api.demo.svc.cluster.local", dns::kTypeA).answer);
  // The old snapshot is untouched.
  CHECK(answerAddrs(*before, "web.demo.svc.cluster.local", dns::kTypeA) ==
        V{"10.244.1.10", "10.244.1.11", "10.244.1.12"});
  CHECK(answerNames(*before, "10.1.244.10.in-addr.arpa", dns::kTypePTR).size() == 2);
  CHECK(after->serial() == before->serial());  // pinned by ViewOptions in this test
  CHECK(after->endpointCount() == before->endpointCount());  // 3 ready -> 3 ready

  // The same answers as a full build.
  auto full = build(m);
  for (const char* n : {"web.demo.svc.cluster.local", "web-4.web.demo.svc.cluster.local",
                        "web-0.web.demo.svc.cluster.local", "x.h.other.svc.cluster.local"}) {
    CAPTURE(n);
    Lookup a = look(*after, n, dns::kTypeA), b = look(*full, n, dns::kTypeA);
    CHECK(a.kind == b.kind);
    if (a.kind == Kind::kAnswer) CHECK(addrs(a.answer) == addrs(b.answer));
  }
  CHECK(answerSrv(*after, "_http._tcp.web.demo.svc.cluster.local") ==
        answerSrv(*full, "_http._tcp.web.demo.svc.cluster.local"));
  CHECK(after->serviceCount() == full->serviceCount());
  CHECK(after->endpointCount() == full->endpointCount());
}

TEST_CASE("rebuildService: removal, addition, and the namespace empty non-terminal") {
  ClusterModel m;
  add(m, clusterIp("solo", "a", {"10.96.0.1"}));
  auto s1 = build(m);
  CHECK(look(*s1, "solo.svc.cluster.local", dns::kTypeA).kind == Kind::kNoData);

  m.services.erase("solo/a");
  auto s2 = Snapshot::rebuildService(*s1, m, "solo/a");
  CHECK(look(*s2, "a.solo.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(look(*s2, "solo.svc.cluster.local", dns::kTypeA).kind == Kind::kNxDomain);
  CHECK(look(*s2, "1.0.96.10.in-addr.arpa", dns::kTypePTR).kind == Kind::kNotInZone);
  CHECK(s2->serviceCount() == 0);

  add(m, externalName("solo", "b", "db.example.org"));
  auto s3 = Snapshot::rebuildService(*s2, m, "solo/b");
  CHECK(answerNames(*s3, "b.solo.svc.cluster.local", dns::kTypeA) == V{"db.example.org."});
  CHECK(look(*s3, "solo.svc.cluster.local", dns::kTypeA).kind == Kind::kNoData);
  CHECK(s3->serviceCount() == 1);
}

TEST_CASE("PTR: an address several services name lists every target; rebuildService re-merges it") {
  ClusterModel m;
  add(m, headless("ns1", "b"));
  add(m, slice("ns1", "b-1", "b", {ep({"10.0.0.1"}, "x")}));
  add(m, headless("ns1", "a"));
  add(m, slice("ns1", "a-1", "a", {ep({"10.0.0.1"}, "y"), ep({"10.0.0.2"}, "z")}));
  add(m, clusterIp("ns2", "c", {"10.0.0.1"}));
  auto s = build(m);
  const char* ptr = "1.0.0.10.in-addr.arpa";
  // Sorted by wire bytes (length byte first), as documented in snapshot.h.
  CHECK(answerNames(*s, ptr, dns::kTypePTR) ==
        V{"c.ns2.svc.cluster.local.", "x.b.ns1.svc.cluster.local.", "y.a.ns1.svc.cluster.local."});
  // One service leaves: the others stay; then one is left; then none.
  m.services.erase("ns1/a");
  auto s2 = Snapshot::rebuildService(*s, m, "ns1/a");
  CHECK(answerNames(*s2, ptr, dns::kTypePTR) == V{"c.ns2.svc.cluster.local.", "x.b.ns1.svc.cluster.local."});
  CHECK(look(*s2, "2.0.0.10.in-addr.arpa", dns::kTypePTR).kind == Kind::kNotInZone);
  m.services.erase("ns2/c");
  auto s3 = Snapshot::rebuildService(*s2, m, "ns2/c");
  CHECK(answerNames(*s3, ptr, dns::kTypePTR) == V{"x.b.ns1.svc.cluster.local."});
  m.services.erase("ns1/b");
  auto s4 = Snapshot::rebuildService(*s3, m, "ns1/b");
  CHECK(look(*s4, ptr, dns::kTypePTR).kind == Kind::kNotInZone);
  // And back: a second service joins the one that names it.
  add(m, headless("ns1", "a"));
  auto s5 = Snapshot::rebuildService(*s4, m, "ns1/a");
  add(m, headless("ns1", "b"));
  auto s6 = Snapshot::rebuildService(*s5, m, "ns1/b");
  CHECK(answerNames(*s6, ptr, dns::kTypePTR) == V{"x.b.ns1.svc.cluster.local.", "y.a.ns1.svc.cluster.local."});
  CHECK(answerNames(*s, ptr, dns::kTypePTR).size() == 3);  // earlier snapshots are untouched
  CHECK(answerNames(*s3, ptr, dns::kTypePTR).size() == 1);
}

namespace {

// Everything a lookup returns, as text: kind, records, additional records.
std::string describe(const Lookup& l) {
  std::string out = std::to_string(static_cast<int>(l.kind));
  if (l.kind != Kind::kAnswer) return out;
  out += " " + std::to_string(l.answer->type);
  for (const auto& r : l.answer->rdatas) out += " " + dns::wireToText(std::string(r.bytes));
  for (const auto& e : l.additional) {
    out += " +" + dns::wireToText(e.ownerWire);
    for (const auto& r : e.rrset->rdatas) out += " " + dns::wireToText(std::string(r.bytes));
  }
  return out;
}

}  // namespace

TEST_CASE("rebuildService: hundreds of updates answer as a full build of the same model") {
  // 240 headless services in 12 namespaces whose endpoints share addresses (merged PTRs), and
  // a ClusterIP service per namespace; then 600 updates chosen by a fixed LCG, each one
  // compared with a full build over every name and address the test ever used.
  ClusterModel m;
  uint32_t rng = 12345;
  auto next = [&](uint32_t n) {
    rng = rng * 1103515245u + 12345u;
    return (rng >> 8) % n;
  };
  auto ipOf = [](uint32_t i) { return "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1); };
  auto setService = [&](uint32_t k) {
    const std::string ns = "ns" + std::to_string(k % 12), name = "s" + std::to_string(k);
    add(m, headless(ns.c_str(), name.c_str()));
    std::vector<Endpoint> eps;
    const uint32_t count = next(6);  // 0: no endpoint, NXDOMAIN
    for (uint32_t e = 0; e < count; ++e) {
      const std::string ip = ipOf(next(400));
      eps.push_back(ep({ip.c_str()}, next(2) ? ("h" + std::to_string(next(4))).c_str() : "", next(5) != 0));
    }
    add(m, slice(ns.c_str(), (name + "-1").c_str(), name.c_str(), eps, {port("http", uint16_t(80 + next(2)))}));
  };
  for (uint32_t k = 0; k < 240; ++k) setService(k);
  for (uint32_t n = 0; n < 12; ++n) {
    const std::string ns = "ns" + std::to_string(n), ip = ipOf(n * 30);
    add(m, clusterIp(ns.c_str(), "api", {ip.c_str()}, {port("https", 443)}));
  }
  std::vector<std::string> names;
  for (uint32_t k = 0; k < 240; ++k) {
    const std::string svc = "s" + std::to_string(k) + ".ns" + std::to_string(k % 12) + ".svc.cluster.local";
    names.push_back(svc);
    names.push_back("_http._tcp." + svc);
    names.push_back("_tcp." + svc);
    for (int h = 0; h < 4; ++h) names.push_back("h" + std::to_string(h) + "." + svc);
  }
  for (uint32_t n = 0; n < 12; ++n) names.push_back("ns" + std::to_string(n) + ".svc.cluster.local");
  for (uint32_t i = 0; i < 400; i += 3) {
    IpAddr a = ip(ipOf(i).c_str());
    names.push_back(std::to_string(a.bytes[3]) + "." + std::to_string(a.bytes[2]) + ".1.10.in-addr.arpa");
    std::string dashed = a.text();
    std::replace(dashed.begin(), dashed.end(), '.', '-');
    names.push_back(dashed + ".s" + std::to_string(i % 240) + ".ns" + std::to_string(i % 12) + ".svc.cluster.local");
  }
  auto s = build(m);
  for (int step = 0; step < 600; ++step) {
    const uint32_t k = next(240);
    const std::string key = "ns" + std::to_string(k % 12) + "/s" + std::to_string(k);
    if (next(4) == 0) {
      m.services.erase(key);  // its slice stays: counted as skipped, serves nothing
    } else {
      setService(k);
    }
    s = Snapshot::rebuildService(*s, m, key);
    if (step % 60 != 59) continue;
    CAPTURE(step);
    auto full = build(m);
    CHECK(s->serviceCount() == full->serviceCount());
    CHECK(s->endpointCount() == full->endpointCount());
    for (const auto& n : names) {
      CAPTURE(n);
      for (uint16_t t : {dns::kTypeA, dns::kTypeSRV, dns::kTypePTR})
        CHECK(describe(look(*s, n.c_str(), t)) == describe(look(*full, n.c_str(), t)));
    }
  }
}
