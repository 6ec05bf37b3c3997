// The Daemon's operational side (issue 6): where the DNS sockets come from (--listen or
// systemd socket activation), dropping root once they are bound, watching --config, telling
// systemd about readiness, and the lame-duck stop. Kept apart from daemon.cc, which wires the
// query path.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "hdnsd/ops/privileges.h"
#include "hdnsd/server/daemon.h"
#include "hdnsd/util/log.h"

namespace hdnsd::server {
namespace {

// "what to do" for the bind errors people meet.
std::string bindHint(const std::string& err) {
  if (err.find("address already in use") != std::string::npos)
    return " (another DNS server, e.g. systemd-resolved or a second hdnsd under another user, holds it: "
           "stop it or choose another --listen)";
  if (err.find("permission denied") != std::string::npos)
    return " (ports below 1024 need root or CAP_NET_BIND_SERVICE: start as root, hdnsd drops to --user after "
           "binding)";
  if (err.find("address not available") != std::string::npos)
    return " (no interface has this address: add it, or use --setup-interface)";
  return {};
}

// Another worker's copy of a systemd socket: every worker polls the one socket (the kernel wakes
// them all; one reads). The unit has no ReusePort=, so they could not bind beside it.
Result<int, std::string> shareFd(int fd, size_t worker) {
  if (fd < 0 || worker == 0) return fd;
  int copy = ::dup(fd);
  if (copy < 0) return Unexpected{std::string("systemd socket: dup: ") + std::strerror(errno)};
  return copy;
}

// Worker 0 binds --listen ADDR:0 to some port; the others join it there.
SockAddr withPort(SockAddr a, uint16_t port) {
  if (a.family() == AF_INET) reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(port);
  if (a.family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
  return a;
}

}  // namespace

// Every worker serves every address: its own SO_REUSEPORT sockets (one group per address, the
// kernel hashes each client's address and port to one of them), or systemd's socket (dup'ed).
Result<void, std::string> Daemon::startListeners() {
  auto activated = ops::ActivatedSockets::fromEnvironment();
  if (!activated.empty()) LOG_INFO("systemd: %zu sockets passed (socket activation)", activated.size());
  for (size_t i = 0; i < cfg_.listen.size(); ++i) {
    const SockAddr& addr = cfg_.listen[i];
    int ufd = activated.take(addr, SOCK_DGRAM), tfd = activated.take(addr, SOCK_STREAM);
    for (auto& w : workers_) {
      auto u = shareFd(ufd, w->index()), t = shareFd(tfd, w->index());
      if (!u) return Unexpected{u.error()};
      if (!t) return Unexpected{t.error()};
      const bool join = w->index() > 0 && addr.port() == 0;
      SockAddr ua = join ? withPort(addr, workers_[0]->udpPort(i)) : addr;
      SockAddr ta = join ? withPort(addr, workers_[0]->tcpPort(i)) : addr;
      if (auto r = w->listen(ua, ta, *u, *t); !r) return Unexpected{"--listen " + r.error() + bindHint(r.error())};
    }
    LOG_INFO("dns: serving UDP and TCP on %s%s", addr.text().c_str(),
             ufd >= 0 && tfd >= 0 ? " (sockets from systemd)" : ufd >= 0 || tfd >= 0 ? " (one socket from systemd)" : "");
  }
  if (workers_.size() > 1) LOG_INFO("dns: %zu workers, each with its own sockets, cache and loop", workers_.size());
  // A socket unit may name an address --listen does not: serve it too (the unit is explicit).
  for (auto* s : activated.untaken()) {
    s->taken = true;
    for (auto& w : workers_) {
      auto fd = shareFd(s->fd, w->index());
      if (!fd) return Unexpected{fd.error()};
      if (auto r = s->type == SOCK_DGRAM ? w->openUdp(*fd) : w->openTcp(*fd); !r)
        return Unexpected{"systemd socket: " + r.error()};
    }
    LOG_WARN("dns: serving %s on %s from systemd although --listen does not name it",
             s->type == SOCK_DGRAM ? "UDP" : "TCP", s->addr.text().c_str());
  }
  return {};
}

Result<void, std::string> Daemon::startOps() {
  // Root is needed for binding only (and, with --setup-interface, CAP_NET_ADMIN to remove the
  // link at exit). The sources start after this, so the files they read later are read as
  // --user from the first time (an unreadable one shows at once, not after a restart).
  const bool wasRoot = geteuid() == 0;
  // CAP_NET_RAW too: iptables-legacy opens a raw socket to read and write its tables.
  uint64_t keep = cfg_.setupInterface ? (uint64_t(1) << 12 /* CAP_NET_ADMIN */) | (uint64_t(1) << 13 /* CAP_NET_RAW */) : 0;
  auto id = ops::dropPrivileges(cfg_.user, keep);
  if (!id) return Unexpected{id.error()};
  if (wasRoot && id->uid != 0)
    LOG_INFO("privileges: sockets bound; now running as %s (uid %u, gid %u)", id->name.c_str(), unsigned(id->uid),
             unsigned(id->gid));
  if (!cfg_.configFile.empty()) {
    configWatch_ = std::make_unique<ops::FileWatch>(loop_, cfg_.configFile, [this] { reload(); });
    if (auto r = configWatch_->start(); !r) {
      LOG_WARN("config: %s", r.error().c_str());
      configWatch_.reset();
    }
  }
  if (notifier_.enabled()) {
    notifier_.status("starting: waiting for the cluster view");
    notifier_.startWatchdog(loop_);
  }
  return {};
}

void Daemon::applyOpsConfig() {
  log::setFormat(cfg_.logFormat);  // the query log's options reach the workers in their Settings
}

std::string Daemon::statusLine() const {
  const auto& view = view_;
  char buf[160];
  std::snprintf(buf, sizeof buf, "serving %zu services, %zu endpoints", view ? size_t(view->serviceCount()) : size_t(0),
                view ? size_t(view->endpointCount()) : size_t(0));
  return buf;
}

void Daemon::afterLoad() {
  if (stopping_ || lameducking_) return;
  if (!readiness_.ready()) return;
  if (!notifiedReady_) {
    notifiedReady_ = true;
    notifier_.ready(statusLine());  // readiness == /ready: every source has synced once
  } else {
    notifier_.status(statusLine());
  }
}

void Daemon::stop() {
  if (stopping_) return;
  if (cfg_.lameduck_s <= 0 || lameducking_) {
    shutdown();  // no lame duck, or a second signal: now
    return;
  }
  lameducking_ = true;
  char why[96];
  std::snprintf(why, sizeof why, "shutting down (lame duck: still answering for %.1f s)", cfg_.lameduck_s);
  readiness_.setStopping(why);
  notifier_.notify(std::string("STOPPING=1\nSTATUS=") + why);
  LOG_INFO("lameduck: /ready fails now; answering queries for %.1f s more", cfg_.lameduck_s);
  int err = 0;
  lameduckTimer_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (!lameduckTimer_) {
    shutdown();
    return;
  }
  lameduckTimer_->data = this;
  uv_timer_start(
      lameduckTimer_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<Daemon*>(t->data)) self->finishLameduck();
      },
      uint64_t(std::llround(cfg_.lameduck_s * 1000)), 0);
}

// The lame duck's end: every worker stops new datagrams reaching its UDP sockets, answers those
// queued, then shuts down (Worker::lameduckOver); worker 0's end shuts the daemon down.
void Daemon::finishLameduck() {
  if (stopping_) return;
  for (auto& w : workers_)
    if (w->index() == 0) w->lameduckOver([this] { shutdown(); });
    else w->lameduckOver();
}

}  // namespace hdnsd::server
