#include <doctest/doctest.h>

#include "hdnsd/dns/name.h"
#include "hdnsd/upstream/upstreams.h"

using namespace hdnsd;

namespace {
std::string wire(const char* text) {
  std::string w;
  dns::textToWire(text, &w);
  return w;
}
}  // namespace

TEST_CASE("parseResolvConf: nameserver lines in order, port 53, comments and scoped IPv6 skipped") {
  auto v = upstream::parseResolvConf(
      "# generated\nsearch default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\n"
      "  nameserver\t10.0.0.2   # second\nnameserver fe80::1%eth0\nnameserver ::1\nnameserverx 1.2.3.4\n"
      "options ndots:5\nnameserver not-an-ip\n");
  REQUIRE(v.size() == 3);
  CHECK(v[0].text() == "10.96.0.10:53");
  CHECK(v[1].text() == "10.0.0.2:53");
  CHECK(v[2].text() == "[::1]:53");
  CHECK(upstream::parseResolvConf("").empty());
}

TEST_CASE("parseStubZone: domain, servers, tcp; errors name the problem") {
  auto z = upstream::parseStubZone("Cluster.Local.=10.96.0.10:53,10.96.0.11:5353,tcp");
  REQUIRE(z);
  CHECK(z->domain == "cluster.local");
  REQUIRE(z->servers.size() == 2);
  CHECK(z->servers[1].text() == "10.96.0.11:5353");
  CHECK(z->tcp);
  CHECK(upstream::stubZoneText(*z) == "cluster.local=10.96.0.10:53,10.96.0.11:5353,tcp");
  CHECK_FALSE(upstream::parseStubZone("cluster.local"));
  CHECK_FALSE(upstream::parseStubZone("=1.2.3.4:53"));
  CHECK_FALSE(upstream::parseStubZone("a.b=1.2.3.4"));        // no port
  CHECK_FALSE(upstream::parseStubZone("a.b=tcp"));            // no server
}

TEST_CASE("UpstreamPlan: longest suffix wins, one set per distinct server list, default for the rest") {
  config::Config c;
  c.listen = {*SockAddr::parse("127.0.0.1:53")};
  c.upstreams = {*SockAddr::parse("10.0.0.1:53")};
  c.stubZones.push_back(*upstream::parseStubZone("corp=10.1.0.1:53"));
  c.stubZones.push_back(*upstream::parseStubZone("eu.corp=10.2.0.1:53,tcp"));
  c.stubZones.push_back(*upstream::parseStubZone("other=10.0.0.1:53"));  // same as default: shared channel
  auto p = upstream::UpstreamPlan::make(c, "");
  REQUIRE(p);
  REQUIRE(p->sets().size() == 3);
  CHECK(p->route(wire("www.example.com")) == p->defaultSet());
  CHECK(p->sets()[p->route(wire("a.corp"))].name == "corp");
  CHECK(p->sets()[p->route(wire("x.eu.corp"))].name == "eu.corp");
  CHECK(p->sets()[p->route(wire("x.eu.corp"))].tcp);
  CHECK(p->sets()[p->route(wire("neu.corp"))].name == "corp");  // label-aligned, not a string suffix
  CHECK(p->route(wire("x.other")) == p->defaultSet());
}

TEST_CASE("UpstreamPlan: our own listen address is a forwarding loop") {
  config::Config c;
  c.listen = {*SockAddr::parse("127.0.0.1:5353")};
  c.upstreams = {*SockAddr::parse("127.0.0.1:5353")};
  auto p = upstream::UpstreamPlan::make(c, "");
  REQUIRE_FALSE(p);
  CHECK(p.error().find("forwarding loop") != std::string::npos);

  c.listen = {*SockAddr::parse("0.0.0.0:53")};  // a wildcard listener answers on loopback too
  c.upstreams = {*SockAddr::parse("127.0.0.53:53")};
  CHECK_FALSE(upstream::UpstreamPlan::make(c, ""));

  // From resolv.conf our own address is skipped with a warning, the others kept.
  c.upstreams.clear();
  auto q = upstream::UpstreamPlan::make(c, "nameserver 127.0.0.1\nnameserver 10.0.0.9\n");
  REQUIRE(q);
  REQUIRE(q->sets().size() == 1);
  CHECK(q->sets()[0].servers.size() == 1);
  CHECK(q->warnings.size() == 1);

  auto none = upstream::UpstreamPlan::make(c, "nameserver 127.0.0.1\n");
  REQUIRE(none);
  CHECK(none->defaultSet() == upstream::UpstreamPlan::kNone);
  CHECK(none->route(wire("example.com")) == upstream::UpstreamPlan::kNone);
}
