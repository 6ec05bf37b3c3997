#include "hdnsd/config/config.h"
#include "hdnsd/util/cpus.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

using hdnsd::config::Action;
using hdnsd::config::parseCommandLine;

namespace {
std::string writeTemp(const std::string& text) {
  char path[] = "/tmp/hdnsd-config-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("config: defaults when no flag is given") {
  auto r = parseCommandLine({});
  REQUIRE(r);
  CHECK(r->action == Action::kRun);
  REQUIRE(r->config.listen.size() == 1);
  CHECK(r->config.listen[0].text() == "127.0.0.1:53");
  CHECK(r->config.clusterDomain == "cluster.local");
  CHECK(r->config.ttl_s == 5);
  CHECK(!r->config.metrics);
}

TEST_CASE("config: flags, repeated --listen, IPv6, --flag=value") {
  auto r = parseCommandLine({"--listen", "127.0.0.1:5353", "--listen=[::1]:5353", "--ttl", "30",
                             "--cluster-domain", "Corp.Example.", "--metrics", "127.0.0.1:9153",
                             "--log-level", "debug", "--tcp-idle-timeout", "0.5"});
  REQUIRE(r);
  const auto& c = r->config;
  REQUIRE(c.listen.size() == 2);
  CHECK(c.listen[0].text() == "127.0.0.1:5353");
  CHECK(c.listen[1].text() == "[::1]:5353");
  CHECK(c.listen[1].family() == AF_INET6);
  CHECK(c.ttl_s == 30);
  CHECK(c.clusterDomain == "corp.example");
  CHECK(c.metrics->port() == 9153);
  CHECK(c.logLevel == hdnsd::log::Level::kDebug);
  CHECK(c.tcpIdleTimeout_ms == 500);
}

TEST_CASE("config: every bad value is one line naming the flag") {
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  } cases[] = {
      {{"--nope"}, "unknown flag --nope"},
      {{"--ttl", "abc"}, "--ttl: expected a whole number"},
      {{"--ttl", "-1"}, "--ttl:"},
      {{"--ttl", "99999999"}, "--ttl:"},
      {{"--listen", "nonsense"}, "--listen: expected ADDR:PORT"},
      {{"--listen", "127.0.0.1"}, "--listen:"},
      {{"--listen", "127.0.0.1:70000"}, "--listen:"},
      {{"--listen", "localhost:53"}, "--listen:"},  // numeric only: no DNS lookups at startup
      {{"--metrics", "1.2.3.4:x"}, "--metrics:"},
      {{"--log-level", "loud"}, "--log-level: expected error, warn, info or debug"},
      {{"--cluster-domain", "a..b"}, "--cluster-domain:"},
      {{"--ttl"}, "--ttl: needs a value"},
      {{"stray"}, "unexpected argument \"stray\""},
      {{"--config", "/nonexistent/hdnsd.json"}, "--config: cannot read /nonexistent/hdnsd.json"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expect);
    auto r = parseCommandLine(c.args);
    REQUIRE(!r);
    CHECK(r.error().find(c.expect) != std::string::npos);
    CHECK(r.error().find('\n') == std::string::npos);
  }
}

TEST_CASE("config: --workers N is 1..64; unset, one per usable CPU") {
  auto r = parseCommandLine({"--workers", "3"});
  REQUIRE(r);
  CHECK(hdnsd::config::workersFor(r->config) == 3);
  CHECK(hdnsd::config::toJson(r->config).find("\"workers\":3") != std::string::npos);
  auto d = parseCommandLine({});
  REQUIRE(d);
  CHECK(d->config.workers == 0);
  const uint32_t usable = std::min<uint32_t>(hdnsd::util::usableCpus(), hdnsd::config::kMaxWorkers);
  CHECK(hdnsd::config::workersFor(d->config) == usable);
  for (const char* bad : {"0", "65", "two", "-1"}) {
    auto e = parseCommandLine({"--workers", bad});
    REQUIRE(!e);
    CHECK(e.error().find("--workers: expected a whole number 1..64") != std::string::npos);
  }
}

TEST_CASE("config: the JSON file takes the flag names as keys, and flags override it") {
  std::string path = writeTemp(R"({"listen": ["127.0.0.1:1053", "[::1]:1053"], "ttl": 12,
      "cluster-domain": "k8s.test", "log-level": "warn", "endpoints-file": "/tmp/x.json"})");
  auto fromFile = parseCommandLine({"--config", path});
  REQUIRE(fromFile);
  CHECK(fromFile->config.listen.size() == 2);
  CHECK(fromFile->config.ttl_s == 12);
  CHECK(fromFile->config.clusterDomain == "k8s.test");
  CHECK(fromFile->config.endpointsFile == "/tmp/x.json");

  // A flag wins whether it comes before or after --config; --listen on the command line
  // replaces the file's list rather than adding to it.
  auto overridden = parseCommandLine({"--ttl", "3", "--config", path, "--listen", "127.0.0.2:53"});
  REQUIRE(overridden);
  CHECK(overridden->config.ttl_s == 3);
  REQUIRE(overridden->config.listen.size() == 1);
  CHECK(overridden->config.listen[0].text() == "127.0.0.2:53");
  CHECK(overridden->config.clusterDomain == "k8s.test");
  unlink(path.c_str());
}

TEST_CASE("config: bad files are one clear line naming the file and key") {
  std::string notJson = writeTemp("{ttl: 5");
  auto r1 = parseCommandLine({"--config", notJson});
  REQUIRE(!r1);
  CHECK(r1.error().find("not valid JSON") != std::string::npos);
  CHECK(r1.error().find('\n') == std::string::npos);

  std::string unknownKey = writeTemp(R"({"tll": 5})");
  auto r2 = parseCommandLine({"--config", unknownKey});
  REQUIRE(!r2);
  CHECK(r2.error().find("unknown key \"tll\"") != std::string::npos);

  std::string badValue = writeTemp(R"({"ttl": "soon"})");
  auto r3 = parseCommandLine({"--config", badValue});
  REQUIRE(!r3);
  CHECK(r3.error().find("key \"ttl\"") != std::string::npos);

  std::string badType = writeTemp(R"({"listen": {"a": 1}})");
  auto r4 = parseCommandLine({"--config", badType});
  REQUIRE(!r4);
  CHECK(r4.error().find("key \"listen\"") != std::string::npos);
  for (const auto& p : {notJson, unknownKey, badValue, badType}) unlink(p.c_str());
}

TEST_CASE("config: --help and --version short-circuit, and usage names every option") {
  CHECK(parseCommandLine({"--ttl", "5", "--help"})->action == Action::kHelp);
  CHECK(parseCommandLine({"--version"})->action == Action::kVersion);
  std::string u = hdnsd::config::usage();
  for (const char* name : {"--config", "--listen", "--cluster-domain", "--endpoints-file", "--ttl",
                           "--metrics", "--log-level", "--help", "--version"})
    CHECK(u.find(name) != std::string::npos);
}
