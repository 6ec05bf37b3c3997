#include "hdnsd/config/config.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "hdnsd/dns/name.h"
#include "hdnsd/ops/setup_interface.h"
#include "hdnsd/policy/spread.h"
#include "hdnsd/query/acl.h"
#include "hdnsd/upstream/upstreams.h"
#include "hdnsd/util/cpus.h"

namespace hdnsd::config {
namespace {

using Apply = std::function<std::optional<std::string>(Config&, const std::string&)>;

// One row per option: the single source for flag parsing, JSON keys and --help.
struct Option {
  const char* name;
  const char* valueName;  // nullptr: a switch without value
  bool repeatable;
  const char* help;
  Apply apply;
};

std::optional<std::string> parseUint(const std::string& v, uint64_t lo, uint64_t hi, uint64_t* out) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi)
    return "expected a whole number " + std::to_string(lo) + ".." + std::to_string(hi) + ", got \"" + v + "\"";
  *out = n;
  return std::nullopt;
}

const std::vector<Option>& options() {
  static const std::vector<Option> kOptions = {
      {"config", "FILE.json", false, "JSON file with these same option names as keys; flags override it",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         c.configFile = v;
         return std::nullopt;
       }},
      {"listen", "ADDR:PORT", true,
       "serve DNS over UDP and TCP here; repeatable; IPv6 as [::1]:53 (default 127.0.0.1:53)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto a = SockAddr::parse(v);
         if (!a) return "expected ADDR:PORT such as 127.0.0.1:53 or [::1]:53, got \"" + v + "\"";
         c.listen.push_back(*a);
         return std::nullopt;
       }},
      {"cluster-domain", "DOMAIN", false, "the cluster zone (default cluster.local)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         std::string wire;
         if (v.empty() || v == "." || !dns::textToWire(v, &wire))
           return "expected a domain name such as cluster.local, got \"" + v + "\"";
         c.clusterDomain = dns::wireToText(wire);
         c.clusterDomain.pop_back();  // keep it without the trailing dot
         return std::nullopt;
       }},
      {"endpoints-file", "PATH", false,
       "serve the cluster view from this kubectl List JSON of Services and EndpointSlices; reloaded on change",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.empty()) return std::string("expected a file path");
         c.endpointsFile = v;
         return std::nullopt;
       }},
      {"kube-api", "https://HOST:PORT", false,
       "serve the cluster view from this Kubernetes API server (list+watch); default in a pod: KUBERNETES_SERVICE_HOST",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.rfind("https://", 0) != 0 && v.rfind("http://", 0) != 0)
           return "expected https://HOST:PORT, got \"" + v + "\"";
         c.kubeApi = v;
         return std::nullopt;
       }},
      {"kube-token-file", "PATH", false,
       "bearer token file, re-read when it changes (default in a pod: the service account token)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.empty()) return std::string("expected a file path");
         c.kubeTokenFile = v;
         return std::nullopt;
       }},
      {"kube-ca-file", "PATH", false,
       "CA certificates the API server is verified against (default in a pod: the service account ca.crt)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.empty()) return std::string("expected a file path");
         c.kubeCaFile = v;
         return std::nullopt;
       }},
      {"kube-label-selector", "SELECTOR", false, "only Services and EndpointSlices matching this label selector",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         c.kubeLabelSelector = v;
         return std::nullopt;
       }},
      {"namespace", "NS", true, "watch only this namespace; repeatable (default: all namespaces)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.empty()) return std::string("expected a namespace name");
         c.namespaces.push_back(v);
         return std::nullopt;
       }},
      {"headless-only", nullptr, false,
       "serve only headless services from the API; other cluster names go to the forwarder (default false)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "true" && v != "false") return "expected true or false, got \"" + v + "\"";
         c.headlessOnly = v == "true";
         return std::nullopt;
       }},
      {"kube-page-size", "N", false, "objects per list page (limit/continue) (default 500)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, 100000, &n)) return e;
         c.kubePageSize = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"kube-max-event-bytes", "BYTES", false,
       "longest watch event line; longer ones restart the watch (default 4194304)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1024, 1ull << 30, &n)) return e;
         c.kubeMaxEventBytes = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"kube-watch-timeout", "SECONDS", false,
       "watch timeoutSeconds is drawn from [T, 2T); the watch then resumes (default 300)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, 3600, &n)) return e;
         c.kubeWatchTimeout_s = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"kube-streaming-list", "true|false", false,
       "try streaming lists (sendInitialEvents) before list+watch (default true)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "true" && v != "false") return "expected true or false, got \"" + v + "\"";
         c.kubeStreamingList = v == "true";
         return std::nullopt;
       }},
      {"ttl", "SECONDS", false, "TTL of cluster answers (default 5)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 86400, &n)) return e;
         c.ttl_s = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"metrics", "ADDR:PORT", false, "serve /health, /ready and /metrics over HTTP here (default: off)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto a = SockAddr::parse(v);
         if (!a) return "expected ADDR:PORT such as 127.0.0.1:9153, got \"" + v + "\"";
         c.metrics = *a;
         return std::nullopt;
       }},
      {"log-level", "error|warn|info|debug", false, "log verbosity (default info)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto l = log::parseLevel(v);
         if (!l) return "expected error, warn, info or debug, got \"" + v + "\"";
         c.logLevel = *l;
         return std::nullopt;
       }},
      {"log-format", "text|json", false, "log lines as text or as one JSON object each (default text)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto f = log::parseFormat(v);
         if (!f) return "expected text or json, got \"" + v + "\"";
         c.logFormat = *f;
         return std::nullopt;
       }},
      {"query-log", nullptr, false,
       "log each answered query: client, qname, qtype, rcode, source, duration (default false)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "true" && v != "false") return "expected true or false, got \"" + v + "\"";
         c.queryLog = v == "true";
         return std::nullopt;
       }},
      {"query-log-sample", "N", false, "with --query-log, log 1 query in N (default 1: all)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, 1'000'000'000, &n)) return e;
         c.queryLogSample = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"lameduck", "SECONDS", false,
       "after SIGTERM keep answering this long while /ready fails, then stop; fractions allowed (default 0)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         char* end = nullptr;
         double s = std::strtod(v.c_str(), &end);
         if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(s) || s < 0 || s > 600)
           return "expected seconds 0..600, got \"" + v + "\"";
         c.lameduck_s = s;
         return std::nullopt;
       }},
      {"workers", "N", false,
       "query loops, each with its own sockets (SO_REUSEPORT), cache and upstream channel (default: one per "
       "usable CPU, at most 64)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, kMaxWorkers, &n)) return e;
         c.workers = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"user", "NAME", false,
       "started as root: drop to this user after binding the sockets (default nobody; not root: no change)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.empty()) return std::string("expected a user name or uid");
         c.user = v;
         return std::nullopt;
       }},
      {"state-file", "PATH", false,
       "warm restart: save the cluster view and the hottest cache answers here (e.g. on tmpfs) and "
       "serve them at the next start until the first sync (default: off)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.empty() || v.back() == '/') return "expected a file path, got \"" + v + "\"";
         c.stateFile = v;
         return std::nullopt;
       }},
      {"state-file-interval", "SECONDS", false,
       "with --state-file, also write it this often when something changed; 0: only at shutdown (default 60)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 86400, &n)) return e;
         c.stateFileInterval_s = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"tcp-idle-timeout", "SECONDS", false,
       "close a DNS TCP connection idle this long; fractions allowed (default 10)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         char* end = nullptr;
         double s = std::strtod(v.c_str(), &end);
         if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(s) || s < 0.05 || s > 3600)
           return "expected seconds 0.05..3600, got \"" + v + "\"";
         c.tcpIdleTimeout_ms = static_cast<uint32_t>(s * 1000);
         return std::nullopt;
       }},
      {"max-tcp-connections", "N", false, "DNS TCP connections open at once; more are refused (default 1024)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, 1'000'000, &n)) return e;
         c.maxTcpConnections = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"tcp-max-pending-bytes", "BYTES", false,
       "unsent answer bytes per TCP connection before hdnsd stops reading from it (default 262144)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1024, 64ull << 20, &n)) return e;
         c.tcpMaxPendingBytes = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"edns-udp-size", "BYTES", false,
       "largest UDP answer we send and advertise with EDNS (default 1232, RFC 9715)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 512, 4096, &n)) return e;
         c.ednsUdpSize = static_cast<uint16_t>(n);
         return std::nullopt;
       }},
      {"allow", "CIDR", true,
       "only these clients may query (others get REFUSED); repeatable (default: loopback, link-local, private ranges)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto cidr = query::Cidr::parse(v);
         if (!cidr) return cidr.error();
         c.allow.push_back(cidr->text());
         return std::nullopt;
       }},
      {"max-udp-amplification", "N", false,
       "a UDP answer over max(512, N x query size) bytes is sent truncated (TC=1); 0 off (default 10)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 1000, &n)) return e;
         c.maxUdpAmplification = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"tcp-max-in-flight", "N", false,
       "queries per TCP connection waiting for upstream answers before hdnsd stops reading it (default 128)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, 65536, &n)) return e;
         c.tcpMaxInFlight = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"max-tcp-connections-per-client", "N", false,
       "DNS TCP connections open at once from one client address; more are closed at once (default 256)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, 1'000'000, &n)) return e;
         c.maxTcpConnectionsPerClient = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"policy", "none|round-robin|random|weighted|topology|consistent", false,
       "order of the records in cluster answers; a Service's hdnsd.io/policy overrides it (default round-robin)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (!policy::parseKind(v))
           return "expected none, round-robin, random, weighted, topology or consistent, got \"" + v + "\"";
         c.policy = v;
         return std::nullopt;
       }},
      {"max-answers", "N", false,
       "at most N records per cluster answer, chosen by the policy; 0: all (default 0)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, policy::kMaxOrdered, &n)) return e;
         c.maxAnswers = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"node-name", "NAME", false, "this node's name, for the topology policy (default: env NODE_NAME)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         c.nodeName = v;
         return std::nullopt;
       }},
      {"zone", "ZONE", false,
       "this node's zone, for the topology policy (default: env NODE_ZONE, else the zone of endpoints on --node-name)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         c.nodeZone = v;
         return std::nullopt;
       }},
      {"autopath", nullptr, false,
       "answer a pod's first search name for its whole search walk (CNAME + answer, one round trip); watches "
       "this node's pods, needs --node-name and the Kubernetes API (default false)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "true" && v != "false") return "expected true or false, got \"" + v + "\"";
         c.autopath = v == "true";
         return std::nullopt;
       }},
      {"terminating-fallback", nullptr, false,
       "a headless service with no ready endpoint answers with its serving+terminating ones (default false)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "true" && v != "false") return "expected true or false, got \"" + v + "\"";
         c.terminatingFallback = v == "true";
         return std::nullopt;
       }},
      {"upstream", "ADDR:PORT", true,
       "forward names outside the cluster zone here; repeatable (default: the nameservers of --resolv-conf)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto a = SockAddr::parse(v);
         if (!a) return "expected ADDR:PORT such as 10.0.0.10:53 or [fd00::a]:53, got \"" + v + "\"";
         c.upstreams.push_back(*a);
         return std::nullopt;
       }},
      {"stub-zone", "DOMAIN=ADDR:PORT[,tcp]", true,
       "forward DOMAIN and below to these servers (longest suffix wins); repeatable; ,tcp: over TCP",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto z = upstream::parseStubZone(v);
         if (!z) return z.error();
         for (auto& have : c.stubZones)
           if (have.domain == z->domain) return "domain " + z->domain + " given twice";
         c.stubZones.push_back(std::move(*z));
         return std::nullopt;
       }},
      {"upstream-tcp", nullptr, false, "talk to the --upstream servers over TCP only (default false)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "true" && v != "false") return "expected true or false, got \"" + v + "\"";
         c.upstreamTcp = v == "true";
         return std::nullopt;
       }},
      {"upstream-timeout", "MS", false, "first try's timeout per upstream query in milliseconds (default 2000)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 10, 60'000, &n)) return e;
         c.upstreamTimeout_ms = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"upstream-tries", "N", false, "tries per upstream server before giving up (default 2)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, 10, &n)) return e;
         c.upstreamTries = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"resolv-conf", "PATH", false,
       "where the default upstreams come from when no --upstream is given; none: nowhere (default /etc/resolv.conf)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.empty()) return std::string("expected a file path or none");
         c.resolvConf = v;
         return std::nullopt;
       }},
      {"cache-size", "ENTRIES", false, "answers kept in the forwarding cache; 0 turns it off (default 100000)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 100000000ull, &n)) return e;
         c.cache.maxEntries = static_cast<size_t>(n);
         return std::nullopt;
       }},
      {"cache-max-bytes", "BYTES", false, "memory the cached answers may use (default 67108864)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 1099511627776ull, &n)) return e;
         c.cache.maxBytes = static_cast<size_t>(n);
         return std::nullopt;
       }},
      {"min-ttl", "SECONDS", false, "floor on cached TTLs (default 0)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 86400ull, &n)) return e;
         c.cache.minTtl_s = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"max-ttl", "SECONDS", false, "cap on cached TTLs (default 86400)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, 604800ull, &n)) return e;
         c.cache.maxTtl_s = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"negative-max-ttl", "SECONDS", false, "cap on cached NXDOMAIN/NODATA TTLs (default 3600)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 86400ull, &n)) return e;
         c.cache.negativeMaxTtl_s = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"servfail-ttl", "SECONDS", false, "how long an upstream SERVFAIL is cached, 0..300 (default 5, RFC 9520)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 300ull, &n)) return e;
         c.cache.servfailTtl_s = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"stale-ttl", "SECONDS", false, "TTL of a stale answer served while the upstreams fail (default 30, RFC 8767)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 1, 3600ull, &n)) return e;
         c.cache.staleTtl_s = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"max-stale", "SECONDS", false, "serve expired answers this long past expiry when the upstreams fail; 0 off (default 86400)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 2592000ull, &n)) return e;
         c.cache.maxStale_s = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"prefetch-threshold", "PERCENT", false, "refresh a cached answer in the background when a hit finds less than this % of its TTL left; 0 off (default 10)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         uint64_t n;
         if (auto e = parseUint(v, 0, 99ull, &n)) return e;
         c.cache.prefetchPercent = static_cast<uint32_t>(n);
         return std::nullopt;
       }},
      {"aaaa", "auto|forward|nodata", false,
       "AAAA outside the cluster zone: auto/forward: forwarded; nodata: NODATA at once (default auto)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v == "auto") c.aaaa = Config::Aaaa::kAuto;
         else if (v == "forward") c.aaaa = Config::Aaaa::kForward;
         else if (v == "nodata") c.aaaa = Config::Aaaa::kNoData;
         else return "expected auto, forward or nodata, got \"" + v + "\"";
         return std::nullopt;
       }},
      {"setup-interface", nullptr, false,
       "put the non-loopback --listen addresses (169.254.20.10) on a dummy interface at start, remove it at exit (needs CAP_NET_ADMIN) (default false)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "true" && v != "false") return "expected true or false, got \"" + v + "\"";
         c.setupInterface = v == "true";
         return std::nullopt;
       }},
      {"interface-name", "NAME", false, "the --setup-interface interface (default nodelocaldns)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         // IFNAMSIZ is 16 with the NUL; '/' and whitespace are refused by the kernel.
         if (v.empty() || v.size() > 15 || v.find_first_of("/ \t\n:") != std::string::npos || v == "." || v == "..")
           return "expected an interface name of 1..15 characters, got \"" + v + "\"";
         c.interfaceName = v;
         return std::nullopt;
       }},
      {"notrack", "true|false", false,
       "with --setup-interface, also install iptables NOTRACK (raw) and ACCEPT rules for its addresses (default true)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v != "true" && v != "false") return "expected true or false, got \"" + v + "\"";
         c.notrack = v == "true";
         return std::nullopt;
       }},
  };
  return kOptions;
}

const Option* findOption(std::string_view name) {
  for (const auto& o : options())
    if (name == o.name) return &o;
  return nullptr;
}

// Turns one JSON value into the flag-style text the option parsers take.
std::optional<std::string> jsonScalarText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number_unsigned() || v.is_number_integer()) return v.dump();
  if (v.is_number_float()) {
    std::ostringstream os;
    os << v.get<double>();
    return os.str();
  }
  return std::nullopt;
}

std::optional<std::string> applyConfigFile(Config& c, const std::string& path) {
  std::ifstream in(path);
  if (!in) return "--config: cannot read " + path;
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1E400
    return "--config " + path + ": not valid JSON: " + e.what();
  }
  if (!doc.is_object()) return "--config " + path + ": expected a JSON object of option names";
  for (const auto& [key, value] : doc.items()) {
    const Option* o = findOption(key);
    if (!o || std::string_view(o->name) == "config")
      return "--config " + path + ": unknown key \"" + key + "\" (see --help for the option names)";
    std::vector<nlohmann::json> values;
    if (value.is_array() && o->repeatable)
      values.assign(value.begin(), value.end());
    else
      values.push_back(value);
    for (const auto& v : values) {
      auto text = jsonScalarText(v);
      if (!text)
        return "--config " + path + ": key \"" + key + "\": expected " +
               (o->repeatable ? "a string or an array of strings" : "a string or a number");
      if (auto err = o->apply(c, *text)) return "--config " + path + ": key \"" + key + "\": " + *err;
    }
  }
  return std::nullopt;
}

}  // namespace

namespace {
Result<CommandLine, std::string> parseCommandLineImpl(const std::vector<std::string>& args);

// Errors quote what they were given; a control character in it (a newline in a flag or a JSON
// string) would break the one-line contract and let input forge log lines: escape them.
// Found by test/fuzz/fuzz_config.cc (corpus: crash_newline_in_argument).
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c != 0x7f) {
      out.push_back(char(c));
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}
}  // namespace

Result<CommandLine, std::string> parseCommandLine(const std::vector<std::string>& args) {
  // Reload runs this inside a running daemon: nothing may escape (found by fuzz_config: a JSON
  // number that overflows threw out_of_range past the parse_error handler and killed hdnsd on
  // SIGHUP; corpus: crash_number_overflow).
  try {
    auto r = parseCommandLineImpl(args);
    if (!r) return Unexpected{printable(r.error())};
    return r;
  } catch (const std::exception& e) {
    return Unexpected{printable(std::string("configuration: ") + e.what())};
  }
}

namespace {
Result<CommandLine, std::string> parseCommandLineImpl(const std::vector<std::string>& args) {
  CommandLine cl;
  // Pass 1: split into (option, value) pairs and find --config, so the file is applied first.
  std::vector<std::pair<const Option*, std::string>> given;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      cl.action = Action::kHelp;
      return cl;
    }
    if (a == "--version") {
      cl.action = Action::kVersion;
      return cl;
    }
    if (a == "--check-config") {  // validate, print the effective configuration, exit
      cl.action = Action::kCheckConfig;
      continue;
    }
    if (a.rfind("--", 0) != 0) return Unexpected{"unexpected argument \"" + a + "\" (see --help)"};
    std::string name = a.substr(2), value;
    bool inlineValue = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      inlineValue = true;
    }
    const Option* o = findOption(name);
    if (!o) return Unexpected{"unknown flag --" + name + " (see --help)"};
    if (!inlineValue && !o->valueName) {
      value = "true";  // a switch: --upstream-tcp means --upstream-tcp=true
    } else if (!inlineValue) {
      if (i + 1 >= args.size()) return Unexpected{"--" + name + ": needs a value (" + o->valueName + ")"};
      value = args[++i];
    }
    given.emplace_back(o, value);
  }
  Config& c = cl.config;
  for (const auto& [o, v] : given)
    if (std::string_view(o->name) == "config") {
      if (auto e = o->apply(c, v)) return Unexpected{"--config: " + *e};
      if (auto e = applyConfigFile(c, v)) return Unexpected{*e};
    }
  // Pass 2: flags override the file; the first --listen on the command line replaces the file's list.
  bool listenFromFlags = false;
  for (const auto& [o, v] : given) {
    if (std::string_view(o->name) == "config") continue;
    if (std::string_view(o->name) == "listen" && !listenFromFlags) {
      c.listen.clear();
      listenFromFlags = true;
    }
    if (auto e = o->apply(c, v)) return Unexpected{"--" + std::string(o->name) + ": " + *e};
  }
  if (c.listen.empty()) c.listen.push_back(*SockAddr::parse("127.0.0.1:53"));
  if (c.setupInterface && ops::interfaceAddresses(c.listen).empty())
    return Unexpected{std::string("--setup-interface: no --listen address to put on the interface "
                                  "(loopback and unspecified ones are skipped), e.g. --listen 169.254.20.10:53")};
  if (!c.endpointsFile.empty() && !c.kubeApi.empty())
    return Unexpected{std::string("--endpoints-file and --kube-api are alternatives: give one cluster source")};
  // The downward API sets NODE_NAME (fieldRef spec.nodeName); a zone has no fieldRef, so
  // NODE_ZONE is whatever the operator wires in (else the view tells, see README).
  if (c.nodeName.empty())
    if (const char* e = std::getenv("NODE_NAME")) c.nodeName = e;
  if (c.nodeZone.empty())
    if (const char* e = std::getenv("NODE_ZONE")) c.nodeZone = e;
  // --autopath maps client IPs to namespaces from this node's pods, watched on the API.
  if (c.autopath && c.nodeName.empty())
    return Unexpected{std::string("--autopath: needs this node's name: --node-name or env NODE_NAME "
                                  "(downward API spec.nodeName)")};
  if (c.autopath && !c.endpointsFile.empty())
    return Unexpected{std::string("--autopath: needs the Kubernetes API (the pods of this node), not --endpoints-file")};
  if (c.autopath && c.kubeApi.empty() && !std::getenv("KUBERNETES_SERVICE_HOST"))
    return Unexpected{std::string("--autopath: needs the Kubernetes API (the pods of this node): --kube-api, "
                                  "or run in a pod")};
  if (c.autopath && c.headlessOnly)
    return Unexpected{std::string("--autopath: not with --headless-only (a partial view cannot tell which "
                                  "search names exist)")};
  return cl;
}

}  // namespace

std::string usage() {
  std::string s =
      "usage: hdnsd [options]\n"
      "A node-local caching DNS resolver for Kubernetes.\n\noptions (every one is also a key of --config FILE.json):\n";
  for (const auto& o : options()) {
    std::string left = std::string("  --") + o.name + (o.valueName ? std::string(" ") + o.valueName : "");
    if (left.size() < 34) left.resize(34, ' ');
    s += left + " " + o.help + "\n";
  }
  s += "  --check-config                   validate the configuration, print it as JSON and exit (0; 2: invalid)\n"
       "  --help                           this text\n  --version                        print the version\n";
  return s;
}

std::string toJson(const Config& c) {
  nlohmann::json j;
  if (!c.configFile.empty()) j["config"] = c.configFile;
  auto& listen = j["listen"] = nlohmann::json::array();
  for (const auto& a : c.listen) listen.push_back(a.text());
  j["cluster-domain"] = c.clusterDomain;
  if (!c.endpointsFile.empty()) j["endpoints-file"] = c.endpointsFile;
  if (!c.kubeApi.empty()) j["kube-api"] = c.kubeApi;
  if (!c.kubeTokenFile.empty()) j["kube-token-file"] = c.kubeTokenFile;
  if (!c.kubeCaFile.empty()) j["kube-ca-file"] = c.kubeCaFile;
  if (!c.kubeLabelSelector.empty()) j["kube-label-selector"] = c.kubeLabelSelector;
  if (!c.namespaces.empty()) j["namespace"] = c.namespaces;
  j["headless-only"] = c.headlessOnly ? "true" : "false";
  j["kube-page-size"] = c.kubePageSize;
  j["kube-max-event-bytes"] = c.kubeMaxEventBytes;
  j["kube-watch-timeout"] = c.kubeWatchTimeout_s;
  j["kube-streaming-list"] = c.kubeStreamingList ? "true" : "false";
  j["ttl"] = c.ttl_s;
  if (c.metrics) j["metrics"] = c.metrics->text();
  j["log-level"] = log::levelName(c.logLevel);
  j["log-format"] = log::formatName(c.logFormat);
  j["query-log"] = c.queryLog ? "true" : "false";
  j["query-log-sample"] = c.queryLogSample;
  j["lameduck"] = c.lameduck_s;
  j["workers"] = workersFor(c);
  if (!c.user.empty()) j["user"] = c.user;
  if (!c.stateFile.empty()) j["state-file"] = c.stateFile;
  j["state-file-interval"] = c.stateFileInterval_s;
  j["tcp-idle-timeout"] = c.tcpIdleTimeout_ms / 1000.0;
  j["max-tcp-connections"] = c.maxTcpConnections;
  j["tcp-max-pending-bytes"] = c.tcpMaxPendingBytes;
  j["edns-udp-size"] = c.ednsUdpSize;
  j["allow"] = c.allow.empty() ? query::defaultAllowList() : c.allow;
  j["max-udp-amplification"] = c.maxUdpAmplification;
  j["tcp-max-in-flight"] = c.tcpMaxInFlight;
  j["max-tcp-connections-per-client"] = c.maxTcpConnectionsPerClient;
  j["policy"] = c.policy;
  j["max-answers"] = c.maxAnswers;
  if (!c.nodeName.empty()) j["node-name"] = c.nodeName;
  if (!c.nodeZone.empty()) j["zone"] = c.nodeZone;
  j["terminating-fallback"] = c.terminatingFallback ? "true" : "false";
  j["autopath"] = c.autopath ? "true" : "false";
  if (!c.upstreams.empty()) {
    auto& up = j["upstream"] = nlohmann::json::array();
    for (const auto& a : c.upstreams) up.push_back(a.text());
  }
  if (!c.stubZones.empty()) {
    auto& sz = j["stub-zone"] = nlohmann::json::array();
    for (const auto& z : c.stubZones) sz.push_back(upstream::stubZoneText(z));
  }
  j["upstream-tcp"] = c.upstreamTcp ? "true" : "false";
  j["upstream-timeout"] = c.upstreamTimeout_ms;
  j["upstream-tries"] = c.upstreamTries;
  j["resolv-conf"] = c.resolvConf;
  j["cache-size"] = c.cache.maxEntries;
  j["cache-max-bytes"] = c.cache.maxBytes;
  j["min-ttl"] = c.cache.minTtl_s;
  j["max-ttl"] = c.cache.maxTtl_s;
  j["negative-max-ttl"] = c.cache.negativeMaxTtl_s;
  j["servfail-ttl"] = c.cache.servfailTtl_s;
  j["stale-ttl"] = c.cache.staleTtl_s;
  j["max-stale"] = c.cache.maxStale_s;
  j["prefetch-threshold"] = c.cache.prefetchPercent;
  j["aaaa"] = c.aaaa == Config::Aaaa::kNoData ? "nodata" : c.aaaa == Config::Aaaa::kForward ? "forward" : "auto";
  j["setup-interface"] = c.setupInterface ? "true" : "false";
  j["interface-name"] = c.interfaceName;
  j["notrack"] = c.notrack ? "true" : "false";
  // A flag's value need not be UTF-8 (`--user $'\x92'`): dump() would throw (found by
  // fuzz_config, corpus: crash_invalid_utf8_flag); replace such bytes with U+FFFD instead.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

uint32_t workersFor(const Config& c) {
  if (c.workers != 0) return c.workers;
  static const uint32_t kUsable = std::min<uint32_t>(util::usableCpus(), kMaxWorkers);  // read once
  return kUsable;
}

}  // namespace hdnsd::config
