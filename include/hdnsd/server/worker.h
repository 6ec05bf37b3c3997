// One worker (--workers N, issue 7): the whole query path of one libuv loop. Its own UDP and
// TCP sockets on every --listen address (SO_REUSEPORT: the kernel spreads clients over the
// workers by address and port), its own Responder (with its Spreader's round-robin counters and
// RNG), QueryStats, QueryObserver, answer cache and Forwarder (its own c-ares channel). Nothing
// of it is shared with another worker, so a query takes no lock and touches no shared cache line
// (the upstream counters in the metrics registry are shared; they move per upstream answer,
// not per query).
//
// Worker 0 runs on the daemon's control loop (no thread of its own: `--workers 1` is the
// single-loop daemon of before). Workers 1..N-1 each own a loop and a thread.
//
// What the control loop publishes (cluster view, pod index, settings on reload, lame duck's end,
// shutdown) reaches a worker through its Mailbox (uvx/mailbox.h): latest value wins, applied on
// the worker's own loop, where the Responder swaps its shared_ptr. Worker 0 applies it at once.
//
// Life cycle, all but run() and the scrape-time getters on the control thread:
//   Worker(...) → startForwarding() → listen()/open*() → run()        (any failure: shutdown())
//   set*() ... → lameduckOver() → shutdown() → ~Worker()
// A threaded worker builds everything on the control thread before run() starts its thread
// (std::thread's start orders it all before the thread). shutdown() stops reading, lets upstream
// answers still due reach their clients, closes the sockets (at most ~1.5 s), and the worker's
// loop ends; its thread then closes every handle left, runs the loop until every close callback
// ran and checks uv_loop_close() == 0. ~Worker joins the thread (or, never started, does the
// same on the calling thread) and frees the rest (counters stay readable until then).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hdnsd/autopath/autopath.h"
#include "hdnsd/cache/cache.h"
#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/metrics/registry.h"
#include "hdnsd/ops/query_observer.h"
#include "hdnsd/ops/state_format.h"
#include "hdnsd/query/responder.h"
#include "hdnsd/server/tcp_listener.h"
#include "hdnsd/server/udp_listener.h"
#include "hdnsd/upstream/forwarder.h"
#include "hdnsd/uvx/mailbox.h"

namespace hdnsd::server {

class Worker {
 public:
  // What a reload may change; published whole.
  struct Settings {
    query::ResponderOptions responder;
    TcpLimits tcp;
    ops::QueryLogOptions queryLog;
  };
  // What the control loop sends a threaded worker (uvx::Mailbox: newer fields replace older).
  struct Mail {
    std::optional<std::shared_ptr<const cluster::Snapshot>> snapshot;
    std::optional<std::shared_ptr<const autopath::PodIndex>> podIndex;
    std::optional<Settings> settings;
    bool lameduckOver = false;
    bool shutdown = false;
    // --state-file: answers loaded at start, for this worker's cache (ops/state_format.h).
    std::shared_ptr<const std::vector<ops::SavedAnswer>> restoreCache;
    void merge(Mail&& newer);
  };

  // `controlLoop` for worker 0; nullptr: the worker makes its own loop (and later its thread).
  // `onUdpClosed` runs once, on the worker's thread, when its UDP sockets are closed.
  Worker(size_t index, uv_loop_t* controlLoop, const Settings& s, std::function<void()> onUdpClosed);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Startup (control thread, before run()).
  Result<void, std::string> startForwarding(const upstream::UpstreamPlan& plan, const upstream::ForwarderOptions& fo,
                                            const cache::Config& cc, metrics::Registry& reg);
  // UDP on `udp`, TCP on `tcp` (bound here with SO_REUSEPORT); an fd >= 0 is served instead of
  // binding (systemd's socket; the worker takes ownership).
  Result<void, std::string> listen(const SockAddr& udp, const SockAddr& tcp, int udpFd, int tcpFd);
  Result<void, std::string> openUdp(int fd);
  Result<void, std::string> openTcp(int fd);
  Result<void, std::string> run();  // starts a threaded worker's thread; worker 0: nothing

  // Control thread → this worker's loop.
  void setSnapshot(std::shared_ptr<const cluster::Snapshot> s);
  void setPodIndex(std::shared_ptr<const autopath::PodIndex> idx);
  void setSettings(const Settings& s);
  void restoreCache(std::shared_ptr<const std::vector<ops::SavedAnswer>> answers);  // on its loop
  // Lame duck's last step (daemon_ops.cc): no new datagram reaches our UDP sockets, those queued
  // are answered (at most 0.5 s), then `drained` runs (worker 0) or the worker shuts down.
  void lameduckOver(std::function<void()> drained = nullptr);
  void shutdown();

  // Scrape time, any thread: relaxed atomics only.
  size_t index() const noexcept { return index_; }
  const query::QueryStats& stats() const noexcept { return stats_; }
  const ops::QueryObserver& observer() const noexcept { return observer_; }
  const autopath::Stats& autopathStats() const noexcept { return responder_.autopathStats(); }
  const upstream::Forwarder* forwarder() const noexcept { return forwarder_.get(); }
  const cache::Cache* cache() const noexcept { return cache_.get(); }
  // Control thread: the worker's bound ports (listen(): in --listen order) and, worker 0 only,
  // its query path.
  uint16_t udpPort(size_t i) const noexcept { return i < udp_.size() ? udp_[i]->port() : 0; }
  uint16_t tcpPort(size_t i) const noexcept { return i < tcp_.size() ? tcp_[i]->port() : 0; }
  query::QueryStats& stats() noexcept { return stats_; }
  query::Responder& responder() noexcept { return responder_; }
  cache::Cache* cache() noexcept { return cache_.get(); }

 private:
  bool threaded() const noexcept { return ownLoop_ != nullptr; }
  void post(Mail&& m);
  void onMail(Mail&& m);
  void applySettings(const Settings& s);
  void startLameduckDrain();
  void drainStep();
  void stopServing();  // shutdown on this worker's loop
  void closeUdp() noexcept;
  void threadMain() noexcept;
  void teardown() noexcept;  // after the loop ended: close the query path's handles and the loop

  const size_t index_;
  std::unique_ptr<uv_loop_t> ownLoop_;  // workers 1..N-1
  uv_loop_t* loop_;
  std::function<void()> onUdpClosed_;
  std::function<void()> drained_;
  TcpLimits tcpLimits_;  // for listeners added later
  std::thread thread_;
  uvx::Mailbox<Mail> mailbox_;
  // The query path, in the Daemon's order of before: the forwarder outlives the listeners (their
  // close() cancels waiters), the cache outlives the forwarder (it inserts from c-ares callbacks).
  query::QueryStats stats_;
  ops::QueryObserver observer_;  // stats_.tap
  query::Responder responder_;
  std::unique_ptr<cache::Cache> cache_;
  std::unique_ptr<upstream::Forwarder> forwarder_;
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  uvx::UvPtr<uv_timer_t> udpDrain_;       // shutdown: closes UDP once upstream answers are in
  uvx::UvPtr<uv_timer_t> shutdownGuard_;  // 1.5 s: closes what still lingers
  uvx::UvPtr<uv_timer_t> lameduckDrain_;  // lame duck's end: polls the UDP queues
  uint64_t drainUntil_ms_ = 0;
  bool draining_ = false, shutdownAfterDrain_ = false;
  bool stopping_ = false, udpClosed_ = false;
  bool loopClosed_ = false;  // set by teardown(): uv_loop_close returned 0
};

}  // namespace hdnsd::server
