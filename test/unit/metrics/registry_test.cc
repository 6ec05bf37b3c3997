// Registry rendering against hand-written Prometheus text format 0.0.4
// (https://github.com/prometheus/docs/blob/main/content/docs/instrumenting/exposition_formats.md).
#include "hdnsd/metrics/registry.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

using namespace hdnsd::metrics;

TEST_CASE("registry: counter family with labels, HELP and TYPE, series in creation order") {
  Registry reg;
  Counter& udpA = reg.counter("hdnsd_dns_queries_total", "DNS queries answered.",
                              {{"transport", "udp"}, {"type", "A"}, {"rcode", "NOERROR"}});
  Counter& tcpA = reg.counter("hdnsd_dns_queries_total", "DNS queries answered.",
                              {{"transport", "tcp"}, {"type", "A"}, {"rcode", "NOERROR"}});
  udpA.inc();
  udpA.inc(41);
  tcpA.inc();
  CHECK(reg.render() ==
        "# HELP hdnsd_dns_queries_total DNS queries answered.\n"
        "# TYPE hdnsd_dns_queries_total counter\n"
        "hdnsd_dns_queries_total{transport=\"udp\",type=\"A\",rcode=\"NOERROR\"} 42\n"
        "hdnsd_dns_queries_total{transport=\"tcp\",type=\"A\",rcode=\"NOERROR\"} 1\n");
}

TEST_CASE("registry: same name and labels returns the same object") {
  Registry reg;
  Counter& a = reg.counter("hdnsd_x_total", "x", {{"k", "v"}});
  Counter& b = reg.counter("hdnsd_x_total", "other help is ignored", {{"k", "v"}});
  Counter& c = reg.counter("hdnsd_x_total", "x", {{"k", "w"}});
  CHECK(&a == &b);
  CHECK(&a != &c);
  a.inc();
  CHECK(b.value() == 1);
  CHECK(c.value() == 0);
}

TEST_CASE("registry: families sorted by name, unlabelled series, gauges") {
  Registry reg;
  reg.gauge("zeta_gauge", "Last.").set(-2.5);
  reg.counter("alpha_total", "First.").inc(3);
  Gauge& g = reg.gauge("mid_open", "Middle.");
  g.set(10);
  g.add(2);
  g.sub(0.5);
  CHECK(reg.render() ==
        "# HELP alpha_total First.\n"
        "# TYPE alpha_total counter\n"
        "alpha_total 3\n"
        "# HELP mid_open Middle.\n"
        "# TYPE mid_open gauge\n"
        "mid_open 11.5\n"
        "# HELP zeta_gauge Last.\n"
        "# TYPE zeta_gauge gauge\n"
        "zeta_gauge -2.5\n");
}

TEST_CASE("registry: label values escape backslash, quote and newline; HELP escapes \\ and \\n") {
  Registry reg;
  reg.counter("esc_total", "Help with \\ and\nnewline and \"quotes\".",
              {{"path", "C:\\dir \"q\"\nnext"}})
      .inc();
  CHECK(reg.render() ==
        "# HELP esc_total Help with \\\\ and\\nnewline and \"quotes\".\n"
        "# TYPE esc_total counter\n"
        "esc_total{path=\"C:\\\\dir \\\"q\\\"\\nnext\"} 1\n");
}

TEST_CASE("histogram: cumulative buckets, +Inf, _sum and _count") {
  Registry reg;
  const double bounds[] = {0.001, 0.01, 0.1};
  Histogram& h = reg.histogram("hdnsd_dns_latency_seconds", "Answer latency.", bounds,
                               {{"path", "cache"}});
  h.observe(0.0005);  // le 0.001
  h.observe(0.001);   // le 0.001: the bound itself is inside ("less or equal")
  h.observe(0.05);    // le 0.1
  h.observe(3);       // +Inf only
  CHECK(h.count() == 4);
  CHECK(reg.render() ==
        "# HELP hdnsd_dns_latency_seconds Answer latency.\n"
        "# TYPE hdnsd_dns_latency_seconds histogram\n"
        "hdnsd_dns_latency_seconds_bucket{path=\"cache\",le=\"0.001\"} 2\n"
        "hdnsd_dns_latency_seconds_bucket{path=\"cache\",le=\"0.01\"} 2\n"
        "hdnsd_dns_latency_seconds_bucket{path=\"cache\",le=\"0.1\"} 3\n"
        "hdnsd_dns_latency_seconds_bucket{path=\"cache\",le=\"+Inf\"} 4\n"
        "hdnsd_dns_latency_seconds_sum{path=\"cache\"} 3.0515\n"
        "hdnsd_dns_latency_seconds_count{path=\"cache\"} 4\n");
}

TEST_CASE("histogram: unlabelled, empty, and NaN goes to +Inf only") {
  Registry reg;
  const double bounds[] = {1, 2};
  Histogram& h = reg.histogram("h_seconds", "H.", bounds);
  CHECK(reg.render() ==
        "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
        "h_seconds_bucket{le=\"1\"} 0\nh_seconds_bucket{le=\"2\"} 0\n"
        "h_seconds_bucket{le=\"+Inf\"} 0\nh_seconds_sum 0\nh_seconds_count 0\n");
  h.observe(std::numeric_limits<double>::quiet_NaN());
  CHECK(h.bucketCount(0) == 0);
  CHECK(h.bucketCount(1) == 0);
  CHECK(h.bucketCount(2) == 1);
  CHECK(std::isnan(h.sum()));
}

TEST_CASE("collectors: families merged into the sorted output; owned family wins a clash") {
  Registry reg;
  reg.counter("b_total", "Owned.").inc(7);
  int calls = 0;
  reg.addCollector([&calls](std::vector<FamilyData>& out) {
    ++calls;
    out.push_back({"c_entries", "Collected.", Type::kGauge, {}});
    out.back().add({{"view", "services"}}, 12).add({{"view", "endpoints"}}, 40);
    out.push_back({"b_total", "Clash, dropped.", Type::kCounter, {}});
    out.back().add({}, 999);
    out.push_back({"a_empty", "No samples: left out.", Type::kGauge, {}});
  });
  const std::string want =
      "# HELP b_total Owned.\n"
      "# TYPE b_total counter\n"
      "b_total 7\n"
      "# HELP c_entries Collected.\n"
      "# TYPE c_entries gauge\n"
      "c_entries{view=\"services\"} 12\n"
      "c_entries{view=\"endpoints\"} 40\n";
  CHECK(reg.render() == want);
  CHECK(reg.render() == want);
  CHECK(calls == 2);  // at scrape time, every scrape
}

TEST_CASE("collectors: one that throws is skipped whole and counted") {
  Registry reg;
  reg.addCollector([](std::vector<FamilyData>& out) {
    out.push_back({"half_built", "H.", Type::kGauge, {}});
    out.back().add({}, 1);
    throw std::runtime_error("snapshot gone");
  });
  reg.addCollector([](std::vector<FamilyData>& out) {
    out.push_back({"fine", "F.", Type::kGauge, {}});
    out.back().add({}, 1);
  });
  CHECK(reg.render() == "# HELP fine F.\n# TYPE fine gauge\nfine 1\n");
  CHECK(reg.collectorFailures() == 1);
}

TEST_CASE("formatValue: integers plain, fractions shortest, specials spelled out") {
  CHECK(formatValue(0) == "0");
  CHECK(formatValue(1000000) == "1000000");
  CHECK(formatValue(-3) == "-3");
  CHECK(formatValue(0.25) == "0.25");
  CHECK(formatValue(1.5e-7) == "1.5e-07");
  CHECK(formatValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(formatValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(formatValue(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}

TEST_CASE("name validation") {
  CHECK(validMetricName("hdnsd_dns_queries_total"));
  CHECK(validMetricName("a:b_c9"));
  CHECK_FALSE(validMetricName(""));
  CHECK_FALSE(validMetricName("9abc"));
  CHECK_FALSE(validMetricName("has-dash"));
  CHECK(validLabelName("rcode"));
  CHECK_FALSE(validLabelName("__reserved"));
  CHECK_FALSE(validLabelName("a:b"));
  CHECK_FALSE(validLabelName("1x"));
}

TEST_CASE("counter: relaxed increments from several threads all land") {
  Registry reg;
  Counter& c = reg.counter("hdnsd_t_total", "T.");
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&c] {
      for (int i = 0; i < 100000; ++i) c.inc();
    });
  for (auto& t : ts) t.join();
  CHECK(c.value() == 400000);
}
