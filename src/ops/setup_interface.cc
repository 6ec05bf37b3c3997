#include "hdnsd/ops/setup_interface.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "hdnsd/util/log.h"

extern char** environ;

namespace hdnsd::ops {
namespace {

constexpr int kCommandTimeout_ms = 10'000;  // iptables waits at most 5 s for its lock (-w 5)

std::string joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a.find(' ') == std::string::npos ? a : "\"" + a + "\"";
  }
  return s;
}

// The address without its port: "169.254.20.10", "fd00::10".
std::string hostText(const SockAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.family() == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a.get())->sin6_addr, buf, sizeof buf);
  else
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a.get())->sin_addr, buf, sizeof buf);
  return buf;
}

std::string stripPrefixLen(const std::string& s) {
  if (s.size() > 3 && s.compare(s.size() - 3, 3, "/32") == 0) return s.substr(0, s.size() - 3);
  if (s.size() > 4 && s.compare(s.size() - 4, 4, "/128") == 0) return s.substr(0, s.size() - 4);
  return s;
}

// What identifies one of our rules whatever the spelling: `iptables -S` writes
// `-A OUTPUT -s 169.254.20.10/32 -p udp -m udp --sport 53 -m comment --comment "hdnsd:x" -j NOTRACK`
// for what we inserted as `-p udp -s 169.254.20.10 --sport 53 ...`.
std::string ruleKey(const std::string& chain, const std::vector<std::string>& w) {
  std::string p, s, d, sport, dport, j;
  for (size_t i = 0; i + 1 < w.size(); ++i) {
    const std::string& k = w[i];
    if (k == "-p") p = w[++i];
    else if (k == "-s") s = stripPrefixLen(w[++i]);
    else if (k == "-d") d = stripPrefixLen(w[++i]);
    else if (k == "--sport") sport = w[++i];
    else if (k == "--dport") dport = w[++i];
    else if (k == "-j") j = w[++i];
  }
  return chain + "|" + p + "|" + s + "|" + d + "|" + sport + "|" + dport + "|" + j;
}

bool isLoopbackOrAny(const SockAddr& a) {
  if (a.family() == AF_INET) {
    uint32_t ip = ntohl(reinterpret_cast<const sockaddr_in*>(a.get())->sin_addr.s_addr);
    return ip == 0 || (ip >> 24) == 127;
  }
  const in6_addr& ip6 = reinterpret_cast<const sockaddr_in6*>(a.get())->sin6_addr;
  return IN6_IS_ADDR_UNSPECIFIED(&ip6) || IN6_IS_ADDR_LOOPBACK(&ip6);
}

}  // namespace

CommandResult runCommand(const std::vector<std::string>& argv) {
  CommandResult r;
  if (argv.empty()) return r;
  int outPipe[2], errPipe[2];
  if (pipe2(outPipe, O_CLOEXEC) != 0) return {-1, "", std::strerror(errno)};
  if (pipe2(errPipe, O_CLOEXEC) != 0) {
    close(outPipe[0]), close(outPipe[1]);
    return {-1, "", std::strerror(errno)};
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, outPipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, errPipe[1], 2);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int err = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(outPipe[1]);
  close(errPipe[1]);
  if (err != 0) {
    close(outPipe[0]), close(errPipe[0]);
    return {-1, "", argv[0] + ": " + std::strerror(err)};
  }
  // Read both pipes until the child closes them, within the deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kCommandTimeout_ms);
  pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open = 2;
  bool timedOut = false;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) { timedOut = true; break; }
    int n = poll(fds, 2, int(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { timedOut = n == 0; break; }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, size_t(got));
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  if (timedOut) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timedOut) {
    r.status = -1;
    r.err += "timed out after 10 s";
  } else {
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  return r;
}

std::vector<SockAddr> interfaceAddresses(const std::vector<SockAddr>& listen) {
  std::vector<SockAddr> out;
  for (const auto& a : listen)
    if (!isLoopbackOrAny(a)) out.push_back(a);
  return out;
}

// /proc/net/udp{,6} lists every UDP socket of this network namespace with its local address as
// the kernel's words in hex ("0A14FEA9:0035" is 169.254.20.10:53 on little-endian). Reading it
// needs no privilege, unlike a test bind to port 53 after --user dropped CAP_NET_BIND_SERVICE.
bool addressInUse(const SockAddr& addr) {
  char want[64];
  if (addr.family() == AF_INET6) {
    const auto* w = reinterpret_cast<const uint32_t*>(&reinterpret_cast<const sockaddr_in6*>(addr.get())->sin6_addr);
    std::snprintf(want, sizeof want, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3], unsigned(addr.port()));
  } else {
    std::snprintf(want, sizeof want, "%08X:%04X", reinterpret_cast<const sockaddr_in*>(addr.get())->sin_addr.s_addr,
                  unsigned(addr.port()));
  }
  std::ifstream in(addr.family() == AF_INET6 ? "/proc/net/udp6" : "/proc/net/udp");
  if (!in) {  // no /proc: try to bind the address ourselves (no SO_REUSEPORT)
    int fd = socket(addr.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    socklen_t len = addr.family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    bool inUse = bind(fd, addr.get(), len) != 0 && errno == EADDRINUSE;
    close(fd);
    return inUse;
  }
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string slot, local;
    if (words >> slot >> local && local == want) return true;
  }
  return false;
}

std::vector<std::string> splitSaveLine(const std::string& line) {
  std::vector<std::string> words;
  std::string w;
  bool inWord = false, quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\\' && i + 1 < line.size()) {
      w += line[++i];
      inWord = true;
    } else if (c == '"') {
      quoted = !quoted;
      inWord = true;
    } else if ((c == ' ' || c == '\t' || c == '\n') && !quoted) {
      if (inWord) words.push_back(std::move(w));
      w.clear();
      inWord = false;
    } else {
      w += c;
      inWord = true;
    }
  }
  if (inWord) words.push_back(std::move(w));
  return words;
}

InterfaceSetup::InterfaceSetup(InterfaceSpec spec, RunCommand run, std::function<bool(const SockAddr&)> inUse)
    : spec_(std::move(spec)), run_(std::move(run)), inUse_(std::move(inUse)) {}

CommandResult InterfaceSetup::run(const std::vector<std::string>& argv) {
  CommandResult r = run_(argv);
  LOG_DEBUG("setup-interface: %s -> %d", joined(argv).c_str(), r.status);
  return r;
}

std::vector<Rule> InterfaceSetup::desiredRules() const {
  std::vector<Rule> rules;
  if (!spec_.notrack) return rules;
  std::set<std::string> seen;
  for (const auto& a : spec_.addrs) {
    const bool v6 = a.family() == AF_INET6;
    const std::string ip = hostText(a), port = std::to_string(a.port());
    for (const char* proto : {"udp", "tcp"}) {
      auto add = [&](const char* table, const char* chain, const char* dir, const char* portFlag, const char* target) {
        Rule r{v6, table, chain, {"-p", proto, dir, ip, portFlag, port, "-m", "comment", "--comment", tag(), "-j", target}};
        if (seen.insert(std::string(v6 ? "6" : "4") + table + ruleKey(r.chain, r.args)).second) rules.push_back(std::move(r));
      };
      add("raw", "PREROUTING", "-d", "--dport", "NOTRACK");
      add("raw", "OUTPUT", "-s", "--sport", "NOTRACK");
      add("raw", "OUTPUT", "-d", "--dport", "NOTRACK");
      add("filter", "INPUT", "-d", "--dport", "ACCEPT");
      add("filter", "OUTPUT", "-s", "--sport", "ACCEPT");
    }
  }
  return rules;
}

Result<void, std::string> InterfaceSetup::setUp() {
  if (spec_.addrs.empty())
    return Unexpected{std::string("no --listen address to put on the interface (loopback and unspecified ones are skipped)")};
  active_ = true;  // from here on, tearDown() undoes even a half-done setup
  if (auto r = ensureLink(); !r) return r;
  if (auto r = ensureAddresses(); !r) return r;
  if (auto r = syncRules(spec_.notrack); !r) return r;
  std::string addrs;
  for (const auto& a : spec_.addrs) addrs += (addrs.empty() ? "" : " ") + hostText(a);
  LOG_INFO("setup-interface: %s holds %s%s", spec_.name.c_str(), addrs.c_str(),
           spec_.notrack ? " (NOTRACK rules installed)" : " (no NOTRACK rules)");
  return {};
}

Result<void, std::string> InterfaceSetup::ensureLink() {
  if (run({"ip", "-o", "link", "show", "dev", spec_.name}).status == 0) {
    LOG_INFO("setup-interface: adopting the existing interface %s", spec_.name.c_str());
  } else {
    auto add = run({"ip", "link", "add", spec_.name, "type", "dummy"});
    if (add.status != 0) {
      auto bridge = run({"ip", "link", "add", spec_.name, "type", "bridge"});
      if (bridge.status != 0)
        return Unexpected{"ip link add " + spec_.name + " type dummy (then type bridge): " + add.err};
      LOG_WARN("setup-interface: no dummy interfaces here (%s); %s is a bridge without ports instead",
               add.err.empty() ? "ip link add failed" : add.err.substr(0, add.err.find('\n')).c_str(),
               spec_.name.c_str());
    }
  }
  auto up = run({"ip", "link", "set", "dev", spec_.name, "up"});
  if (up.status != 0) return Unexpected{"ip link set dev " + spec_.name + " up: " + up.err};
  return {};
}

Result<void, std::string> InterfaceSetup::ensureAddresses() {
  std::set<std::string> want;
  for (const auto& a : spec_.addrs) want.insert(hostText(a));
  auto show = run({"ip", "-o", "addr", "show", "dev", spec_.name});
  if (show.status != 0) return Unexpected{"ip addr show dev " + spec_.name + ": " + show.err};
  std::set<std::string> have;
  std::istringstream lines(show.out);
  for (std::string line; std::getline(lines, line);) {
    auto w = splitSaveLine(line);
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      if (w[i] != "inet" && w[i] != "inet6") continue;
      const std::string& cidr = w[i + 1];
      std::string ip = cidr.substr(0, cidr.find('/'));
      if (ip.rfind("fe80:", 0) == 0) break;  // the kernel's own IPv6 link-local address
      if (want.count(ip)) {
        have.insert(ip);
      } else {  // left by a run with other --listen addresses
        LOG_INFO("setup-interface: removing stale address %s from %s", cidr.c_str(), spec_.name.c_str());
        run({"ip", "addr", "del", cidr, "dev", spec_.name});
      }
      break;
    }
  }
  for (const auto& a : spec_.addrs) {
    std::string ip = hostText(a);
    if (have.count(ip)) continue;
    std::vector<std::string> cmd = {"ip", "addr", "add", ip + (a.family() == AF_INET6 ? "/128" : "/32"), "dev", spec_.name};
    if (a.family() == AF_INET6) cmd.push_back("nodad");  // no duplicate address detection: bind at once
    LOG_INFO("setup-interface: %s", joined(cmd).c_str());
    auto r = run(cmd);
    if (r.status != 0) return Unexpected{joined(cmd) + ": " + r.err};
    have.insert(ip);
  }
  return {};
}

// Lists the tagged rules of both families and both tables; deletes duplicates, and every rule
// not wanted (all of them when !keepDesired); inserts the wanted ones that are missing.
Result<void, std::string> InterfaceSetup::syncRules(bool keepDesired) {
  std::vector<Rule> desired = keepDesired ? desiredRules() : std::vector<Rule>{};
  for (bool v6 : {false, true}) {
    const char* bin = v6 ? "ip6tables" : "iptables";
    bool needed = false;
    for (const auto& r : desired) needed |= r.ipv6 == v6;
    for (const char* table : {"raw", "filter"}) {
      std::set<std::string> wanted, present;
      for (const auto& r : desired)
        if (r.ipv6 == v6 && r.table == table) wanted.insert(ruleKey(r.chain, r.args));
      auto list = run({bin, "-w", "5", "-t", table, "-S"});
      if (list.status != 0) {
        if (needed) return Unexpected{std::string(bin) + " -t " + table + " -S: " + (list.err.empty() ? "failed" : list.err)};
        continue;  // nothing of ours can be there that we could remove
      }
      std::istringstream lines(list.out);
      for (std::string line; std::getline(lines, line);) {
        auto w = splitSaveLine(line);
        if (w.size() < 2 || w[0] != "-A") continue;
        bool ours = false;
        for (size_t i = 0; i + 1 < w.size(); ++i) ours |= w[i] == "--comment" && w[i + 1] == tag();
        if (!ours) continue;
        std::string key = ruleKey(w[1], w);
        if (wanted.count(key) && present.insert(key).second) continue;  // keep the first copy
        std::vector<std::string> del = {bin, "-w", "5", "-t", table, "-D"};
        del.insert(del.end(), w.begin() + 1, w.end());
        LOG_INFO("setup-interface: %s", joined(del).c_str());
        if (auto r = run(del); r.status != 0)
          LOG_WARN("setup-interface: %s failed: %s", joined(del).c_str(), r.err.c_str());
      }
      for (const auto& r : desired) {
        if (r.ipv6 != v6 || r.table != table || present.count(ruleKey(r.chain, r.args))) continue;
        std::vector<std::string> ins = {bin, "-w", "5", "-t", table, "-I", r.chain};
        ins.insert(ins.end(), r.args.begin(), r.args.end());
        LOG_INFO("setup-interface: %s", joined(ins).c_str());
        auto res = run(ins);
        if (res.status != 0) return Unexpected{joined(ins) + ": " + res.err};
        present.insert(ruleKey(r.chain, r.args));
      }
    }
  }
  return {};
}

void InterfaceSetup::tearDown() {
  if (!active_) return;
  active_ = false;
  for (const auto& a : spec_.addrs) {
    if (inUse_(a)) {
      LOG_INFO("setup-interface: %s is still served by another process; leaving %s and its rules",
               a.text().c_str(), spec_.name.c_str());
      return;
    }
  }
  (void)syncRules(false);  // with nothing desired it only deletes, and never fails
  if (run({"ip", "-o", "link", "show", "dev", spec_.name}).status != 0) return;
  LOG_INFO("setup-interface: ip link del dev %s", spec_.name.c_str());
  if (auto r = run({"ip", "link", "del", "dev", spec_.name}); r.status != 0)
    LOG_WARN("setup-interface: ip link del dev %s: %s", spec_.name.c_str(), r.err.c_str());
}

}  // namespace hdnsd::ops
