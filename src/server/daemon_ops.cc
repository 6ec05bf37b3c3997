// The Daemon's operational side (issue 6): where the DNS sockets come from (--listen or
// systemd socket activation), dropping root once they are bound, watching --config, telling
// systemd about readiness, and the lame-duck stop. Kept apart from daemon.cc, which wires the
// query path.
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

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

constexpr uint64_t kDrainMax_ms = 500;  // lame duck's last step: reading what is queued
constexpr uint64_t kDrainPoll_ms = 10;

}  // namespace

Result<void, std::string> Daemon::startListeners() {
  auto activated = ops::ActivatedSockets::fromEnvironment();
  if (!activated.empty()) LOG_INFO("systemd: %zu sockets passed (socket activation)", activated.size());
  for (const auto& addr : cfg_.listen) {
    auto udp = std::make_unique<UdpListener>(loop_, responder_, stats_);
    auto tcp = std::make_unique<TcpListener>(loop_, responder_, stats_, tcpLimits());
    int ufd = activated.take(addr, SOCK_DGRAM), tfd = activated.take(addr, SOCK_STREAM);
    if (auto r = ufd >= 0 ? udp->open(ufd) : udp->bind(addr); !r)
      return Unexpected{"--listen " + r.error() + bindHint(r.error())};
    if (auto r = tfd >= 0 ? tcp->open(tfd) : tcp->bind(addr); !r)
      return Unexpected{"--listen " + r.error() + bindHint(r.error())};
    LOG_INFO("dns: serving UDP and TCP on %s%s", addr.text().c_str(),
             ufd >= 0 && tfd >= 0 ? " (sockets from systemd)" : ufd >= 0 || tfd >= 0 ? " (one socket from systemd)" : "");
    udp_.push_back(std::move(udp));
    tcp_.push_back(std::move(tcp));
  }
  // A socket unit may name an address --listen does not: serve it too (the unit is explicit).
  for (auto* s : activated.untaken()) {
    s->taken = true;
    if (s->type == SOCK_DGRAM) {
      auto udp = std::make_unique<UdpListener>(loop_, responder_, stats_);
      if (auto r = udp->open(s->fd); !r) return Unexpected{"systemd socket: " + r.error()};
      udp_.push_back(std::move(udp));
    } else {
      auto tcp = std::make_unique<TcpListener>(loop_, responder_, stats_, tcpLimits());
      if (auto r = tcp->open(s->fd); !r) return Unexpected{"systemd socket: " + r.error()};
      tcp_.push_back(std::move(tcp));
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
  log::setFormat(cfg_.logFormat);
  ops::QueryLogOptions q;
  q.enabled = cfg_.queryLog;
  q.sampleEvery = cfg_.queryLogSample;
  q.format = cfg_.logFormat;
  observer_.setLog(q);
}

std::string Daemon::statusLine() const {
  const auto& view = responder_.snapshot();
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

// The lame duck's end. A new hdnsd bound beside us with SO_REUSEPORT shares the port; closing
// our UDP socket would drop whatever the kernel queued on it. So first no new datagram may
// reach it (UdpListener::stopReceivingNew), then what is queued is read and answered, then
// shutdown() closes it: no query is lost across a restart.
void Daemon::finishLameduck() {
  if (stopping_) return;
  if (lameduckDrainUntil_ms_ == 0) {
    size_t detached = 0;
    for (auto& u : udp_) detached += u->stopReceivingNew() ? 1 : 0;
    LOG_INFO("lameduck: over; %zu of %zu UDP sockets take no new queries, draining them", detached, udp_.size());
    lameduckDrainUntil_ms_ = uv_now(loop_) + kDrainMax_ms;
  }
  size_t queued = 0;
  for (auto& u : udp_) queued += u->queuedBytes();
  if (queued == 0 || uv_now(loop_) >= lameduckDrainUntil_ms_) {
    shutdown();
    return;
  }
  uv_timer_start(
      lameduckTimer_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<Daemon*>(t->data)) self->finishLameduck();
      },
      kDrainPoll_ms, 0);
}

}  // namespace hdnsd::server
