// The query pipeline's decisions, checked on the wire bytes it writes (header fields read
// by hand here, not with our own parser).
#include "hdnsd/query/responder.h"
#include "hdnsd/upstream/forwarder.h"

#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

namespace {

using namespace hdnsd;

std::vector<uint8_t> makeQuery(const std::vector<std::string>& labels, uint16_t qtype, uint16_t flags = 0x0100,
                           bool edns = false, uint8_t ednsVersion = 0, uint16_t qdcount = 1,
                           uint16_t qclass = 1) {
  std::vector<uint8_t> q = {0xab, 0xcd, uint8_t(flags >> 8), uint8_t(flags), uint8_t(qdcount >> 8),
                            uint8_t(qdcount), 0, 0, 0, 0, 0, uint8_t(edns ? 1 : 0)};
  for (const auto& l : labels) {
    q.push_back(uint8_t(l.size()));
    q.insert(q.end(), l.begin(), l.end());
  }
  q.insert(q.end(), {0, uint8_t(qtype >> 8), uint8_t(qtype), uint8_t(qclass >> 8), uint8_t(qclass)});
  if (edns) q.insert(q.end(), {0, 0, 41, 0x10, 0x00, 0, ednsVersion, 0, 0, 0, 0});  // 4096 bytes
  return q;
}

struct Reply {
  std::vector<uint8_t> bytes;
  uint16_t flags() const { return uint16_t(bytes[2] << 8 | bytes[3]); }
  int rcode() const { return bytes[3] & 0x0f; }
  bool aa() const { return flags() & 0x0400; }
  bool tc() const { return flags() & 0x0200; }
  uint16_t count(int i) const { return uint16_t(bytes[4 + 2 * i] << 8 | bytes[5 + 2 * i]); }
};

cluster::ClusterModel bigHeadless(int endpoints) {
  cluster::ClusterModel m;
  cluster::Service s;
  s.ns = "demo";
  s.name = "big";
  s.headless = true;
  m.services["demo/big"] = s;
  cluster::EndpointSlice sl;
  sl.ns = "demo";
  sl.name = "big-1";
  sl.serviceName = "big";
  for (int i = 0; i < endpoints; ++i) {
    cluster::Endpoint e;
    e.addresses.push_back(*cluster::IpAddr::parse("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1)));
    sl.endpoints.push_back(e);
  }
  m.upsertSlice("demo/big-1", sl);
  return m;
}

struct Fixture {
  query::QueryStats stats;
  query::Responder r{query::ResponderOptions{}, stats};
  std::array<uint8_t, 65535> out{};
  Reply ask(const std::vector<uint8_t>& q, query::Transport t = query::Transport::kUdp) {
    size_t n = r.respond(q, out, t);
    return Reply{{out.begin(), out.begin() + long(n)}};
  }
};

const std::vector<std::string> kBig = {"big", "demo", "svc", "cluster", "local"};

}  // namespace

TEST_CASE("responder: before the view loads, cluster names get SERVFAIL and others REFUSED") {
  Fixture f;
  auto a = f.ask(makeQuery(kBig, 1));
  CHECK(a.rcode() == 2);
  CHECK(a.bytes[0] == 0xab);
  auto b = f.ask(makeQuery({"example", "com"}, 1));
  CHECK(b.rcode() == 5);
}

TEST_CASE("responder: header-level errors") {
  Fixture f;
  f.r.setSnapshot(cluster::Snapshot::build(bigHeadless(3), {}));
  SUBCASE("QDCOUNT 2 is FORMERR with the ID echoed and no question") {
    auto q = makeQuery(kBig, 1, 0x0100, false, 0, 2);
    auto a = f.ask(q);
    REQUIRE(a.bytes.size() == 12);
    CHECK(a.rcode() == 1);
    CHECK(a.bytes[0] == 0xab);
    CHECK(a.bytes[1] == 0xcd);
    CHECK(a.count(0) == 0);
  }
  SUBCASE("QDCOUNT 0 is FORMERR") { CHECK(f.ask(makeQuery(kBig, 1, 0x0100, false, 0, 0)).rcode() == 1); }
  SUBCASE("a response (QR=1) is never answered") { CHECK(f.ask(makeQuery(kBig, 1, 0x8100)).bytes.empty()); }
  SUBCASE("fewer than 12 bytes cannot be answered") {
    std::vector<uint8_t> shortPkt = {0xab, 0xcd, 1, 0, 0};
    CHECK(f.ask(shortPkt).bytes.empty());
  }
  SUBCASE("opcode STATUS (2) is NOTIMP") {
    auto a = f.ask(makeQuery(kBig, 1, 0x1100));
    CHECK(a.rcode() == 4);
    CHECK(((a.flags() >> 11) & 0xf) == 2);  // opcode echoed
  }
  SUBCASE("EDNS version 1 is BADVERS: extended rcode 1 in the OPT, 0 in the header") {
    auto a = f.ask(makeQuery(kBig, 1, 0x0100, true, 1));
    CHECK(a.rcode() == 0);
    REQUIRE(a.count(3) == 1);
    // The OPT is the last 11 bytes: root, type 41, size, ext-rcode, version, flags, rdlen.
    const uint8_t* opt = a.bytes.data() + a.bytes.size() - 11;
    CHECK(opt[1] == 0);
    CHECK(opt[2] == 41);
    CHECK(opt[5] == 1);  // (16 >> 4): BADVERS
    CHECK(opt[6] == 0);  // we speak version 0
  }
  SUBCASE("class CHAOS and AXFR are REFUSED") {
    CHECK(f.ask(makeQuery(kBig, 1, 0x0100, false, 0, 1, 3)).rcode() == 5);
    CHECK(f.ask(makeQuery(kBig, 252)).rcode() == 5);
  }
  CHECK(f.stats.parseErrors[size_t(dns::ParseError::kQdCount)].load() <= 2);
}

TEST_CASE("responder: an answer too big for UDP gets TC=1 and no partial RRset; TCP gets it all") {
  Fixture f;
  f.r.setSnapshot(cluster::Snapshot::build(bigHeadless(60), {}));
  auto udp = f.ask(makeQuery(kBig, 1));  // no EDNS: 512 bytes allowed, 60 A records need ~1000
  CHECK(udp.rcode() == 0);
  CHECK(udp.tc());
  CHECK(udp.count(1) == 0);
  CHECK(udp.bytes.size() <= 512);
  query::ResponderOptions noCap;  // the EDNS size alone (the amplification cap is tested below)
  noCap.maxUdpAmplification = 0;
  f.r.setOptions(noCap);
  auto edns = f.ask(makeQuery(kBig, 1, 0x0100, true));  // EDNS 4096 → capped at our 1232, fits
  CHECK(!edns.tc());
  CHECK(edns.count(1) == 60);
  CHECK(edns.bytes.size() <= 1232);

  f.r.setSnapshot(cluster::Snapshot::build(bigHeadless(400), {}));
  auto udpBig = f.ask(makeQuery(kBig, 1, 0x0100, true));  // 400 × 16 bytes > 1232
  CHECK(udpBig.tc());
  CHECK(udpBig.count(1) == 0);
  CHECK(udpBig.count(3) == 1);  // the OPT is still there
  auto tcp = f.ask(makeQuery(kBig, 1, 0x0100, true), query::Transport::kTcp);
  CHECK(!tcp.tc());
  CHECK(tcp.count(1) == 400);
  CHECK(f.stats.truncated[0].load() == 2);
}

TEST_CASE("responder: cluster answers are authoritative, outside names REFUSED, counted by outcome") {
  Fixture f;
  f.r.setSnapshot(cluster::Snapshot::build(bigHeadless(2), {}));
  auto a = f.ask(makeQuery(kBig, 1));
  CHECK(a.aa());
  CHECK(a.count(1) == 2);
  auto nx = f.ask(makeQuery({"nope", "demo", "svc", "cluster", "local"}, 1));
  CHECK(nx.rcode() == 3);
  CHECK(nx.aa());
  CHECK(nx.count(2) == 1);  // SOA in authority
  auto nodata = f.ask(makeQuery(kBig, 16));
  CHECK(nodata.rcode() == 0);
  CHECK(nodata.count(1) == 0);
  CHECK(nodata.count(2) == 1);
  auto any = f.ask(makeQuery(kBig, 255));  // RFC 8482: one RRset is enough
  CHECK(any.count(1) == 2);
  auto out = f.ask(makeQuery({"example", "com"}, 1));
  CHECK(out.rcode() == 5);
  CHECK(!out.aa());
  using query::Outcome;
  CHECK(f.stats.queries[0][size_t(query::TypeBucket::kA)][size_t(Outcome::kNoError)].load() == 1);
  CHECK(f.stats.queries[0][size_t(query::TypeBucket::kA)][size_t(Outcome::kNxDomain)].load() == 1);
  CHECK(f.stats.queries[0][size_t(query::TypeBucket::kA)][size_t(Outcome::kRefused)].load() == 1);
}

// A spoofable UDP query may draw at most max(512, N × its size) bytes (--max-udp-amplification);
// the rest is TC=1 (the client asks over TCP, which cannot be spoofed).
TEST_CASE("responder: UDP answers are capped at max(512, 10 x query) bytes; TCP is not") {
  Fixture f;
  f.r.setSnapshot(cluster::Snapshot::build(bigHeadless(60), {}));  // 60 A records: ~1000 bytes
  auto q = makeQuery(kBig, 1, 0x0100, true);                       // 55 bytes: cap 550
  auto udp = f.ask(q);
  CHECK(udp.tc());
  CHECK(udp.count(1) == 0);
  CHECK(udp.bytes.size() <= std::max<size_t>(512, 10 * q.size()));
  CHECK(f.stats.udpAmplificationCapped.load() == 1);
  auto tcp = f.ask(q, query::Transport::kTcp);
  CHECK(!tcp.tc());
  CHECK(tcp.count(1) == 60);
  // A larger query (here padded with an EDNS option, as a client with a cookie or padding
  // would be) may draw a larger answer: 124 bytes → 1232 allowed, the 60 records fit.
  auto padded = q;
  padded[padded.size() - 1] = 69;  // OPT RDLEN: one option of 65 bytes (code 12, padding)
  padded.insert(padded.end(), {0, 12, 0, 65});
  padded.insert(padded.end(), 65, 0);
  auto big = f.ask(padded);
  CHECK(!big.tc());
  CHECK(big.count(1) == 60);
  // 0 turns the cap off: the EDNS size alone decides.
  query::ResponderOptions off;
  off.maxUdpAmplification = 0;
  f.r.setOptions(off);
  CHECK(!f.ask(q).tc());
}

TEST_CASE("responder: clients outside --allow get REFUSED, malformed packets from them nothing") {
  Fixture f;
  f.r.setSnapshot(cluster::Snapshot::build(bigHeadless(2), {}));
  auto from = [](const char* ip) {
    sockaddr_storage ss{};
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &in->sin_addr);
    return ss;
  };
  auto askFrom = [&](const std::vector<uint8_t>& q, const char* ip) {
    sockaddr_storage ss = from(ip);
    upstream::Client c{nullptr, reinterpret_cast<const sockaddr*>(&ss), query::Transport::kUdp};
    size_t n = f.r.respond(q, f.out, query::Transport::kUdp, &c);
    return Reply{{f.out.begin(), f.out.begin() + long(n)}};
  };
  // Default list: loopback and private ranges answer, a public address does not.
  for (const char* ok : {"127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.20.10", "100.64.0.9"})
    CHECK(askFrom(makeQuery(kBig, 1), ok).count(1) == 2);
  auto refused = askFrom(makeQuery(kBig, 1), "8.8.8.8");
  CHECK(refused.rcode() == 5);
  CHECK(refused.count(1) == 0);
  CHECK(refused.bytes.size() <= makeQuery(kBig, 1).size());  // never larger than the query
  CHECK(askFrom({0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 63}, "8.8.8.8").bytes.empty());
  CHECK(f.stats.aclRefused.load() == 2);
  // --allow replaces the default list.
  query::ResponderOptions o;
  o.allow = {"8.8.8.0/24"};
  f.r.setOptions(o);
  CHECK(askFrom(makeQuery(kBig, 1), "8.8.8.8").count(1) == 2);
  CHECK(askFrom(makeQuery(kBig, 1), "127.0.0.1").rcode() == 5);
}

TEST_CASE("acl: CIDR parsing and matching, IPv4-mapped IPv6 as IPv4") {
  CHECK(query::Cidr::parse("10.0.0.0/8")->text() == "10.0.0.0/8");
  CHECK(query::Cidr::parse("fd00::/8")->text() == "fd00::/8");
  CHECK(query::Cidr::parse("192.0.2.7")->text() == "192.0.2.7/32");
  CHECK_FALSE(query::Cidr::parse("10.1.0.0/8").has_value());  // host bits set
  CHECK_FALSE(query::Cidr::parse("10.0.0.0/33").has_value());
  CHECK_FALSE(query::Cidr::parse("10.0.0.0/").has_value());
  CHECK_FALSE(query::Cidr::parse("example.com/8").has_value());
  query::Acl acl({"172.16.0.0/12", "2001:db8::/32"});
  auto v6 = [](const char* ip) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
  };
  auto v4 = [](const char* ip) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
  };
  for (auto [ip, want] : {std::pair{"172.31.255.255", true}, {"172.32.0.0", false}, {"172.15.0.1", false}}) {
    auto a = v4(ip);
    CHECK(acl.allows(reinterpret_cast<sockaddr*>(&a)) == want);
  }
  auto mapped = v6("::ffff:172.16.0.1");
  CHECK(acl.allows(reinterpret_cast<sockaddr*>(&mapped)));
  auto in = v6("2001:db8:1::1"), out = v6("2001:db9::1");
  CHECK(acl.allows(reinterpret_cast<sockaddr*>(&in)));
  CHECK_FALSE(acl.allows(reinterpret_cast<sockaddr*>(&out)));
  query::Acl def;  // the default: loopback, link-local, private
  auto lo6 = v6("::1"), ula = v6("fd12::1"), pub6 = v6("2a00::1");
  CHECK(def.allows(reinterpret_cast<sockaddr*>(&lo6)));
  CHECK(def.allows(reinterpret_cast<sockaddr*>(&ula)));
  CHECK_FALSE(def.allows(reinterpret_cast<sockaddr*>(&pub6)));
}
