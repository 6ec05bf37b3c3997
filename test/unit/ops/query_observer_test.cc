// The query log's line format and the latency histograms' source labels.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <string>

#include "hdnsd/ops/query_observer.h"
#include "hdnsd/query/stats.h"

using namespace hdnsd;

namespace {
const std::string kWire("\x03web\x04" "demo\x03svc\x07" "cluster\x05local\x00", 28);

ops::QueryEvent event(const sockaddr* client) {
  ops::QueryEvent e;
  e.client = client;
  e.transport = uint8_t(query::Transport::kUdp);
  e.qnameWire = kWire;
  e.qtype = 33;
  e.outcome = uint8_t(query::Outcome::kNxDomain);
  e.source = ops::Source::kCache;
  return e;
}
}  // namespace

TEST_CASE("query log: text line names client, transport, qname, qtype, rcode, source, duration") {
  metrics::Registry reg;
  ops::QueryObserver o(reg);
  ops::QueryLogOptions lo;
  lo.enabled = true;
  o.setLog(lo);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(40000);
  inet_pton(AF_INET, "10.1.2.3", &a.sin_addr);
  char buf[2048];
  size_t n = o.formatLine(event(reinterpret_cast<sockaddr*>(&a)), 12'345, buf, sizeof buf);
  std::string line(buf, n);
  CHECK(line.back() == '\n');
  CHECK(line.find(" info  query: client=10.1.2.3:40000 transport=udp qname=web.demo.svc.cluster.local. qtype=SRV "
                  "rcode=NXDOMAIN source=cache duration_us=12.3\n") != std::string::npos);
}

TEST_CASE("query log: JSON line parses, with every field") {
  metrics::Registry reg;
  ops::QueryObserver o(reg);
  ops::QueryLogOptions lo;
  lo.enabled = true;
  lo.format = log::Format::kJson;
  o.setLog(lo);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(53);
  inet_pton(AF_INET6, "fd00::1", &a.sin6_addr);
  // A name with a dot, a quote and a backslash inside labels: escaped twice (DNS, then JSON).
  const std::string odd("\x04" "a.\"\\\x00", 6);
  auto e = event(reinterpret_cast<sockaddr*>(&a));
  e.qnameWire = odd;
  e.qtype = 65534;
  char buf[2048];
  size_t n = o.formatLine(e, 2'000'000, buf, sizeof buf);
  auto j = nlohmann::json::parse(std::string(buf, n));
  CHECK(j["level"] == "info");
  CHECK(j["msg"] == "query");
  CHECK(j["client"] == "[fd00::1]:53");
  CHECK(j["transport"] == "udp");
  CHECK(j["qname"] == "a\\046\\034\\092.");
  CHECK(j["qtype"] == "TYPE65534");
  CHECK(j["rcode"] == "NXDOMAIN");
  CHECK(j["source"] == "cache");
  CHECK(j["duration_us"] == doctest::Approx(2000.0));
  CHECK(j.contains("ts"));
}

TEST_CASE("query log: a maximal name still makes one valid JSON line") {
  metrics::Registry reg;
  ops::QueryObserver o(reg);
  ops::QueryLogOptions lo;
  lo.enabled = true;
  lo.format = log::Format::kJson;
  o.setLog(lo);
  std::string wire;
  for (int len : {63, 63, 63, 61}) wire += std::string(1, char(len)) + std::string(size_t(len), '\\');
  wire += '\0';  // 255 bytes: the longest name
  auto e = event(nullptr);
  e.qnameWire = wire;
  char buf[2048];
  size_t n = o.formatLine(e, 0, buf, sizeof buf);
  REQUIRE(n < sizeof buf);
  auto j = nlohmann::json::parse(std::string(buf, n));
  CHECK(j["client"] == "-");
  CHECK(wire.size() == 255);
  CHECK(j["qname"].get<std::string>().size() == 250 * 4 + 4);  // 250 bytes as \092, 4 dots
}

TEST_CASE("latency histograms: one series per source, observed only with a receipt time") {
  metrics::Registry reg;
  ops::QueryObserver o(reg);
  auto e = event(nullptr);
  e.source = ops::Source::kUpstream;
  e.received_ns = ops::monotonicNs() - 3'000'000;  // 3 ms ago
  o.onQuery(e);
  e.received_ns = 0;  // not timed: not observed
  o.onQuery(e);
  std::string text = reg.render();
  CHECK(text.find("# TYPE hdnsd_dns_query_duration_seconds histogram") != std::string::npos);
  CHECK(text.find("hdnsd_dns_query_duration_seconds_count{source=\"upstream\"} 1") != std::string::npos);
  CHECK(text.find("hdnsd_dns_query_duration_seconds_bucket{source=\"upstream\",le=\"0.0025\"} 0") != std::string::npos);
  CHECK(text.find("hdnsd_dns_query_duration_seconds_bucket{source=\"upstream\",le=\"0.005\"} 1") != std::string::npos);
  for (const char* s : {"view", "cache", "local"})
    CHECK(text.find(std::string("hdnsd_dns_query_duration_seconds_count{source=\"") + s + "\"} 0") != std::string::npos);
  CHECK(o.logged() == 0);  // the log is off by default
}
