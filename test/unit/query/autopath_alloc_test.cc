// --autopath on the query path: the walk's answers (view: CNAME + the service's records; upstream:
// CNAME + X's cached answer; nothing: the first name's NXDOMAIN) are right, and make no heap
// allocation per query (the names, the query for X and both halves of the answer live on the stack
// or in buffers allocated once).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <uv.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "../../support/alloc_counter.h"
#include "hdnsd/autopath/autopath.h"
#include "hdnsd/cache/cache.h"
#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/config/config.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/metrics/registry.h"
#include "hdnsd/query/responder.h"
#include "hdnsd/upstream/forwarder.h"
#include "hdnsd/upstream/upstreams.h"

using namespace hdnsd;

namespace {

cluster::ClusterModel teamWeb() {
  cluster::ClusterModel m;
  cluster::Service s;
  s.ns = "team";
  s.name = "web";
  s.headless = true;
  s.ports.push_back({"http", 80, cluster::Protocol::kTcp});
  m.services["team/web"] = s;
  cluster::EndpointSlice sl;
  sl.ns = "team";
  sl.name = "web-abc";
  sl.serviceName = "web";
  sl.ports.push_back({"http", 8080, cluster::Protocol::kTcp});
  for (int i = 1; i <= 2; ++i) {
    cluster::Endpoint e;
    e.addresses.push_back(*cluster::IpAddr::parse("10.0.0." + std::to_string(i)));
    sl.endpoints.push_back(e);
  }
  m.upsertSlice("team/web-abc", sl);
  return m;
}

// A query for `name` A with an EDNS OPT (1232), as dig sends it.
std::vector<uint8_t> makeQuery(const std::string& name, uint16_t id = 0x4242) {
  std::vector<uint8_t> q = {uint8_t(id >> 8), uint8_t(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
  std::string w;
  REQUIRE(dns::textToWire(name, &w));
  q.insert(q.end(), w.begin(), w.end());
  q.insert(q.end(), {0, 1, 0, 1});
  q.insert(q.end(), {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});
  return q;
}

struct Setup {
  uv_loop_t loop{};
  query::QueryStats stats;
  metrics::Registry reg;
  cache::Cache cache{cache::Config{}};
  std::unique_ptr<upstream::Forwarder> fwd;
  std::unique_ptr<query::Responder> responder;
  sockaddr_in addr{};
  upstream::Client client;
  Setup() {
    uv_loop_init(&loop);
    query::ResponderOptions ro;
    ro.autopath = true;
    responder = std::make_unique<query::Responder>(ro, stats);
    responder->setSnapshot(cluster::Snapshot::build(teamWeb(), cluster::ViewOptions{}));
    responder->setPodIndex(autopath::PodIndex::build({{"demo", {"127.0.0.1"}}}));
    fwd = std::make_unique<upstream::Forwarder>(&loop, stats, &cache);
    config::Config cfg;
    cfg.listen = {*SockAddr::parse("127.0.0.1:53")};
    cfg.upstreams = {*SockAddr::parse("127.0.0.1:9")};  // never reached in these tests
    auto plan = upstream::UpstreamPlan::make(cfg, "");
    REQUIRE(plan);
    REQUIRE(fwd->configure(*plan, upstream::ForwarderOptions{}, reg));
    responder->setForwarder(fwd.get());
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    client.addr = reinterpret_cast<const sockaddr*>(&addr);
    // X's answer in the cache, as if fetched: www.example.com A 192.0.2.1, TTL 3600.
    auto xq = makeQuery("www.example.com");
    dns::Query q;
    REQUIRE(dns::parseQuery(xq, &q));
    std::vector<uint8_t> ans(xq.begin(), xq.begin() + long(q.questionEnd));
    ans[2] = 0x81;
    ans[3] = 0x80;
    ans[7] = 1;
    ans[11] = 0;
    ans.insert(ans.end(), {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1});
    REQUIRE(cache::stored(cache.insert(cache.makeKey(q), ans, uv_now(&loop))));
  }
  ~Setup() {
    responder->setForwarder(nullptr);
    fwd->closeNow();
    fwd.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  size_t ask(const std::vector<uint8_t>& q, std::span<uint8_t> out, const upstream::Client* c) {
    return responder->respond(q, out, query::Transport::kUdp, c);
  }
};

uint16_t u16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

}  // namespace

TEST_CASE("autopath: answers of the walk, and none without a pod's address") {
  Setup s;
  std::array<uint8_t, 1500> out{};
  // View: the pod asked "web.team".
  size_t n = s.ask(makeQuery("web.team.demo.svc.cluster.local"), out, &s.client);
  REQUIRE(n > 12);
  CHECK((u16(&out[2]) & 0x0F) == 0);
  CHECK(u16(&out[6]) == 3);  // CNAME + 2 A
  // Upstream, from the cache: CNAME + X's A.
  n = s.ask(makeQuery("www.example.com.demo.svc.cluster.local"), out, &s.client);
  REQUIRE(n > 12);
  CHECK((u16(&out[2]) & 0x0F) == 0);
  CHECK(u16(&out[6]) == 2);
  CHECK(u16(&out[0]) == 0x4242);
  // Nothing cached and no sink to wait on: the first name's own NXDOMAIN.
  n = s.ask(makeQuery("nope.demo.svc.cluster.local"), out, &s.client);
  REQUIRE(n > 12);
  CHECK((u16(&out[2]) & 0x0F) == 3);
  // Not a pod of this node (no client address): the same names are NXDOMAIN.
  n = s.ask(makeQuery("web.team.demo.svc.cluster.local"), out, nullptr);
  CHECK((u16(&out[2]) & 0x0F) == 3);
  const auto& st = s.responder->autopathStats();
  CHECK(st.hits[size_t(autopath::Result::kView)].load() == 1);
  CHECK(st.hits[size_t(autopath::Result::kUpstream)].load() == 1);
  CHECK(st.hits[size_t(autopath::Result::kNxDomain)].load() == 1);
}

TEST_CASE("hot path: autopath answers (view, cached upstream, NXDOMAIN) allocate nothing per query") {
  Setup s;
  std::array<uint8_t, 1500> out{};
  const std::vector<std::vector<uint8_t>> qs = {makeQuery("web.team.demo.svc.cluster.local"),
                                                makeQuery("www.example.com.demo.svc.cluster.local"),
                                                makeQuery("nope.demo.svc.cluster.local")};
  for (int i = 0; i < 50; ++i)
    for (const auto& q : qs) REQUIRE(s.ask(q, out, &s.client) > 12);
  hdnsd::test::startCountingAllocations();
  size_t bytes = 0;
  for (int i = 0; i < 1000; ++i)
    for (const auto& q : qs) bytes += s.ask(q, out, &s.client);
  const uint64_t allocations = hdnsd::test::stopCountingAllocations();
  CHECK(allocations == 0);
  CHECK(bytes > 3000 * 12);
  CHECK(s.responder->autopathStats().hits[size_t(autopath::Result::kUpstream)].load() == 1050);
}
