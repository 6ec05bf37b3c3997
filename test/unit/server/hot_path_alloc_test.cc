// The query hot path — receive, parse, look up, write, send — does no heap allocation per
// query. Shown, not claimed: a real UDP listener and a TCP listener on a real libuv loop answer
// real queries from a client socket while every malloc in the process is counted.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

#include "../../support/alloc_counter.h"
#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/ops/query_observer.h"
#include "hdnsd/query/responder.h"
#include "hdnsd/server/tcp_listener.h"
#include "hdnsd/server/udp_listener.h"

namespace {

using namespace hdnsd;

cluster::ClusterModel headlessModel() {
  cluster::ClusterModel m;
  cluster::Service s;
  s.ns = "demo";
  s.name = "web";
  s.headless = true;
  s.ports.push_back({"http", 80, cluster::Protocol::kTcp});
  m.services["demo/web"] = s;
  cluster::EndpointSlice sl;
  sl.ns = "demo";
  sl.name = "web-abc";
  sl.serviceName = "web";
  sl.ports.push_back({"http", 8080, cluster::Protocol::kTcp});
  for (int i = 1; i <= 4; ++i) {
    cluster::Endpoint e;
    e.addresses.push_back(*cluster::IpAddr::parse("10.0.0." + std::to_string(i)));
    e.hostname = "web-" + std::to_string(i);
    sl.endpoints.push_back(e);
  }
  m.upsertSlice("demo/web-abc", sl);
  return m;
}

// A query for web.demo.svc.cluster.local (type given) with an EDNS OPT, as dig sends it.
std::vector<uint8_t> makeQuery(uint16_t id, uint16_t qtype) {
  std::vector<uint8_t> q = {uint8_t(id >> 8), uint8_t(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
  for (const char* label : {"web", "demo", "svc", "cluster", "local"}) {
    q.push_back(uint8_t(std::strlen(label)));
    q.insert(q.end(), label, label + std::strlen(label));
  }
  q.insert(q.end(), {0, uint8_t(qtype >> 8), uint8_t(qtype), 0, 1});
  q.insert(q.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});  // OPT: root, 1232, no options
  return q;
}

struct Fixture {
  uv_loop_t loop{};
  query::QueryStats stats;
  query::Responder responder{query::ResponderOptions{}, stats};
  Fixture() {
    uv_loop_init(&loop);
    responder.setSnapshot(cluster::Snapshot::build(headlessModel(), cluster::ViewOptions{}));
  }
  ~Fixture() {
    responder.setSnapshot(nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);  // deliver close callbacks
    CHECK(uv_loop_close(&loop) == 0);
  }
  // Turns the loop until `fd` has `want` bytes or more to read, or 2000 turns pass.
  ssize_t pumpAndRead(int fd, uint8_t* buf, size_t len) {
    for (int i = 0; i < 2000; ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
      if (n > 0) return n;
    }
    return -1;
  }
};

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

}  // namespace

TEST_CASE("hot path: a UDP query is answered without one heap allocation") {
  Fixture f;
  server::UdpListener udp(&f.loop, f.responder, f.stats);
  REQUIRE(udp.bind(*SockAddr::parse("127.0.0.1:0")));
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to = loopback(udp.port());
  auto query = makeQuery(0x1234, 1);
  std::array<uint8_t, 1500> answer{};

  auto roundTrip = [&](uint16_t id) {
    query[0] = uint8_t(id >> 8);
    query[1] = uint8_t(id);
    REQUIRE(sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
            ssize_t(query.size()));
    ssize_t n = f.pumpAndRead(fd, answer.data(), answer.size());
    REQUIRE(n > 12);
    CHECK(answer[0] == uint8_t(id >> 8));
    CHECK(answer[1] == uint8_t(id));
    CHECK(answer[7] == 4);  // ANCOUNT: the four ready endpoints
  };
  for (uint16_t i = 0; i < 50; ++i) roundTrip(i);  // warm-up: lazily created state settles

  // Counting covers only the server's side: the client's sendto/recv do not allocate either.
  hdnsd::test::startCountingAllocations();
  for (uint16_t i = 0; i < 1000; ++i) roundTrip(uint16_t(1000 + i));
  uint64_t allocations = hdnsd::test::stopCountingAllocations();
  CHECK(allocations == 0);
  CHECK(f.stats.queries[0][0][0].load() == 1050);  // udp, A, NOERROR
  close(fd);
  udp.close();
}

TEST_CASE("hot path: policy-ordered answers (every --policy, weights, topology, --max-answers) allocate nothing") {
  // A 40-endpoint headless service with weights, nodes and zones, so every policy has data
  // to work with; answered through the real UDP listener.
  cluster::ClusterModel m = headlessModel();
  m.services["demo/web"].annotations["hdnsd.io/weights"] = R"({"zone/z1": 3, "pod/web-2": 5})";
  cluster::EndpointSlice slice = m.slices().at("demo/web-abc");
  auto& eps = slice.endpoints;
  for (int i = 5; i <= 40; ++i) {
    cluster::Endpoint e;
    e.addresses.push_back(*cluster::IpAddr::parse("10.0.1." + std::to_string(i)));
    e.nodeName = "node-" + std::to_string(i % 4);
    e.zone = i % 2 ? "z1" : "z2";
    e.podName = "web-" + std::to_string(i);
    eps.push_back(e);
  }
  m.upsertSlice("demo/web-abc", std::move(slice));
  cluster::ViewOptions vo;
  vo.nodeName = "node-1";
  vo.policy = policy::Kind::kTopology;
  Fixture f;
  f.responder.setSnapshot(cluster::Snapshot::build(m, vo));
  server::UdpListener udp(&f.loop, f.responder, f.stats);
  REQUIRE(udp.bind(*SockAddr::parse("127.0.0.1:0")));
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to = loopback(udp.port());
  std::array<uint8_t, 4096> answer{};
  for (policy::Kind k : {policy::Kind::kNone, policy::Kind::kRoundRobin, policy::Kind::kRandom,
                         policy::Kind::kWeighted, policy::Kind::kTopology, policy::Kind::kConsistent}) {
    for (uint32_t cap : {0u, 8u}) {
      CAPTURE(policy::kindName(k));
      CAPTURE(cap);
      query::ResponderOptions ro;
      ro.spread = {k, cap, 1234};
      ro.maxUdpAmplification = 0;  // the counts below are of whole answers (the cap is tested elsewhere)
      f.responder.setOptions(ro);  // control path: may allocate (outside the count)
      for (uint16_t qtype : {uint16_t(1), uint16_t(33)}) {
        auto query = makeQuery(9, 1);
        if (qtype == 33) {  // _http._tcp.web.demo.svc.cluster.local SRV
          query = {0, 9, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
          for (const char* label : {"_http", "_tcp", "web", "demo", "svc", "cluster", "local"}) {
            query.push_back(uint8_t(std::strlen(label)));
            query.insert(query.end(), label, label + std::strlen(label));
          }
          query.insert(query.end(), {0, 0, 33, 0, 1, 0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0});
        }
        auto roundTrip = [&] {
          REQUIRE(sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
                  ssize_t(query.size()));
          ssize_t n = f.pumpAndRead(fd, answer.data(), answer.size());
          REQUIRE(n > 12);
          const int an = answer[6] << 8 | answer[7];
          if (qtype == 33 && cap == 0)
            CHECK((an == 0 && (answer[2] & 0x02)));  // 40 SRV do not fit in 1232 bytes: TC
          else
            CHECK(an == (cap ? 8 : 40));
        };
        for (int i = 0; i < 10; ++i) roundTrip();
        hdnsd::test::startCountingAllocations();
        for (int i = 0; i < 200; ++i) roundTrip();
        CHECK(hdnsd::test::stopCountingAllocations() == 0);
      }
    }
  }
  close(fd);
  udp.close();
}

TEST_CASE("hot path: pipelined TCP queries are answered without a heap allocation per query") {
  Fixture f;
  server::TcpListener tcp(&f.loop, f.responder, f.stats, server::TcpLimits{});
  REQUIRE(tcp.bind(*SockAddr::parse("127.0.0.1:0")));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to = loopback(tcp.port());
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  auto query = makeQuery(7, 1);
  std::vector<uint8_t> framed = {uint8_t(query.size() >> 8), uint8_t(query.size())};
  framed.insert(framed.end(), query.begin(), query.end());
  std::array<uint8_t, 4096> answer{};

  auto roundTrip = [&] {
    REQUIRE(send(fd, framed.data(), framed.size(), 0) == ssize_t(framed.size()));
    ssize_t n = f.pumpAndRead(fd, answer.data(), answer.size());
    REQUIRE(n > 14);
    CHECK(size_t(answer[0] << 8 | answer[1]) == size_t(n) - 2);
  };
  for (int i = 0; i < 20; ++i) roundTrip();  // the connection's read buffer is made here
  hdnsd::test::startCountingAllocations();
  for (int i = 0; i < 500; ++i) roundTrip();
  uint64_t allocations = hdnsd::test::stopCountingAllocations();
  CHECK(allocations == 0);
  close(fd);
  tcp.stopAccepting();
  tcp.closeAll();
}

TEST_CASE("hot path: the allocation counter sees allocations (so the zero above means something)") {
  hdnsd::test::startCountingAllocations();
  auto* leakCheck = new std::vector<int>(100);  // two allocations: the vector and its storage
  void* c = std::malloc(64);                    // and one from C code
  // Keep the compiler from eliding the allocations (C++14 lets it drop new/delete pairs).
  asm volatile("" : : "g"(leakCheck), "g"(c) : "memory");
  uint64_t n = hdnsd::test::stopCountingAllocations();
  delete leakCheck;
  std::free(c);
#if defined(__SANITIZE_ADDRESS__)
  // Under ASan its own malloc interceptor wins over test/support/alloc_counter's, so C mallocs
  // are not seen there; operator new still is (the hot-path checks then count only those).
  CHECK(n >= 2);
#else
  CHECK(n >= 3);
#endif
}

// Forwarding (issue 4): a name outside the cluster zone found in the cache is answered on the
// same allocation-free path (cache lookup copies into the listener's buffer).
#include "hdnsd/cache/cache.h"
#include "hdnsd/metrics/registry.h"
#include "hdnsd/upstream/forwarder.h"

namespace {

std::vector<uint8_t> outsideQuery(uint16_t id) {
  std::vector<uint8_t> q = {uint8_t(id >> 8), uint8_t(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
                            3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
  q.insert(q.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});
  return q;
}

// A responder that forwards names outside the zone to an upstream that is never asked: every
// query for outsideQuery's name is answered from the cache, which holds www.example.com with one
// A record (TTL 3600) per address given; a UDP listener and a client socket in front.
struct CachedForwarding {
  Fixture f;
  metrics::Registry reg;
  cache::Cache cache{cache::Config{}};
  upstream::Forwarder fwd{&f.loop, f.stats, &cache};
  std::vector<uint8_t> query = outsideQuery(0x4242);
  dns::Query q;
  std::array<uint8_t, 1500> answer{};
  server::UdpListener udp{&f.loop, f.responder, f.stats};
  int fd = -1;
  sockaddr_in to{};

  CachedForwarding(const query::ResponderOptions& ro, std::initializer_list<uint8_t> lastOctets) {
    f.responder.setOptions(ro);
    config::Config cfg;
    cfg.listen = {*SockAddr::parse("127.0.0.1:53")};
    cfg.upstreams = {*SockAddr::parse("127.0.0.1:9")};
    auto plan = upstream::UpstreamPlan::make(cfg, "");
    REQUIRE(plan);
    REQUIRE(fwd.configure(*plan, upstream::ForwarderOptions{}, reg));
    f.responder.setForwarder(&fwd);
    REQUIRE(dns::parseQuery(query, &q));
    std::vector<uint8_t> upstreamAnswer(query.begin(), query.begin() + long(q.questionEnd));
    upstreamAnswer[2] = 0x81;
    upstreamAnswer[3] = 0x80;
    upstreamAnswer[7] = uint8_t(lastOctets.size());  // ANCOUNT
    upstreamAnswer[11] = 0;                          // no OPT
    for (uint8_t last : lastOctets)
      upstreamAnswer.insert(upstreamAnswer.end(), {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, last});
    REQUIRE(cache::stored(cache.insert(cache.makeKey(q), upstreamAnswer, uv_now(&f.loop))));
    REQUIRE(udp.bind(*SockAddr::parse("127.0.0.1:0")));
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    to = loopback(udp.port());
  }
  ~CachedForwarding() {
    f.stats.tap = nullptr;
    close(fd);
    udp.close();
    f.responder.setForwarder(nullptr);
  }
  // Sends the query with this ID; returns the answer's size (checked: ID echoed, ANCOUNT).
  size_t roundTrip(uint16_t id, uint8_t ancount) {
    query[0] = uint8_t(id >> 8);
    query[1] = uint8_t(id);
    REQUIRE(sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
            ssize_t(query.size()));
    ssize_t n = f.pumpAndRead(fd, answer.data(), answer.size());
    REQUIRE(n > 12);
    CHECK(answer[0] == uint8_t(id >> 8));
    CHECK(answer[1] == uint8_t(id));
    CHECK(answer[7] == ancount);
    return size_t(n);
  }
};

}  // namespace

TEST_CASE("hot path: a cache hit for a forwarded name is answered without one heap allocation") {
  CachedForwarding c(query::ResponderOptions{}, {1});
  for (uint16_t i = 0; i < 50; ++i) c.roundTrip(i, 1);
  hdnsd::test::startCountingAllocations();
  for (uint16_t i = 0; i < 1000; ++i) c.roundTrip(uint16_t(1000 + i), 1);
  uint64_t allocations = hdnsd::test::stopCountingAllocations();
  CHECK(allocations == 0);
  CHECK(c.cache.stats().hits.load() == 1050);
}

TEST_CASE("hot path: timing (latency histograms) and the query log allocate nothing per query") {
  Fixture f;
  metrics::Registry reg;
  ops::QueryObserver observer(reg);
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  REQUIRE(devnull >= 0);
  ops::QueryLogOptions lo;
  lo.enabled = true;  // every query: the worst case
  lo.fd = devnull;
  lo.format = log::Format::kJson;
  observer.setLog(lo);
  f.stats.tap = &observer;
  server::UdpListener udp(&f.loop, f.responder, f.stats);
  REQUIRE(udp.bind(*SockAddr::parse("127.0.0.1:0")));
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to = loopback(udp.port());
  auto query = makeQuery(0x1234, 1);
  std::array<uint8_t, 1500> answer{};
  auto roundTrip = [&](uint16_t id) {
    query[0] = uint8_t(id >> 8);
    query[1] = uint8_t(id);
    REQUIRE(sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
            ssize_t(query.size()));
    REQUIRE(f.pumpAndRead(fd, answer.data(), answer.size()) > 12);
  };
  for (uint16_t i = 0; i < 50; ++i) roundTrip(i);
  hdnsd::test::startCountingAllocations();
  for (uint16_t i = 0; i < 1000; ++i) roundTrip(uint16_t(1000 + i));
  uint64_t allocations = hdnsd::test::stopCountingAllocations();
  CHECK(allocations == 0);
  CHECK(observer.logged() == 1050);
  // Every answer was observed once, under source="view".
  CHECK(reg.render().find("hdnsd_dns_query_duration_seconds_count{source=\"view\"} 1050") != std::string::npos);
  f.stats.tap = nullptr;
  close(fd);
  close(devnull);
  udp.close();
}

TEST_CASE("hot path: a client outside --allow is REFUSED without one heap allocation") {
  Fixture f;
  query::ResponderOptions ro;
  ro.allow = {"10.0.0.0/8"};  // 127.0.0.1 is outside
  f.responder.setOptions(ro);
  server::UdpListener udp(&f.loop, f.responder, f.stats);
  REQUIRE(udp.bind(*SockAddr::parse("127.0.0.1:0")));
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to = loopback(udp.port());
  auto query = makeQuery(0x1234, 1);
  std::array<uint8_t, 1500> answer{};
  auto roundTrip = [&] {
    REQUIRE(sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
            ssize_t(query.size()));
    ssize_t n = f.pumpAndRead(fd, answer.data(), answer.size());
    REQUIRE(n > 12);
    CHECK((answer[3] & 0x0f) == 5);  // REFUSED
    CHECK(answer[7] == 0);
  };
  for (int i = 0; i < 20; ++i) roundTrip();
  hdnsd::test::startCountingAllocations();
  for (int i = 0; i < 500; ++i) roundTrip();
  CHECK(hdnsd::test::stopCountingAllocations() == 0);
  CHECK(f.stats.aclRefused.load() == 520);
  close(fd);
  udp.close();
}

// The daemon's cache-hit path in full: the answer's two-record A RRset rotated by the spreader
// (--policy round-robin) and every answer timed by the query tap (latency histogram, source
// "cache"). Still no allocation per query.
TEST_CASE("hot path: a cache hit with a rotated RRset and the query tap allocates nothing") {
  query::ResponderOptions ro;
  ro.spread = {policy::Kind::kRoundRobin, 0, 1234};
  CachedForwarding c(ro, {1, 2});  // www.example.com A 192.0.2.1, A 192.0.2.2
  ops::QueryObserver observer(c.reg);
  c.f.stats.tap = &observer;
  size_t firstIs[3] = {0, 0, 0};  // by the last octet of the first record's address
  auto ask = [&](uint16_t id) {
    const size_t n = c.roundTrip(id, 2);
    const size_t firstRdata = c.q.questionEnd + 12;  // the first record: pointer, type .. RDLENGTH
    REQUIRE(n >= firstRdata + 4);
    ++firstIs[c.answer[firstRdata + 3] <= 2 ? c.answer[firstRdata + 3] : 0];
  };
  for (uint16_t i = 0; i < 50; ++i) ask(i);
  hdnsd::test::startCountingAllocations();
  for (uint16_t i = 0; i < 1000; ++i) ask(uint16_t(1000 + i));
  uint64_t allocations = hdnsd::test::stopCountingAllocations();
  CHECK(allocations == 0);
  CHECK(c.cache.stats().hits.load() == 1050);
  CHECK(firstIs[0] == 0);
  CHECK(firstIs[1] == 525);  // round-robin: each address first every other time
  CHECK(firstIs[2] == 525);
  CHECK(c.reg.render().find("hdnsd_dns_query_duration_seconds_count{source=\"cache\"} 1050") != std::string::npos);
  c.f.stats.tap = nullptr;  // the observer goes first
}
