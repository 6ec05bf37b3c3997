// The daemon: wires configuration, the cluster source, the HTTP endpoint and the signals onto
// the control loop, and the query path (listeners, responder, cache, forwarder) onto --workers
// loops: worker 0 on the control loop itself, the others on threads of their own (worker.h).
// src/main.cc only parses the command line and runs the loop; tests drive a Daemon directly.
//
// Life cycle: start() binds every socket (any failure is fatal: one message, non-zero exit),
// then the loop runs. SIGHUP → reload(): config file and flags re-read, the view recompiled,
// sockets kept (changing --listen or --metrics needs a restart and says so). SIGTERM/SIGINT →
// shutdown(): stop reading new queries, flush TCP answers, close every handle; the loop then
// ends by itself (a 1.5 s guard closes what still lingers, so exit comes within 2 s); every
// worker does the same on its loop, and ~Daemon joins their threads.
//
// Publication: a source's new view (and the pod index, and a reload's settings) goes to every
// worker's mailbox; each worker swaps its responder's pointer on its own loop. No lock per query.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "hdnsd/config/config.h"
#include "hdnsd/http/probes.h"
#include "hdnsd/http/server.h"
#include "hdnsd/kube/api_source.h"
#include "hdnsd/kube/endpoints_file.h"
#include "hdnsd/metrics/registry.h"
#include "hdnsd/ops/file_watch.h"
#include "hdnsd/ops/query_observer.h"
#include "hdnsd/ops/systemd.h"
#include "hdnsd/ops/setup_interface.h"
#include "hdnsd/ops/state_file.h"
#include "hdnsd/query/responder.h"
#include "hdnsd/server/tcp_listener.h"
#include "hdnsd/server/udp_listener.h"
#include "hdnsd/server/worker.h"
#include "hdnsd/upstream/forwarder.h"

namespace hdnsd::server {

class Daemon {
 public:
  // `args` are the command-line arguments (without argv[0]), kept to re-read on reload.
  Daemon(uv_loop_t* loop, std::vector<std::string> args, config::Config cfg);
  ~Daemon();

  Result<void, std::string> start();
  void installSignalHandlers();
  void reload();
  void shutdown();
  // SIGTERM/SIGINT: with --lameduck S, /ready fails and queries keep being answered for S
  // seconds; then the UDP sockets stop taking new queries, drain what is queued, and
  // shutdown() runs. Without it (or on a second signal): shutdown() now. (daemon_ops.cc)
  void stop();

  bool ready() const noexcept { return readiness_.ready(); }
  const config::Config& config() const noexcept { return cfg_; }
  // Worker 0's (the control loop's) query path.
  query::QueryStats& stats() noexcept { return workers_[0]->stats(); }
  query::Responder& responder() noexcept { return workers_[0]->responder(); }
  uint16_t udpPort(size_t i) const noexcept { return workers_[0]->udpPort(i); }
  uint16_t tcpPort(size_t i) const noexcept { return workers_[0]->tcpPort(i); }
  size_t workerCount() const noexcept { return workers_.size(); }
  uint16_t metricsPort() const noexcept { return http_ ? http_->port() : 0; }

 private:
  void applyConfig(const config::Config& next);
  void startEndpointsFile();
  Result<void, std::string> startApiSource();
  void startStateFile();  // --state-file (daemon_state.cc): after the source, before its first view
  void registerMetrics();
  Result<void, std::string> startForwarding();
  cluster::ViewOptions viewOptions() const;
  uint32_t share(uint64_t total) const noexcept;  // one worker's part of a process-wide limit
  server::TcpLimits tcpLimits() const;             // one worker's share
  Worker::Settings workerSettings() const;
  void publishSnapshot(std::shared_ptr<const cluster::Snapshot> s);  // to every worker
  void publishPodIndex(std::shared_ptr<const autopath::PodIndex> idx);
  void publishSettings();
  // Operations (issue 6; src/server/daemon_ops.cc).
  Result<void, std::string> startListeners();  // --listen, or systemd's sockets
  Result<void, std::string> startOps();        // after binding: drop root, watch --config
  void applyOpsConfig();                       // log format, query log
  void afterLoad();                            // a view was published: READY=1 once ready
  void finishLameduck();
  std::string statusLine() const;

  uv_loop_t* loop_;
  std::vector<std::string> args_;
  config::Config cfg_;
  metrics::Registry registry_;
  ops::Notifier notifier_;       // systemd NOTIFY_SOCKET (does nothing when unset)
  // What the workers serve now (metrics, status line); each worker holds its own reference.
  std::shared_ptr<const cluster::Snapshot> view_;
  std::shared_ptr<const autopath::PodIndex> podIndex_;
  bool notifiedReady_ = false;
  bool lameducking_ = false;
  http::Readiness readiness_;
  size_t endpointsSource_ = SIZE_MAX;
  std::unique_ptr<kube::EndpointsFile> endpoints_;
  std::unique_ptr<kube::ApiSource> api_;  // the Kubernetes API source (alternative to endpoints_)
  std::unique_ptr<ops::StateFile> state_;  // --state-file; reads api_ and worker 0's cache
  size_t apiSource_ = SIZE_MAX;           // its readiness id
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<ops::InterfaceSetup> interface_;  // --setup-interface: set up in start(), undone in shutdown()
  std::vector<uvx::UvPtr<uv_signal_t>> signals_;
  // The last worker to close its UDP sockets removes the interface (on its thread): before, our
  // own sockets would look like another process holding the address.
  std::atomic<size_t> workersWithUdp_{0};
  void onWorkerUdpClosed() noexcept;
  std::unique_ptr<ops::FileWatch> configWatch_;  // --config: a change reloads like SIGHUP
  uvx::UvPtr<uv_timer_t> lameduckTimer_;
  bool stopping_ = false;
  // Last: they use the registry, the interface and workersWithUdp_; ~Daemon joins them first.
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace hdnsd::server
