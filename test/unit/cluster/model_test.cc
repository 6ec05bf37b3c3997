#include "hdnsd/cluster/model.h"

#include <doctest/doctest.h>

using hdnsd::cluster::IpAddr;

TEST_CASE("IpAddr::parse: IPv4 bytes in network order") {
  auto a = IpAddr::parse("10.244.1.10");
  REQUIRE(a.has_value());
  CHECK(a->family == 4);
  CHECK(a->size() == 4);
  CHECK(a->bytes[0] == 10);
  CHECK(a->bytes[1] == 244);
  CHECK(a->bytes[2] == 1);
  CHECK(a->bytes[3] == 10);
  CHECK(a->text() == "10.244.1.10");
}

TEST_CASE("IpAddr::parse: IPv6, printed in RFC 5952 form") {
  auto a = IpAddr::parse("FD00:0010:0096:0000:0000:0000:0000:0020");
  REQUIRE(a.has_value());
  CHECK(a->family == 6);
  CHECK(a->size() == 16);
  CHECK(a->bytes[0] == 0xfd);
  CHECK(a->bytes[1] == 0x00);
  CHECK(a->bytes[3] == 0x10);
  CHECK(a->bytes[15] == 0x20);
  CHECK(a->text() == "fd00:10:96::20");
  // A single zero group is not compressed (RFC 5952 4.2.2).
  CHECK(IpAddr::parse("1:0:2:3:4:5:6:7")->text() == "1:0:2:3:4:5:6:7");
}

TEST_CASE("IpAddr::parse: rejects what the API server would") {
  CHECK_FALSE(IpAddr::parse("").has_value());
  CHECK_FALSE(IpAddr::parse("10.0.0").has_value());
  CHECK_FALSE(IpAddr::parse("10.0.0.256").has_value());
  CHECK_FALSE(IpAddr::parse("010.0.0.1").has_value());  // leading zero: ambiguous (octal)
  CHECK_FALSE(IpAddr::parse(" 10.0.0.1").has_value());
  CHECK_FALSE(IpAddr::parse("fe80::1%eth0").has_value());
  CHECK_FALSE(IpAddr::parse("1:2:3").has_value());
  CHECK_FALSE(IpAddr::parse("None").has_value());
}

TEST_CASE("IpAddr: equality and order (IPv4 before IPv6, then bytes)") {
  auto a = *IpAddr::parse("10.0.0.2"), b = *IpAddr::parse("10.0.0.10"), c = *IpAddr::parse("::1");
  CHECK(a == *IpAddr::parse("10.0.0.2"));
  CHECK_FALSE(a == b);
  CHECK(a < b);  // bytewise, not textual ("10.0.0.10" < "10.0.0.2" as text)
  CHECK(b < c);
  CHECK_FALSE(c < a);
}

TEST_CASE("ClusterModel: the per-service slice index follows upserts, relabels and erases") {
  using namespace hdnsd::cluster;
  ClusterModel m;
  EndpointSlice a;
  a.ns = "demo";
  a.name = "web-1";
  a.serviceName = "web";
  m.upsertSlice("demo/web-1", a);
  EndpointSlice other = a;
  other.name = "web-2";
  m.upsertSlice("demo/web-2", other);
  EndpointSlice elsewhere = a;
  elsewhere.ns = "prod";  // same service name, another namespace: another service
  m.upsertSlice("prod/web-1", elsewhere);
  CHECK(m.sliceKeysOf("demo/web") == std::set<std::string>{"demo/web-1", "demo/web-2"});
  CHECK(m.sliceKeysOf("prod/web") == std::set<std::string>{"prod/web-1"});

  a.serviceName = "api";  // relabelled: the slice moves to the other service
  m.upsertSlice("demo/web-1", a);
  CHECK(m.sliceKeysOf("demo/web") == std::set<std::string>{"demo/web-2"});
  CHECK(m.sliceKeysOf("demo/api") == std::set<std::string>{"demo/web-1"});

  m.eraseSlice("demo/web-2");
  m.eraseSlice("demo/nope");  // absent: no-op
  CHECK(m.sliceKeysOf("demo/web").empty());
  CHECK(m.slices().size() == 2);
}
