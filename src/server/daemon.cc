#include "hdnsd/server/daemon.h"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "hdnsd/autopath/metrics.h"
#include "hdnsd/metrics/process.h"
#include "hdnsd/util/log.h"

#ifndef HDNSD_VERSION
#define HDNSD_VERSION "dev"
#endif

namespace hdnsd::server {
namespace {

query::ResponderOptions responderOptions(const config::Config& c) {
  query::ResponderOptions o;
  o.zone = c.clusterDomain;
  o.ednsUdpSize = c.ednsUdpSize;
  o.spread.kind = policy::parseKind(c.policy).value_or(policy::kDefaultKind);  // validated by config
  o.spread.maxAnswers = c.maxAnswers;
  o.allow = c.allow;
  o.maxUdpAmplification = c.maxUdpAmplification;
  o.autopath = c.autopath;
  return o;
}

}  // namespace

Daemon::Daemon(uv_loop_t* loop, std::vector<std::string> args, config::Config cfg)
    : loop_(loop), args_(std::move(args)), cfg_(std::move(cfg)) {
  log::setLevel(cfg_.logLevel);
  applyOpsConfig();
  // --workers (a restart changes it): worker 0 on this loop, the others on their own threads.
  const size_t n = config::workersFor(cfg_);
  workersWithUdp_ = n;
  for (size_t i = 0; i < n; ++i)
    workers_.push_back(std::make_unique<Worker>(i, i == 0 ? loop_ : nullptr, workerSettings(),
                                                [this] { onWorkerUdpClosed(); }));
  registerMetrics();
}

Daemon::~Daemon() = default;  // workers_ first: threads joined before what they use goes

cluster::ViewOptions Daemon::viewOptions() const {
  cluster::ViewOptions v;
  v.zone = cfg_.clusterDomain;
  v.ttl_s = cfg_.ttl_s;
  v.nodeName = cfg_.nodeName;
  v.nodeZone = cfg_.nodeZone;
  v.policy = policy::parseKind(cfg_.policy).value_or(policy::kDefaultKind);
  v.terminatingFallback = cfg_.terminatingFallback;
  // --headless-only: the API view holds headless services only; other names are forwarded.
  v.partialZone = cfg_.headlessOnly && (!cfg_.kubeApi.empty() || cfg_.endpointsFile.empty());
  return v;
}

// Limits that bound the whole process (connections, per client, cache entries and bytes) are
// split evenly over the workers, rounded up; per-connection ones apply to each.
uint32_t Daemon::share(uint64_t total) const noexcept {
  const uint64_t n = config::workersFor(cfg_);
  return uint32_t((total + n - 1) / n);
}

TcpLimits Daemon::tcpLimits() const {
  return {cfg_.tcpIdleTimeout_ms, share(cfg_.maxTcpConnections), cfg_.tcpMaxPendingBytes, cfg_.tcpMaxInFlight,
          share(cfg_.maxTcpConnectionsPerClient)};
}

Worker::Settings Daemon::workerSettings() const {
  Worker::Settings s;
  s.responder = responderOptions(cfg_);
  s.tcp = tcpLimits();
  s.queryLog.enabled = cfg_.queryLog;
  s.queryLog.sampleEvery = cfg_.queryLogSample;
  s.queryLog.format = cfg_.logFormat;
  return s;
}

void Daemon::publishSettings() {
  for (auto& w : workers_) w->setSettings(workerSettings());
}

void Daemon::publishSnapshot(std::shared_ptr<const cluster::Snapshot> s) {
  view_ = s;
  for (auto& w : workers_) w->setSnapshot(s);
}

void Daemon::publishPodIndex(std::shared_ptr<const autopath::PodIndex> idx) {
  podIndex_ = idx;
  for (auto& w : workers_) w->setPodIndex(idx);
}

Result<void, std::string> Daemon::start() {
  if (cfg_.setupInterface) {  // before binding: the listeners need the link-local address
    interface_ = std::make_unique<ops::InterfaceSetup>(
        ops::InterfaceSpec{cfg_.interfaceName, ops::interfaceAddresses(cfg_.listen), cfg_.notrack});
    if (auto r = interface_->setUp(); !r) return Unexpected{"--setup-interface: " + r.error()};
  }
  if (auto r = startForwarding(); !r) return r;
  if (auto r = startListeners(); !r) return r;
  if (cfg_.metrics) {
    http_ = std::make_unique<http::Server>(loop_, http::makeProbeHandler(registry_, readiness_));
    if (auto r = http_->listen(cfg_.metrics->text()); !r) return Unexpected{"--metrics " + r.error()};
    LOG_INFO("http: /health /ready /metrics on %s", cfg_.metrics->text().c_str());
  }
  if (auto r = startOps(); !r) return r;  // every socket is bound: drop root now
  for (auto& w : workers_)
    if (auto r = w->run(); !r) return r;
  // The cluster source: --kube-api, else --endpoints-file, else (in a pod) the in-cluster API,
  // else an empty zone. Both flags at once are refused by the config parser; in a pod,
  // --endpoints-file wins over the in-cluster environment.
  const char* inCluster = std::getenv("KUBERNETES_SERVICE_HOST");
  if (!cfg_.kubeApi.empty() || (cfg_.endpointsFile.empty() && inCluster != nullptr && *inCluster != '\0')) {
    if (auto r = startApiSource(); !r) return r;
  } else if (!cfg_.endpointsFile.empty()) {
    startEndpointsFile();
    if (auto r = endpoints_->start(); !r) return Unexpected{r.error()};
  } else {
    // No source configured: serve an empty cluster (every cluster name NXDOMAIN) rather than
    // SERVFAIL forever. The Kubernetes API source will be the other choice.
    publishSnapshot(cluster::Snapshot::build({}, viewOptions()));
    LOG_WARN("no --endpoints-file: serving an empty cluster zone %s", cfg_.clusterDomain.c_str());
  }
  startStateFile();
  afterLoad();
  return {};
}

// Upstreams: --upstream, else --resolv-conf's nameservers (never our own --listen address).
// None at all: forwarding stays off and names outside the cluster zone get REFUSED, as before.
Result<void, std::string> Daemon::startForwarding() {
  std::string resolvText;
  if (cfg_.upstreams.empty() && cfg_.resolvConf != "none") {
    std::ifstream in(cfg_.resolvConf);
    std::ostringstream ss;
    if (in) ss << in.rdbuf();
    else LOG_WARN("upstream: cannot read %s", cfg_.resolvConf.c_str());
    resolvText = ss.str();
  }
  auto plan = upstream::UpstreamPlan::make(cfg_, resolvText);
  if (!plan) return Unexpected{plan.error()};
  for (const auto& w : plan->warnings) LOG_WARN("upstream: %s", w.c_str());
  if (plan->sets().empty()) {
    LOG_WARN("no upstream (no --upstream, none in %s): names outside %s get REFUSED", cfg_.resolvConf.c_str(),
             cfg_.clusterDomain.c_str());
    return {};
  }
  // One cache per worker (no lock per query; each warms its own), sharing --cache-size and
  // --cache-max-bytes: memory stays what the flags say.
  cache::Config cc = cfg_.cache;
  cc.ednsUdpSize = cfg_.ednsUdpSize;
  cc.maxEntries = share(cc.maxEntries);
  cc.maxBytes = share(cc.maxBytes);
  upstream::ForwarderOptions fo;
  fo.timeout_ms = cfg_.upstreamTimeout_ms;
  fo.tries = cfg_.upstreamTries;
  fo.ednsUdpSize = cfg_.ednsUdpSize;
  fo.aaaa = cfg_.aaaa;
  for (auto& w : workers_)
    if (auto r = w->startForwarding(*plan, fo, cc, registry_); !r) return Unexpected{r.error()};
  return {};
}

Result<void, std::string> Daemon::startApiSource() {
  auto target = kube::resolveApiTarget(cfg_.kubeApi, cfg_.kubeTokenFile, cfg_.kubeCaFile,
                                       [](const char* name) { return std::getenv(name); });
  if (!target) return Unexpected{target.error()};
  kube::ApiSourceOptions o;
  o.target = *target;
  o.labelSelector = cfg_.kubeLabelSelector;
  o.namespaces = cfg_.namespaces;
  o.headlessOnly = cfg_.headlessOnly;
  o.pageSize = cfg_.kubePageSize;
  o.maxEventBytes = cfg_.kubeMaxEventBytes;
  o.watchTimeout_s = cfg_.kubeWatchTimeout_s;
  o.streamingList = cfg_.kubeStreamingList;
  o.view = viewOptions();
  o.userAgent = std::string("hdnsd/") + HDNSD_VERSION;
  if (cfg_.autopath) o.autopathNode = cfg_.nodeName;  // watch this node's pods (restart to change)
  // Until every collection has synced the responder has no view: cluster names get SERVFAIL.
  if (apiSource_ == SIZE_MAX)
    apiSource_ = readiness_.addSource("kubernetes API " + o.target.server,
                                      [this] { return api_ ? api_->problem() : std::string(); });
  api_ = std::make_unique<kube::ApiSource>(loop_, std::move(o), registry_,
                                           [this](std::shared_ptr<const cluster::Snapshot> s) {
                                             publishSnapshot(std::move(s));
                                             readiness_.markLoaded(apiSource_);
                                             afterLoad();
                                           });
  api_->setOnPods([this](std::shared_ptr<const autopath::PodIndex> idx) { publishPodIndex(std::move(idx)); });
  return api_->start();
}

void Daemon::startEndpointsFile() {
  std::string what = "endpoints file " + cfg_.endpointsFile;
  auto problem = [this] { return endpoints_ ? endpoints_->lastError() : std::string(); };
  // Once ready, stay ready: a file swapped in by a reload is served when it loads, and until
  // then the last good view is.
  if (endpointsSource_ == SIZE_MAX) endpointsSource_ = readiness_.addSource(what, problem);
  endpoints_ = std::make_unique<kube::EndpointsFile>(
      loop_, cfg_.endpointsFile, viewOptions(), [this](std::shared_ptr<const cluster::Snapshot> s) {
        publishSnapshot(std::move(s));
        readiness_.markLoaded(endpointsSource_);
        afterLoad();
      });
}

void Daemon::installSignalHandlers() {
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill us mid-write
  for (int signum : {SIGTERM, SIGINT, SIGHUP}) {
    int err = 0;
    auto h = uvx::makeHandle<uv_signal_t>(loop_, &err, uv_signal_init);
    if (!h) continue;
    h->data = this;
    uv_signal_start(
        h.get(),
        [](uv_signal_t* s, int sig) {
          auto* self = static_cast<Daemon*>(s->data);
          if (!self) return;
          if (sig == SIGHUP) {
            self->reload();
          } else {
            LOG_INFO("received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            self->stop();
          }
        },
        signum);
    signals_.push_back(std::move(h));
  }
}

void Daemon::reload() {
  if (stopping_) return;
  notifier_.reloading();
  auto parsed = config::parseCommandLine(args_);
  if (!parsed) {
    LOG_ERROR("reload: %s; keeping the running configuration (fix the file; it is re-read when it changes)",
              parsed.error().c_str());
    notifier_.ready(statusLine());
    return;
  }
  applyConfig(parsed->config);
  notifier_.ready(statusLine());
}

void Daemon::applyConfig(const config::Config& next) {
  bool listenChanged = next.listen.size() != cfg_.listen.size();
  for (size_t i = 0; !listenChanged && i < next.listen.size(); ++i)
    listenChanged = next.listen[i].text() != cfg_.listen[i].text();
  bool metricsChanged = (next.metrics ? next.metrics->text() : "") != (cfg_.metrics ? cfg_.metrics->text() : "");
  if (listenChanged) LOG_WARN("reload: --listen changed; restart hdnsd to apply it");
  if (metricsChanged) LOG_WARN("reload: --metrics changed; restart hdnsd to apply it");
  if (config::workersFor(next) != workers_.size()) LOG_WARN("reload: --workers changed; restart hdnsd to apply it");
  if (next.stateFile != cfg_.stateFile || next.stateFileInterval_s != cfg_.stateFileInterval_s)
    LOG_WARN("reload: --state-file or --state-file-interval changed; restart hdnsd to apply it");
  config::Config applied = next;
  applied.listen = cfg_.listen;
  applied.metrics = cfg_.metrics;
  applied.workers = cfg_.workers;  // the limits split over the workers stay split over as many
  bool fileChanged = !api_ && applied.endpointsFile != cfg_.endpointsFile;  // API source: restart to switch
  cfg_ = std::move(applied);

  log::setLevel(cfg_.logLevel);
  applyOpsConfig();
  publishSettings();
  if (fileChanged) {
    if (endpoints_) endpoints_->close();
    endpoints_.reset();
    if (!cfg_.endpointsFile.empty()) {
      startEndpointsFile();
      if (auto r = endpoints_->start(); !r) LOG_ERROR("reload: %s", r.error().c_str());
    } else {
      publishSnapshot(cluster::Snapshot::build({}, viewOptions()));
      if (endpointsSource_ != SIZE_MAX) readiness_.markLoaded(endpointsSource_);
    }
  } else if (endpoints_) {
    endpoints_->reload(viewOptions());
  } else if (api_) {
    api_->setViewOptions(viewOptions());  // --kube-* changes need a restart
  } else {
    publishSnapshot(cluster::Snapshot::build({}, viewOptions()));
  }
  LOG_INFO("reload: configuration applied: %s", config::toJson(cfg_).c_str());
}

void Daemon::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  notifier_.stopping();
  notifier_.stopWatchdog();
  if (configWatch_) configWatch_->close();
  lameduckTimer_.reset();
  if (endpoints_) endpoints_->close();
  if (api_) api_->close();
  if (state_) state_->writeFinal();  // the loop runs until it is written
  if (http_) http_->close();
  signals_.clear();
  // Each worker stops reading, lets upstream answers still due reach their clients, then closes
  // its sockets (Worker::stopServing); worker 0 does so on this loop, now.
  for (auto& w : workers_) w->shutdown();
}

void Daemon::onWorkerUdpClosed() noexcept {
  if (workersWithUdp_.fetch_sub(1) != 1) return;
  // Every DNS socket of ours is closed now (uv_close closes the fd at once): remove the interface
  // and its rules unless another process (a surge pod, a socket unit) still holds the address.
  if (interface_) interface_->tearDown();
}

void Daemon::registerMetrics() {
  metrics::addBuildInfo(registry_, HDNSD_VERSION);
  metrics::addProcessCollector(registry_);
  registry_.addCollector([this](std::vector<metrics::FamilyData>& out) {
    using metrics::FamilyData;
    using metrics::Type;
    // Every worker's counters summed (each worker counts into its own: no shared cache line).
    query::QueryStats total;
    for (const auto& w : workers_) query::addTo(total, w->stats());
    FamilyData q{"hdnsd_dns_queries_total", "DNS queries by transport, query type and outcome (rcode answered, or dropped).", Type::kCounter, {}};
    for (size_t t = 0; t < size_t(query::Transport::kCount); ++t)
      for (size_t ty = 0; ty < size_t(query::TypeBucket::kCount); ++ty)
        for (size_t o = 0; o < size_t(query::Outcome::kCount); ++o)
          if (uint64_t n = total.queries[t][ty][o].load(std::memory_order_relaxed))
            q.add({{"transport", query::transportName(query::Transport(t))},
                   {"type", query::typeBucketName(query::TypeBucket(ty))},
                   {"rcode", query::outcomeName(query::Outcome(o))}},
                  double(n));
    out.push_back(std::move(q));

    FamilyData pe{"hdnsd_dns_parse_errors_total", "Queries that could not be parsed, by reason.", Type::kCounter, {}};
    for (size_t e = 0; e < size_t(dns::ParseError::kCount); ++e)
      pe.add({{"reason", dns::parseErrorName(dns::ParseError(e))}}, double(total.parseErrors[e].load()));
    out.push_back(std::move(pe));

    FamilyData tc{"hdnsd_dns_truncated_total", "Answers sent with TC=1 because they did not fit.", Type::kCounter, {}};
    for (size_t t = 0; t < size_t(query::Transport::kCount); ++t)
      tc.add({{"transport", query::transportName(query::Transport(t))}}, double(total.truncated[t].load()));
    out.push_back(std::move(tc));

    auto scalar = [&out](const char* name, const char* help, Type type, double v) {
      out.push_back(FamilyData{name, help, type, {}}.add({}, v));
    };
    scalar("hdnsd_udp_send_dropped_total", "UDP answers dropped because the socket and the send queue were full.",
           Type::kCounter, double(total.udpSendDropped.load()));
    scalar("hdnsd_tcp_connections_accepted_total", "DNS TCP connections accepted.", Type::kCounter,
           double(total.tcpConnectionsAccepted.load()));
    scalar("hdnsd_tcp_connections_refused_total", "DNS TCP connections closed at once: over --max-tcp-connections.",
           Type::kCounter, double(total.tcpConnectionsRefused.load()));
    scalar("hdnsd_tcp_idle_closed_total", "DNS TCP connections closed by the idle timeout.", Type::kCounter,
           double(total.tcpIdleClosed.load()));
    scalar("hdnsd_tcp_bad_frames_total", "DNS TCP connections closed for a length prefix below 12 bytes.",
           Type::kCounter, double(total.tcpBadFrames.load()));
    scalar("hdnsd_tcp_connections_open", "DNS TCP connections open now.", Type::kGauge,
           double(total.tcpConnectionsOpen.load()));
    scalar("hdnsd_tcp_per_client_refused_total",
           "DNS TCP connections closed at once: over --max-tcp-connections-per-client.", Type::kCounter,
           double(total.tcpPerClientRefused.load()));
    scalar("hdnsd_dns_acl_refused_total", "Queries from clients outside --allow (REFUSED, or dropped if malformed).",
           Type::kCounter, double(total.aclRefused.load()));
    scalar("hdnsd_dns_amplification_truncated_total",
           "UDP answers sent with TC=1 because of --max-udp-amplification.", Type::kCounter,
           double(total.udpAmplificationCapped.load()));

    FamilyData wq{"hdnsd_worker_queries_total",
                  "DNS queries by worker (--workers: each has its own sockets; the kernel spreads clients over them).",
                  Type::kCounter, {}};
    FamilyData dur{"hdnsd_dns_query_duration_seconds",
                   "Time from reading a DNS query to sending its answer, by where the answer came from "
                   "(view, cache, upstream, local).",
                   Type::kHistogram, {}};
    std::vector<const upstream::Forwarder*> forwarders;
    std::vector<const cache::Cache*> caches;
    autopath::Stats autopathStats;
    for (const auto& w : workers_) {
      wq.add({{"worker", std::to_string(w->index())}}, double(query::totalQueries(w->stats())));
      if (w->forwarder()) forwarders.push_back(w->forwarder());
      if (w->cache()) caches.push_back(w->cache());
      for (size_t r = 0; r < size_t(autopath::Result::kCount); ++r)
        autopathStats.hits[r] += w->autopathStats().hits[r].load(std::memory_order_relaxed);
    }
    out.push_back(std::move(wq));
    for (size_t src = 0; src < size_t(ops::Source::kCount); ++src) {
      std::vector<const metrics::Histogram*> parts;
      for (const auto& w : workers_) parts.push_back(&w->observer().duration(ops::Source(src)));
      metrics::appendHistogram(dur, {{"source", ops::sourceName(ops::Source(src))}}, parts);
    }
    out.push_back(std::move(dur));
    upstream::collectMetrics(out, forwarders, caches);
    if (cfg_.autopath) autopath::collectMetrics(out, autopathStats, podIndex_.get());

    const auto& view = view_;
    scalar("hdnsd_view_ready", "1 once every cluster source has loaded (what /ready reports).", Type::kGauge,
           ready() ? 1 : 0);
    scalar("hdnsd_view_services", "Services in the cluster view served now.", Type::kGauge,
           view ? double(view->serviceCount()) : 0);
    scalar("hdnsd_view_endpoints", "Endpoint addresses in the cluster view served now.", Type::kGauge,
           view ? double(view->endpointCount()) : 0);
    if (endpoints_) {
      scalar("hdnsd_endpoints_file_loads_total", "Successful loads of --endpoints-file.", Type::kCounter,
             double(endpoints_->loads()));
      scalar("hdnsd_endpoints_file_errors_total", "Loads of --endpoints-file that failed (last good view kept).",
             Type::kCounter, double(endpoints_->failures()));
    }
  });
}

}  // namespace hdnsd::server
