// The validated, immutable configuration. Built at startup and on every reload from the JSON
// config file (--config) with the command-line flags applied on top; flag names and JSON keys are
// the same ("--cluster-domain" ↔ "cluster-domain"). Any bad value is a one-line error naming it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hdnsd/util/log.h"
#include "hdnsd/util/result.h"
#include "hdnsd/util/sock_addr.h"

namespace hdnsd::config {

struct Config {
  std::string configFile;                  // --config (empty: none)
  std::vector<SockAddr> listen;            // --listen, repeatable; UDP and TCP on each
  std::string clusterDomain = "cluster.local";
  std::string endpointsFile;               // --endpoints-file: static cluster view
  uint32_t ttl_s = 5;                      // --ttl: TTL of cluster answers
  std::optional<SockAddr> metrics;         // --metrics: /health /ready /metrics
  log::Level logLevel = log::Level::kInfo;
  uint32_t tcpIdleTimeout_ms = 10'000;     // --tcp-idle-timeout (seconds, fractions allowed)
  uint32_t maxTcpConnections = 1024;       // --max-tcp-connections
  uint32_t tcpMaxPendingBytes = 256 * 1024;  // --tcp-max-pending-bytes: unsent answers per connection
  uint16_t ednsUdpSize = 1232;             // --edns-udp-size: our advertised and maximum UDP size
};

enum class Action { kRun, kHelp, kVersion };

struct CommandLine {
  Action action = Action::kRun;
  Config config;
};

// Parses argv (argv[0] skipped), reading the --config file if one is named. The error is one
// line such as `--ttl: expected whole seconds 0..86400, got "abc"`.
Result<CommandLine, std::string> parseCommandLine(const std::vector<std::string>& args);

// The --help text: every option, its default, one line each.
std::string usage();

// The effective configuration as JSON text (for logs and, later, --check-config).
std::string toJson(const Config& c);

}  // namespace hdnsd::config
