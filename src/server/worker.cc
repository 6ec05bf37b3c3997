#include "hdnsd/server/worker.h"

#include <pthread.h>

#include <chrono>
#include <cstdio>

#include "hdnsd/util/check.h"
#include "hdnsd/util/log.h"

namespace hdnsd::server {
namespace {

constexpr uint64_t kDrainMax_ms = 500;  // lame duck's last step: reading what is queued
constexpr uint64_t kDrainPoll_ms = 10;
constexpr uint64_t kShutdownGuard_ms = 1500;  // exit comes within 2 s of shutdown()

template <class T>
void takeNewer(std::optional<T>& mine, std::optional<T>&& newer) {
  if (newer) mine = std::move(newer);
}

}  // namespace

void Worker::Mail::merge(Mail&& newer) {
  takeNewer(snapshot, std::move(newer.snapshot));
  takeNewer(podIndex, std::move(newer.podIndex));
  takeNewer(settings, std::move(newer.settings));
  lameduckOver = lameduckOver || newer.lameduckOver;
  shutdown = shutdown || newer.shutdown;
  if (newer.restoreCache) restoreCache = std::move(newer.restoreCache);
}

Worker::Worker(size_t index, uv_loop_t* controlLoop, const Settings& s, std::function<void()> onUdpClosed)
    : index_(index),
      ownLoop_(controlLoop ? nullptr : std::make_unique<uv_loop_t>()),
      loop_(controlLoop ? controlLoop : ownLoop_.get()),
      onUdpClosed_(std::move(onUdpClosed)),
      responder_(s.responder, stats_) {
  stats_.tap = &observer_;
  applySettings(s);
  if (!threaded()) return;
  HDNSD_CHECK(uv_loop_init(loop_) == 0);
  // Opened before the thread runs, so the control loop may post from the start (a view loaded
  // during startup waits in the mailbox until the loop turns).
  auto r = mailbox_.open(loop_, [this](Mail&& m) { onMail(std::move(m)); });
  HDNSD_CHECK(r.has_value());
}

Worker::~Worker() {
  if (!threaded()) return;  // worker 0: the daemon's loop runs its close callbacks
  shutdown();
  if (thread_.joinable()) thread_.join();
  else threadMain();  // never started (startup failed): finish here
}

Result<void, std::string> Worker::startForwarding(const upstream::UpstreamPlan& plan,
                                                  const upstream::ForwarderOptions& fo, const cache::Config& cc,
                                                  metrics::Registry& reg) {
  cache_ = std::make_unique<cache::Cache>(cc);
  forwarder_ = std::make_unique<upstream::Forwarder>(loop_, stats_, cache_.get());
  if (auto r = forwarder_->configure(plan, fo, reg); !r) return r;
  responder_.setForwarder(forwarder_.get());
  return {};
}

Result<void, std::string> Worker::listen(const SockAddr& udpAddr, const SockAddr& tcpAddr, int udpFd, int tcpFd) {
  auto udp = std::make_unique<UdpListener>(loop_, responder_, stats_);
  auto tcp = std::make_unique<TcpListener>(loop_, responder_, stats_, tcpLimits_);
  if (auto r = udpFd >= 0 ? udp->open(udpFd) : udp->bind(udpAddr); !r) return r;
  if (auto r = tcpFd >= 0 ? tcp->open(tcpFd) : tcp->bind(tcpAddr); !r) return r;
  udp_.push_back(std::move(udp));
  tcp_.push_back(std::move(tcp));
  return {};
}

Result<void, std::string> Worker::openUdp(int fd) {
  auto udp = std::make_unique<UdpListener>(loop_, responder_, stats_);
  if (auto r = udp->open(fd); !r) return r;
  udp_.push_back(std::move(udp));
  return {};
}

Result<void, std::string> Worker::openTcp(int fd) {
  auto tcp = std::make_unique<TcpListener>(loop_, responder_, stats_, tcpLimits_);
  if (auto r = tcp->open(fd); !r) return r;
  tcp_.push_back(std::move(tcp));
  return {};
}

Result<void, std::string> Worker::run() {
  if (!threaded() || thread_.joinable()) return {};
  try {
    thread_ = std::thread([this] {
      char name[16];  // "hdnsd-w3" in top -H, ps -L and /proc/PID/task/*/comm
      std::snprintf(name, sizeof name, "hdnsd-w%zu", index_);
      pthread_setname_np(pthread_self(), name);
      threadMain();
    });
  } catch (const std::system_error& e) {
    return Unexpected{"worker " + std::to_string(index_) + ": cannot start its thread: " + e.what()};
  }
  return {};
}

void Worker::threadMain() noexcept {
  uv_run(loop_, UV_RUN_DEFAULT);  // until shutdown closed every handle
  teardown();
}

void Worker::teardown() noexcept {
  // The query path's handles close on this loop: close them here, then run the close callbacks.
  // The forwarder (no handle left after closeNow()) and the cache stay until ~Worker: a /metrics
  // scrape on the control loop may still read their counters while worker 0 drains.
  mailbox_.close();
  tcp_.clear();
  udp_.clear();
  if (forwarder_) forwarder_->closeNow();
  udpDrain_.reset();
  shutdownGuard_.reset();
  lameduckDrain_.reset();
  uv_walk(loop_, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
  uv_run(loop_, UV_RUN_DEFAULT);
  loopClosed_ = uv_loop_close(loop_) == 0;
  if (!loopClosed_) LOG_WARN("exit: worker %zu's loop still had handles open", index_);
}

void Worker::post(Mail&& m) {
  if (threaded()) mailbox_.post(std::move(m));  // dropped once the worker has stopped
  else onMail(std::move(m));
}

void Worker::setSnapshot(std::shared_ptr<const cluster::Snapshot> s) {
  Mail m;
  m.snapshot = std::move(s);
  post(std::move(m));
}

void Worker::restoreCache(std::shared_ptr<const std::vector<ops::SavedAnswer>> answers) {
  Mail m;
  m.restoreCache = std::move(answers);
  post(std::move(m));
}

void Worker::setPodIndex(std::shared_ptr<const autopath::PodIndex> idx) {
  Mail m;
  m.podIndex = std::move(idx);
  post(std::move(m));
}

void Worker::setSettings(const Settings& s) {
  Mail m;
  m.settings = s;
  post(std::move(m));
}

void Worker::shutdown() {
  Mail m;
  m.shutdown = true;
  post(std::move(m));
}

void Worker::lameduckOver(std::function<void()> drained) {
  HDNSD_CHECK(!drained || !threaded());  // it runs on the worker's thread
  drained_ = std::move(drained);
  Mail m;
  m.lameduckOver = true;
  post(std::move(m));
}

void Worker::onMail(Mail&& m) {
  if (m.settings) applySettings(*m.settings);
  if (m.snapshot) responder_.setSnapshot(std::move(*m.snapshot));
  if (m.podIndex) responder_.setPodIndex(std::move(*m.podIndex));
  if (m.restoreCache && cache_) {
    const auto wall = std::chrono::system_clock::now().time_since_epoch();
    ops::restoreAnswers(*cache_, *m.restoreCache,
                        uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(wall).count()), uv_now(loop_));
  }
  if (m.lameduckOver) startLameduckDrain();
  // While the lame duck drains, a shutdown waits for it (its end shuts the worker down anyway).
  if (m.shutdown && !draining_) stopServing();
}

void Worker::applySettings(const Settings& s) {
  responder_.setOptions(s.responder);
  tcpLimits_ = s.tcp;
  for (auto& t : tcp_) t->setLimits(s.tcp);
  observer_.setLog(s.queryLog);
}

// A new hdnsd bound beside us with SO_REUSEPORT shares the port; closing our UDP socket would
// drop whatever the kernel queued on it. So first no new datagram may reach it
// (UdpListener::stopReceivingNew), then what is queued is read and answered, then stopServing()
// closes it: no query is lost across a restart.
void Worker::startLameduckDrain() {
  if (stopping_ || draining_) return;
  int err = 0;
  lameduckDrain_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (!lameduckDrain_) {
    stopServing();
    if (drained_) drained_();
    return;
  }
  lameduckDrain_->data = this;
  draining_ = true;
  size_t detached = 0;
  for (auto& u : udp_) detached += u->stopReceivingNew() ? 1 : 0;
  LOG_INFO("lameduck: over; %zu of %zu UDP sockets%s take no new queries, draining them", detached, udp_.size(),
           threaded() ? (" of worker " + std::to_string(index_)).c_str() : "");
  drainUntil_ms_ = uv_now(loop_) + kDrainMax_ms;
  drainStep();
}

void Worker::drainStep() {
  size_t queued = 0;
  for (auto& u : udp_) queued += u->queuedBytes();
  if (queued == 0 || uv_now(loop_) >= drainUntil_ms_) {
    draining_ = false;
    stopServing();
    if (auto done = std::move(drained_)) done();  // worker 0: the daemon's shutdown
    return;
  }
  uv_timer_start(
      lameduckDrain_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<Worker*>(t->data)) self->drainStep();
      },
      kDrainPoll_ms, 0);
}

// Read no more queries. A datagram already read was answered in its callback or waits for an
// upstream answer, which still goes out through its listener: the UDP sockets close once the
// forwarder has nothing in flight (or at the guard below). TCP connections stop reading and
// close once their answers are written.
void Worker::stopServing() {
  if (stopping_) return;
  stopping_ = true;
  lameduckDrain_.reset();
  for (auto& u : udp_) u->stopReading();
  for (auto& t : tcp_) t->stopAccepting();
  if (forwarder_) forwarder_->drainThenClose();  // clients still get their upstream answers
  int err = 0;
  if (forwarder_ && forwarder_->inFlight() > 0 &&
      (udpDrain_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init))) {
    udpDrain_->data = this;
    uv_timer_start(
        udpDrain_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<Worker*>(t->data);
          if (self && self->forwarder_->inFlight() == 0) self->closeUdp();
        },
        10, 10);
  } else {
    closeUdp();
  }
  shutdownGuard_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (shutdownGuard_) {
    shutdownGuard_->data = this;
    uv_timer_start(
        shutdownGuard_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<Worker*>(t->data);
          if (!self) return;
          for (auto& tcp : self->tcp_) tcp->closeAll();  // clients that never read their answers
          if (self->forwarder_) self->forwarder_->closeNow();  // upstreams that never answered
          self->closeUdp();
          self->shutdownGuard_.reset();
        },
        kShutdownGuard_ms, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(shutdownGuard_.get()));  // must not hold the loop open
  }
  if (threaded()) mailbox_.close();  // the worker's loop ends once the rest has closed
}

void Worker::closeUdp() noexcept {
  udpDrain_.reset();
  for (auto& u : udp_) u->close();
  if (udpClosed_) return;
  udpClosed_ = true;
  if (onUdpClosed_) onUdpClosed_();
}

}  // namespace hdnsd::server
