// The validated, immutable configuration. Built at startup and on every reload from the JSON
// config file (--config) with the command-line flags applied on top; flag names and JSON keys are
// the same ("--cluster-domain" ↔ "cluster-domain"). Any bad value is a one-line error naming it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hdnsd/cache/cache.h"
#include "hdnsd/util/log.h"
#include "hdnsd/util/result.h"
#include "hdnsd/util/sock_addr.h"

namespace hdnsd::config {

struct Config {
  std::string configFile;                  // --config (empty: none)
  std::vector<SockAddr> listen;            // --listen, repeatable; UDP and TCP on each
  std::string clusterDomain = "cluster.local";
  std::string endpointsFile;               // --endpoints-file: static cluster view
  // Kubernetes API source (issue 3). Used when --kube-api is given, or when neither it nor
  // --endpoints-file is and KUBERNETES_SERVICE_HOST is set (in a pod).
  std::string kubeApi;                     // --kube-api https://HOST:PORT
  std::string kubeTokenFile;               // --kube-token-file (default: the service account's)
  std::string kubeCaFile;                  // --kube-ca-file (default: the service account's)
  std::string kubeLabelSelector;           // --kube-label-selector
  std::vector<std::string> namespaces;     // --namespace, repeatable; empty: all
  bool headlessOnly = false;               // --headless-only
  uint32_t kubePageSize = 500;             // --kube-page-size: list limit
  uint32_t kubeMaxEventBytes = 4u << 20;   // --kube-max-event-bytes: longest watch line
  uint32_t kubeWatchTimeout_s = 300;       // --kube-watch-timeout: timeoutSeconds base
  bool kubeStreamingList = true;           // --kube-streaming-list true|false
  uint32_t ttl_s = 5;                      // --ttl: TTL of cluster answers
  std::optional<SockAddr> metrics;         // --metrics: /health /ready /metrics
  log::Level logLevel = log::Level::kInfo;
  // Operations (issue 6).
  log::Format logFormat = log::Format::kText;  // --log-format text|json
  bool queryLog = false;                   // --query-log: one line per (sampled) query
  uint32_t queryLogSample = 1;             // --query-log-sample N: 1 in N
  double lameduck_s = 0;                   // --lameduck: keep answering this long after SIGTERM
  uint32_t workers = 0;                    // --workers N: query loops (0: workersFor() decides)
  std::string user;                        // --user: drop to it after binding (root only; default nobody)
  std::string stateFile;                   // --state-file: warm restart (empty: off)
  uint32_t stateFileInterval_s = 60;       // --state-file-interval: periodic writes (0: at shutdown only)
  uint32_t tcpIdleTimeout_ms = 10'000;     // --tcp-idle-timeout (seconds, fractions allowed)
  uint32_t maxTcpConnections = 1024;       // --max-tcp-connections
  uint32_t tcpMaxPendingBytes = 256 * 1024;  // --tcp-max-pending-bytes: unsent answers per connection
  uint16_t ednsUdpSize = 1232;             // --edns-udp-size: our advertised and maximum UDP size
  // Hardening (issue 8).
  std::vector<std::string> allow;          // --allow CIDR, repeatable; empty: query::defaultAllowList()
  uint32_t maxUdpAmplification = 10;       // --max-udp-amplification N (0: off)
  uint32_t tcpMaxInFlight = 128;           // --tcp-max-in-flight: queries per connection being resolved
  uint32_t maxTcpConnectionsPerClient = 256;  // --max-tcp-connections-per-client
  // Load spreading (issue 5).
  std::string policy = "round-robin";      // --policy none|round-robin|random|weighted|topology|consistent
  uint32_t maxAnswers = 0;                 // --max-answers N: records per answer (0: all)
  std::string nodeName;                    // --node-name (default: env NODE_NAME)
  std::string nodeZone;                    // --zone (default: env NODE_ZONE, else learned from the view)
  bool terminatingFallback = false;        // --terminating-fallback
  bool autopath = false;                   // --autopath: answer pods' search walks in one round trip
  // Forwarding (issue 4). No --upstream: the nameservers of --resolv-conf (never our own --listen).
  std::vector<SockAddr> upstreams;         // --upstream, repeatable
  bool upstreamTcp = false;                // --upstream-tcp: talk to the default upstreams over TCP only
  struct StubZone {                        // --stub-zone DOMAIN=ADDR:PORT[,ADDR:PORT...][,tcp]
    std::string domain;                    // lower-case text without the trailing dot
    std::vector<SockAddr> servers;
    bool tcp = false;
  };
  std::vector<StubZone> stubZones;
  uint32_t upstreamTimeout_ms = 2000;      // --upstream-timeout MS: first try; c-ares backs off
  uint32_t upstreamTries = 2;              // --upstream-tries N: tries per server
  std::string resolvConf = "/etc/resolv.conf";  // --resolv-conf PATH ("none": do not read one)
  enum class Aaaa : uint8_t { kAuto, kForward, kNoData };
  Aaaa aaaa = Aaaa::kAuto;                 // --aaaa auto|forward|nodata
  cache::Config cache;                     // --cache-size, --max-stale, ... (ednsUdpSize set by the daemon)
  // The NodeLocal DNSCache-style link-local address (issue 6, ops/setup_interface.h).
  bool setupInterface = false;             // --setup-interface: hold the non-loopback --listen addresses
  std::string interfaceName = "nodelocaldns";  // --interface-name
  bool notrack = true;                     // --notrack true|false: iptables NOTRACK rules with the interface
};

enum class Action { kRun, kHelp, kVersion, kCheckConfig };

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

// --workers, or by default one per CPU this process may use (util/cpus.h), at most kMaxWorkers.
inline constexpr uint32_t kMaxWorkers = 64;
uint32_t workersFor(const Config& c);

}  // namespace hdnsd::config
