#include "hdnsd/config/config.h"

#include <charconv>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "hdnsd/dns/name.h"
#include "hdnsd/policy/spread.h"
#include "hdnsd/upstream/upstreams.h"

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
  } catch (const nlohmann::json::parse_error& e) {
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

Result<CommandLine, std::string> parseCommandLine(const std::vector<std::string>& args) {
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
  if (!c.endpointsFile.empty() && !c.kubeApi.empty())
    return Unexpected{std::string("--endpoints-file and --kube-api are alternatives: give one cluster source")};
  // The downward API sets NODE_NAME (fieldRef spec.nodeName); a zone has no fieldRef, so
  // NODE_ZONE is whatever the operator wires in (else the view tells, see README).
  if (c.nodeName.empty())
    if (const char* e = std::getenv("NODE_NAME")) c.nodeName = e;
  if (c.nodeZone.empty())
    if (const char* e = std::getenv("NODE_ZONE")) c.nodeZone = e;
  return cl;
}

std::string usage() {
  std::string s =
      "usage: hdnsd [options]\n"
      "A node-local caching DNS resolver for Kubernetes.\n\noptions (every one is also a key of --config FILE.json):\n";
  for (const auto& o : options()) {
    std::string left = std::string("  --") + o.name + (o.valueName ? std::string(" ") + o.valueName : "");
    if (left.size() < 34) left.resize(34, ' ');
    s += left + " " + o.help + "\n";
  }
  s += "  --help                           this text\n  --version                        print the version\n";
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
  j["tcp-idle-timeout"] = c.tcpIdleTimeout_ms / 1000.0;
  j["max-tcp-connections"] = c.maxTcpConnections;
  j["tcp-max-pending-bytes"] = c.tcpMaxPendingBytes;
  j["edns-udp-size"] = c.ednsUdpSize;
  j["policy"] = c.policy;
  j["max-answers"] = c.maxAnswers;
  if (!c.nodeName.empty()) j["node-name"] = c.nodeName;
  if (!c.nodeZone.empty()) j["zone"] = c.nodeZone;
  j["terminating-fallback"] = c.terminatingFallback ? "true" : "false";
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
  return j.dump();
}

}  // namespace hdnsd::config
