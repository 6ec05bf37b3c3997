// --setup-interface: the NodeLocal DNSCache-style link-local address (169.254.20.10) on this node.
//
// setUp() runs before the DNS listeners bind: it makes sure a dummy interface (default
// `nodelocaldns`) exists, is up and carries exactly the --listen addresses that are neither
// loopback nor unspecified (/32 and /128; IPv6 with `nodad` so bind works at once), and, unless
// --notrack=false, that the NOTRACK rules NodeLocal DNSCache installs exist once each:
//   raw    PREROUTING -p udp|tcp -d ADDR --dport PORT -j NOTRACK    pods → us: no conntrack entry
//   raw    OUTPUT     -p udp|tcp -s ADDR --sport PORT -j NOTRACK    our answers
//   raw    OUTPUT     -p udp|tcp -d ADDR --dport PORT -j NOTRACK    hostNetwork clients → us
//   filter INPUT      -p udp|tcp -d ADDR --dport PORT -j ACCEPT     untracked packets match no
//   filter OUTPUT     -p udp|tcp -s ADDR --sport PORT -j ACCEPT     "ESTABLISHED" rule: accept them
// Every rule carries `-m comment --comment hdnsd:<interface>`, so a start recognises what a
// crashed run left: tagged rules are listed (`iptables -S`), duplicates and rules for addresses
// no longer configured are deleted, and only missing ones are inserted (at the top of the chain,
// ahead of kube-proxy's). Nothing is removed and re-added, so a surge pod starting beside a
// running one never opens a gap.
//
// tearDown() runs at exit, after our DNS sockets are closed: if another process still holds one
// of the addresses (a UDP socket bound to it in /proc/net/udp: the other hdnsd of a DaemonSet
// surge, or a systemd socket unit), everything stays; else the tagged rules are deleted
// and the interface removed. A crash (SIGKILL) leaves them; the next start adopts them.
//
// Why `ip` and `iptables` subprocesses rather than netlink: each step is one command an operator
// can read in the log and replay by hand; `iptables` picks the host's backend (nft or legacy, via
// Debian's alternatives) and keeps its own lock, which a hand-written nf_tables client would have
// to reproduce; the cost is a few fork/execs at start and exit, never on the data path. The
// kernel may lack the dummy driver (CONFIG_DUMMY off in some VM kernels): then a port-less bridge
// is made instead, which holds local addresses the same way (logged as a warning).
//
// Control path only (startup and exit, on the loop thread, blocking): errors are strings.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "hdnsd/util/result.h"
#include "hdnsd/util/sock_addr.h"

namespace hdnsd::ops {

struct CommandResult {
  int status = -1;  // exit status; -1: could not run (not found, killed, timed out)
  std::string out;  // stdout
  std::string err;  // stderr (or why it could not run)
};
// Runs argv (argv[0] looked up in PATH) without a shell, capturing its output; at most 10 s.
using RunCommand = std::function<CommandResult(const std::vector<std::string>& argv)>;
CommandResult runCommand(const std::vector<std::string>& argv);

struct InterfaceSpec {
  std::string name = "nodelocaldns";
  std::vector<SockAddr> addrs;  // the addresses to hold, with the DNS port the rules match
  bool notrack = true;
};

// The --listen addresses that belong on the interface: all but loopback and unspecified ones.
std::vector<SockAddr> interfaceAddresses(const std::vector<SockAddr>& listen);

// true if a UDP socket of this network namespace is bound to exactly `addr` (/proc/net/udp{,6}).
bool addressInUse(const SockAddr& addr);

// One iptables rule as its table, chain and match/target arguments (without -A/-I/-D).
struct Rule {
  bool ipv6 = false;
  std::string table, chain;
  std::vector<std::string> args;
};

class InterfaceSetup {
 public:
  explicit InterfaceSetup(InterfaceSpec spec, RunCommand run = runCommand,
                          std::function<bool(const SockAddr&)> inUse = addressInUse);

  Result<void, std::string> setUp();
  // Safe to call more than once, and without setUp() (then it does nothing).
  void tearDown();

  // The rules this spec wants (empty with notrack off), in insertion order.
  std::vector<Rule> desiredRules() const;
  std::string tag() const { return "hdnsd:" + spec_.name; }

 private:
  Result<void, std::string> ensureLink();
  Result<void, std::string> ensureAddresses();
  Result<void, std::string> syncRules(bool keepDesired);
  CommandResult run(const std::vector<std::string>& argv);

  InterfaceSpec spec_;
  RunCommand run_;
  std::function<bool(const SockAddr&)> inUse_;
  bool active_ = false;
};

// Splits one `iptables -S` line into words (double quotes and backslash escapes as iptables
// writes them). Exposed for tests.
std::vector<std::string> splitSaveLine(const std::string& line);

}  // namespace hdnsd::ops
