#include "hdnsd/config/config.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "hdnsd/dns/name.h"

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
    if (!inlineValue) {
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
  j["ttl"] = c.ttl_s;
  if (c.metrics) j["metrics"] = c.metrics->text();
  j["log-level"] = log::levelName(c.logLevel);
  j["tcp-idle-timeout"] = c.tcpIdleTimeout_ms / 1000.0;
  j["max-tcp-connections"] = c.maxTcpConnections;
  j["tcp-max-pending-bytes"] = c.tcpMaxPendingBytes;
  j["edns-udp-size"] = c.ednsUdpSize;
  return j.dump();
}

}  // namespace hdnsd::config
