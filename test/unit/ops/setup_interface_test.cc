// InterfaceSetup against a fake `ip`/`iptables`: which commands run for a fresh node, for what a
// crashed run left, and at exit. The real commands run in test/integration/test_setup_interface.py.
#include "hdnsd/ops/setup_interface.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "hdnsd/config/config.h"

using hdnsd::SockAddr;
using namespace hdnsd::ops;

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& w : v) s += (s.empty() ? "" : " ") + w;
  return s;
}

// Records every command; answers from a table keyed by the command's text (default: status 0).
struct FakeShell {
  std::vector<std::string> ran;
  std::map<std::string, CommandResult> answers;
  RunCommand runner() {
    return [this](const std::vector<std::string>& argv) {
      ran.push_back(join(argv));
      auto it = answers.find(join(argv));
      return it == answers.end() ? CommandResult{0, "", ""} : it->second;
    };
  }
  size_t count(const std::string& prefix) const {
    return size_t(std::count_if(ran.begin(), ran.end(), [&](const std::string& c) { return c.rfind(prefix, 0) == 0; }));
  }
  bool has(const std::string& cmd) const { return std::find(ran.begin(), ran.end(), cmd) != ran.end(); }
};

InterfaceSpec spec(std::vector<const char*> addrs, bool notrack = true) {
  InterfaceSpec s;
  s.name = "nodelocaldns";
  for (auto a : addrs) s.addrs.push_back(*SockAddr::parse(a));
  s.notrack = notrack;
  return s;
}

auto never = [](const SockAddr&) { return false; };

}  // namespace

TEST_CASE("interfaceAddresses: loopback and unspecified --listen addresses stay off the interface") {
  std::vector<SockAddr> listen;
  for (auto a : {"127.0.0.1:53", "169.254.20.10:53", "0.0.0.0:53", "[::1]:53", "[::]:53", "10.96.0.10:53", "[fd00::a]:53"})
    listen.push_back(*SockAddr::parse(a));
  auto got = interfaceAddresses(listen);
  REQUIRE(got.size() == 3);
  CHECK(got[0].text() == "169.254.20.10:53");
  CHECK(got[1].text() == "10.96.0.10:53");
  CHECK(got[2].text() == "[fd00::a]:53");
}

TEST_CASE("desiredRules: NodeLocal DNSCache's ten rules per address, tagged, nothing with notrack off") {
  InterfaceSetup s(spec({"169.254.20.10:53"}), [](const std::vector<std::string>&) { return CommandResult{0, "", ""}; }, never);
  auto rules = s.desiredRules();
  REQUIRE(rules.size() == 10);
  CHECK(rules[0].table == "raw");
  CHECK(rules[0].chain == "PREROUTING");
  CHECK(join(rules[0].args) == "-p udp -d 169.254.20.10 --dport 53 -m comment --comment hdnsd:nodelocaldns -j NOTRACK");
  size_t notrack = 0, accept = 0;
  for (const auto& r : rules) {
    CHECK_FALSE(r.ipv6);
    notrack += r.args.back() == "NOTRACK";
    accept += r.args.back() == "ACCEPT";
  }
  CHECK(notrack == 6);
  CHECK(accept == 4);
  InterfaceSetup off(spec({"169.254.20.10:53"}, false), nullptr, never);
  CHECK(off.desiredRules().empty());
}

TEST_CASE("splitSaveLine: iptables -S quoting") {
  auto w = splitSaveLine(R"(-A OUTPUT -s 169.254.20.10/32 -p udp -m comment --comment "hdnsd:a b" -j NOTRACK)");
  REQUIRE(w.size() == 12);
  CHECK(w[9] == "hdnsd:a b");
  CHECK(splitSaveLine(R"(-A X --comment "say \"hi\"")").back() == "say \"hi\"");
}

TEST_CASE("setUp on a fresh node: creates the dummy link, adds the /32, inserts every rule once") {
  FakeShell sh;
  sh.answers["ip -o link show dev nodelocaldns"] = {1, "", "Device \"nodelocaldns\" does not exist.\n"};
  InterfaceSetup s(spec({"169.254.20.10:53"}), sh.runner(), never);
  REQUIRE(s.setUp().has_value());
  CHECK(sh.has("ip link add nodelocaldns type dummy"));
  CHECK(sh.has("ip link set dev nodelocaldns up"));
  CHECK(sh.has("ip addr add 169.254.20.10/32 dev nodelocaldns"));
  CHECK(sh.count("iptables -w 5 -t raw -I ") == 6);
  CHECK(sh.count("iptables -w 5 -t filter -I ") == 4);
  CHECK(sh.has("iptables -w 5 -t raw -I PREROUTING -p tcp -d 169.254.20.10 --dport 53 -m comment --comment hdnsd:nodelocaldns -j NOTRACK"));
  CHECK(sh.count("ip6tables -w 5 -t raw -I") == 0);
}

TEST_CASE("setUp without the dummy driver falls back to a bridge") {
  FakeShell sh;
  sh.answers["ip -o link show dev nodelocaldns"] = {1, "", ""};
  sh.answers["ip link add nodelocaldns type dummy"] = {2, "", "Error: Unknown device type.\n"};
  InterfaceSetup s(spec({"169.254.20.10:53"}, false), sh.runner(), never);
  REQUIRE(s.setUp().has_value());
  CHECK(sh.has("ip link add nodelocaldns type bridge"));
}

TEST_CASE("setUp after a crash: adopts the link, keeps one copy of each rule, removes stale ones") {
  FakeShell sh;  // `ip -o link show` succeeds: the interface is there
  sh.answers["ip -o addr show dev nodelocaldns"] = {0,
      "5: nodelocaldns    inet 169.254.20.10/32 scope global nodelocaldns\\       valid_lft forever preferred_lft forever\n"
      "5: nodelocaldns    inet 169.254.20.11/32 scope global nodelocaldns\\       valid_lft forever preferred_lft forever\n"
      "5: nodelocaldns    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever\n", ""};
  const std::string tag = " -m comment --comment \"hdnsd:nodelocaldns\" -j NOTRACK\n";
  sh.answers["iptables -w 5 -t raw -S"] = {0,
      "-P PREROUTING ACCEPT\n-P OUTPUT ACCEPT\n"
      "-A PREROUTING -d 169.254.20.10/32 -p udp -m udp --dport 53" + tag +
      "-A PREROUTING -d 169.254.20.10/32 -p udp -m udp --dport 53" + tag +      // a duplicate
      "-A PREROUTING -d 169.254.20.11/32 -p udp -m udp --dport 53" + tag +      // a stale address
      "-A PREROUTING -d 10.0.0.1/32 -p udp -m udp --dport 53 -j NOTRACK\n",     // not ours: untouched
      ""};
  InterfaceSetup s(spec({"169.254.20.10:53"}), sh.runner(), never);
  REQUIRE(s.setUp().has_value());
  CHECK(sh.count("ip link add") == 0);
  CHECK(sh.has("ip addr del 169.254.20.11/32 dev nodelocaldns"));
  CHECK(sh.count("ip addr add") == 0);
  CHECK(sh.count("ip addr del") == 1);  // the fe80:: address is the kernel's
  CHECK(sh.count("iptables -w 5 -t raw -D PREROUTING") == 2);
  CHECK(sh.has("iptables -w 5 -t raw -D PREROUTING -d 169.254.20.11/32 -p udp -m udp --dport 53 -m comment --comment hdnsd:nodelocaldns -j NOTRACK"));
  CHECK_FALSE(sh.has("iptables -w 5 -t raw -D PREROUTING -d 10.0.0.1/32 -p udp -m udp --dport 53 -j NOTRACK"));
  // The surviving udp PREROUTING rule is not inserted again; the other five raw rules are.
  CHECK(sh.count("iptables -w 5 -t raw -I ") == 5);
}

TEST_CASE("setUp fails with one message when iptables cannot be listed") {
  FakeShell sh;
  sh.answers["iptables -w 5 -t raw -S"] = {-1, "", "iptables: No such file or directory"};
  InterfaceSetup s(spec({"169.254.20.10:53"}), sh.runner(), never);
  auto r = s.setUp();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("iptables -t raw -S") != std::string::npos);
}

TEST_CASE("tearDown: deletes our rules and the link; leaves everything while the address is in use") {
  const std::string listed = "-A PREROUTING -d 169.254.20.10/32 -p udp -m udp --dport 53 -m comment --comment \"hdnsd:nodelocaldns\" -j NOTRACK\n";
  {
    FakeShell sh;
    sh.answers["iptables -w 5 -t raw -S"] = {0, listed, ""};
    InterfaceSetup s(spec({"169.254.20.10:53"}), sh.runner(), never);
    REQUIRE(s.setUp().has_value());
    sh.ran.clear();
    s.tearDown();
    CHECK(sh.count("iptables -w 5 -t raw -D PREROUTING") == 1);
    CHECK(sh.has("ip link del dev nodelocaldns"));
    sh.ran.clear();
    s.tearDown();  // twice: nothing more
    CHECK(sh.ran.empty());
  }
  {
    FakeShell sh;
    InterfaceSetup s(spec({"169.254.20.10:53"}), sh.runner(), [](const SockAddr&) { return true; });
    REQUIRE(s.setUp().has_value());
    sh.ran.clear();
    s.tearDown();
    CHECK(sh.ran.empty());
  }
  {
    FakeShell sh;  // never set up: nothing to undo
    InterfaceSetup s(spec({"169.254.20.10:53"}), sh.runner(), never);
    s.tearDown();
    CHECK(sh.ran.empty());
  }
}

TEST_CASE("addressInUse: a UDP socket bound to the address, seen in /proc/net/udp") {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  socklen_t len = sizeof sin;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0);
  auto addr = *SockAddr::parse("127.0.0.1:" + std::to_string(ntohs(sin.sin_port)));
  CHECK(addressInUse(addr));
  close(fd);
  CHECK_FALSE(addressInUse(addr));
}

TEST_CASE("runCommand: status, stdout and stderr of a real process; a missing program is status -1") {
  auto r = runCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  CHECK(r.status == 3);
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  auto missing = runCommand({"hdnsd-no-such-program"});
  CHECK(missing.status != 0);
}

TEST_CASE("config: --setup-interface needs a non-loopback --listen; --interface-name is a kernel name") {
  using hdnsd::config::parseCommandLine;
  auto ok = parseCommandLine({"--listen", "169.254.20.10:53", "--listen", "127.0.0.1:53", "--setup-interface",
                              "--interface-name", "hdnsd0", "--notrack=false"});
  REQUIRE(ok.has_value());
  CHECK(ok->config.setupInterface);
  CHECK(ok->config.interfaceName == "hdnsd0");
  CHECK_FALSE(ok->config.notrack);
  CHECK(interfaceAddresses(ok->config.listen).size() == 1);
  auto loopOnly = parseCommandLine({"--listen", "127.0.0.1:53", "--setup-interface"});
  REQUIRE_FALSE(loopOnly.has_value());
  CHECK(loopOnly.error().rfind("--setup-interface:", 0) == 0);
  CHECK_FALSE(parseCommandLine({"--interface-name", "a-name-of-16-chr"}).has_value());
  CHECK_FALSE(parseCommandLine({"--interface-name", "a/b"}).has_value());
  CHECK(parseCommandLine({"--interface-name", "nodelocaldns15c"}).has_value());  // 15: IFNAMSIZ - 1
  auto defaults = parseCommandLine({});
  REQUIRE(defaults.has_value());
  CHECK_FALSE(defaults->config.setupInterface);
  CHECK(defaults->config.interfaceName == "nodelocaldns");
  CHECK(defaults->config.notrack);
}
