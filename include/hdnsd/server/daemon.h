// The daemon: wires configuration, the cluster source, the query pipeline, the DNS listeners,
// the HTTP endpoint and the signals onto one libuv loop. src/main.cc only parses the command
// line and runs the loop; tests drive a Daemon directly.
//
// Life cycle: start() binds every socket (any failure is fatal: one message, non-zero exit),
// then the loop runs. SIGHUP → reload(): config file and flags re-read, the view recompiled,
// sockets kept (changing --listen or --metrics needs a restart and says so). SIGTERM/SIGINT →
// shutdown(): stop reading new queries, flush TCP answers, close every handle; the loop then
// ends by itself (a 1.5 s guard closes what still lingers, so exit comes within 2 s).
#pragma once

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
#include "hdnsd/query/responder.h"
#include "hdnsd/server/tcp_listener.h"
#include "hdnsd/server/udp_listener.h"
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
  query::QueryStats& stats() noexcept { return stats_; }
  query::Responder& responder() noexcept { return responder_; }
  uint16_t udpPort(size_t i) const noexcept { return udp_[i]->port(); }
  uint16_t tcpPort(size_t i) const noexcept { return tcp_[i]->port(); }
  uint16_t metricsPort() const noexcept { return http_ ? http_->port() : 0; }

 private:
  void applyConfig(const config::Config& next);
  void startEndpointsFile();
  Result<void, std::string> startApiSource();
  void registerMetrics();
  Result<void, std::string> startForwarding();
  cluster::ViewOptions viewOptions() const;
  server::TcpLimits tcpLimits() const;
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
  query::QueryStats stats_;
  query::Responder responder_;
  metrics::Registry registry_;
  ops::QueryObserver observer_;  // stats_.tap: latency histograms, query log
  ops::Notifier notifier_;       // systemd NOTIFY_SOCKET (does nothing when unset)
  bool notifiedReady_ = false;
  bool lameducking_ = false;
  http::Readiness readiness_;
  size_t endpointsSource_ = SIZE_MAX;
  // Forwarding: declared before the listeners so it outlives them (their close() cancels
  // waiters); the cache before the forwarder, which inserts into it from c-ares callbacks.
  std::unique_ptr<cache::Cache> cache_;
  std::unique_ptr<upstream::Forwarder> forwarder_;
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  std::unique_ptr<kube::EndpointsFile> endpoints_;
  std::unique_ptr<kube::ApiSource> api_;  // the Kubernetes API source (alternative to endpoints_)
  size_t apiSource_ = SIZE_MAX;           // its readiness id
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<ops::InterfaceSetup> interface_;  // --setup-interface: set up in start(), undone in shutdown()
  std::vector<uvx::UvPtr<uv_signal_t>> signals_;
  uvx::UvPtr<uv_timer_t> shutdownGuard_;
  uvx::UvPtr<uv_timer_t> udpDrain_;  // shutdown: closes the UDP sockets once upstream answers are in
  void closeUdpAndInterface() noexcept;
  bool interfaceDown_ = false;
  std::unique_ptr<ops::FileWatch> configWatch_;  // --config: a change reloads like SIGHUP
  uvx::UvPtr<uv_timer_t> lameduckTimer_;
  uint64_t lameduckDrainUntil_ms_ = 0;
  bool stopping_ = false;
};

}  // namespace hdnsd::server
