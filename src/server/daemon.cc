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
    : loop_(loop), args_(std::move(args)), cfg_(std::move(cfg)), responder_(responderOptions(cfg_), stats_),
      observer_(registry_) {
  log::setLevel(cfg_.logLevel);
  stats_.tap = &observer_;
  applyOpsConfig();
  registerMetrics();
}

Daemon::~Daemon() = default;

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

TcpLimits Daemon::tcpLimits() const {
  return {cfg_.tcpIdleTimeout_ms, cfg_.maxTcpConnections, cfg_.tcpMaxPendingBytes, cfg_.tcpMaxInFlight,
          cfg_.maxTcpConnectionsPerClient};
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
    responder_.setSnapshot(cluster::Snapshot::build({}, viewOptions()));
    LOG_WARN("no --endpoints-file: serving an empty cluster zone %s", cfg_.clusterDomain.c_str());
  }
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
  cache::Config cc = cfg_.cache;
  cc.ednsUdpSize = cfg_.ednsUdpSize;
  cache_ = std::make_unique<cache::Cache>(cc);
  forwarder_ = std::make_unique<upstream::Forwarder>(loop_, stats_, cache_.get());
  upstream::ForwarderOptions fo;
  fo.timeout_ms = cfg_.upstreamTimeout_ms;
  fo.tries = cfg_.upstreamTries;
  fo.ednsUdpSize = cfg_.ednsUdpSize;
  fo.aaaa = cfg_.aaaa;
  if (auto r = forwarder_->configure(*plan, fo, registry_); !r) return Unexpected{r.error()};
  responder_.setForwarder(forwarder_.get());
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
                                             responder_.setSnapshot(std::move(s));
                                             readiness_.markLoaded(apiSource_);
                                             afterLoad();
                                           });
  api_->setOnPods([this](std::shared_ptr<const autopath::PodIndex> idx) { responder_.setPodIndex(std::move(idx)); });
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
        responder_.setSnapshot(std::move(s));
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
  config::Config applied = next;
  applied.listen = cfg_.listen;
  applied.metrics = cfg_.metrics;
  bool fileChanged = !api_ && applied.endpointsFile != cfg_.endpointsFile;  // API source: restart to switch
  cfg_ = std::move(applied);

  log::setLevel(cfg_.logLevel);
  applyOpsConfig();
  responder_.setOptions(responderOptions(cfg_));
  for (auto& t : tcp_) t->setLimits(tcpLimits());
  if (fileChanged) {
    if (endpoints_) endpoints_->close();
    endpoints_.reset();
    if (!cfg_.endpointsFile.empty()) {
      startEndpointsFile();
      if (auto r = endpoints_->start(); !r) LOG_ERROR("reload: %s", r.error().c_str());
    } else {
      responder_.setSnapshot(cluster::Snapshot::build({}, viewOptions()));
      if (endpointsSource_ != SIZE_MAX) readiness_.markLoaded(endpointsSource_);
    }
  } else if (endpoints_) {
    endpoints_->reload(viewOptions());
  } else if (api_) {
    api_->setViewOptions(viewOptions());  // --kube-* changes need a restart
  } else {
    responder_.setSnapshot(cluster::Snapshot::build({}, viewOptions()));
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
  // Read no more queries. A datagram already read was answered in its callback or waits for
  // an upstream answer, which still goes out through its listener: the UDP sockets close once
  // the forwarder has nothing in flight (or at the guard below). TCP connections stop reading
  // and close once their answers are written.
  for (auto& u : udp_) u->stopReading();
  for (auto& t : tcp_) t->stopAccepting();
  if (endpoints_) endpoints_->close();
  if (api_) api_->close();
  if (http_) http_->close();
  if (forwarder_) forwarder_->drainThenClose();  // clients still get their upstream answers
  signals_.clear();
  int err = 0;
  if (forwarder_ && forwarder_->inFlight() > 0 &&
      (udpDrain_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init))) {
    udpDrain_->data = this;
    uv_timer_start(
        udpDrain_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<Daemon*>(t->data);
          if (self && self->forwarder_->inFlight() == 0) self->closeUdpAndInterface();
        },
        10, 10);
  } else {
    closeUdpAndInterface();
  }
  shutdownGuard_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (shutdownGuard_) {
    shutdownGuard_->data = this;
    uv_timer_start(
        shutdownGuard_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<Daemon*>(t->data);
          if (!self) return;
          for (auto& tcp : self->tcp_) tcp->closeAll();  // clients that never read their answers
          if (self->forwarder_) self->forwarder_->closeNow();  // upstreams that never answered
          self->closeUdpAndInterface();
          self->shutdownGuard_.reset();
        },
        1500, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(shutdownGuard_.get()));  // must not hold the loop open
  }
}

void Daemon::closeUdpAndInterface() noexcept {
  udpDrain_.reset();
  for (auto& u : udp_) u->close();
  // Our DNS sockets are closed now (uv_close closes the fd at once): remove the interface and its
  // rules unless another process (a surge pod, a socket unit) still holds the address.
  if (interface_ && !interfaceDown_) {
    interfaceDown_ = true;
    interface_->tearDown();
  }
}

void Daemon::registerMetrics() {
  metrics::addBuildInfo(registry_, HDNSD_VERSION);
  metrics::addProcessCollector(registry_);
  registry_.addCollector([this](std::vector<metrics::FamilyData>& out) {
    using metrics::FamilyData;
    using metrics::Type;
    FamilyData q{"hdnsd_dns_queries_total", "DNS queries by transport, query type and outcome (rcode answered, or dropped).", Type::kCounter, {}};
    for (size_t t = 0; t < size_t(query::Transport::kCount); ++t)
      for (size_t ty = 0; ty < size_t(query::TypeBucket::kCount); ++ty)
        for (size_t o = 0; o < size_t(query::Outcome::kCount); ++o)
          if (uint64_t n = stats_.queries[t][ty][o].load(std::memory_order_relaxed))
            q.add({{"transport", query::transportName(query::Transport(t))},
                   {"type", query::typeBucketName(query::TypeBucket(ty))},
                   {"rcode", query::outcomeName(query::Outcome(o))}},
                  double(n));
    out.push_back(std::move(q));

    FamilyData pe{"hdnsd_dns_parse_errors_total", "Queries that could not be parsed, by reason.", Type::kCounter, {}};
    for (size_t e = 0; e < size_t(dns::ParseError::kCount); ++e)
      pe.add({{"reason", dns::parseErrorName(dns::ParseError(e))}}, double(stats_.parseErrors[e].load()));
    out.push_back(std::move(pe));

    FamilyData tc{"hdnsd_dns_truncated_total", "Answers sent with TC=1 because they did not fit.", Type::kCounter, {}};
    for (size_t t = 0; t < size_t(query::Transport::kCount); ++t)
      tc.add({{"transport", query::transportName(query::Transport(t))}}, double(stats_.truncated[t].load()));
    out.push_back(std::move(tc));

    auto scalar = [&out](const char* name, const char* help, Type type, double v) {
      out.push_back(FamilyData{name, help, type, {}}.add({}, v));
    };
    scalar("hdnsd_udp_send_dropped_total", "UDP answers dropped because the socket and the send queue were full.",
           Type::kCounter, double(stats_.udpSendDropped.load()));
    scalar("hdnsd_tcp_connections_accepted_total", "DNS TCP connections accepted.", Type::kCounter,
           double(stats_.tcpConnectionsAccepted.load()));
    scalar("hdnsd_tcp_connections_refused_total", "DNS TCP connections closed at once: over --max-tcp-connections.",
           Type::kCounter, double(stats_.tcpConnectionsRefused.load()));
    scalar("hdnsd_tcp_idle_closed_total", "DNS TCP connections closed by the idle timeout.", Type::kCounter,
           double(stats_.tcpIdleClosed.load()));
    scalar("hdnsd_tcp_bad_frames_total", "DNS TCP connections closed for a length prefix below 12 bytes.",
           Type::kCounter, double(stats_.tcpBadFrames.load()));
    scalar("hdnsd_tcp_connections_open", "DNS TCP connections open now.", Type::kGauge,
           double(stats_.tcpConnectionsOpen.load()));
    scalar("hdnsd_tcp_per_client_refused_total",
           "DNS TCP connections closed at once: over --max-tcp-connections-per-client.", Type::kCounter,
           double(stats_.tcpPerClientRefused.load()));
    scalar("hdnsd_dns_acl_refused_total", "Queries from clients outside --allow (REFUSED, or dropped if malformed).",
           Type::kCounter, double(stats_.aclRefused.load()));
    scalar("hdnsd_dns_amplification_truncated_total",
           "UDP answers sent with TC=1 because of --max-udp-amplification.", Type::kCounter,
           double(stats_.udpAmplificationCapped.load()));

    upstream::collectMetrics(out, forwarder_.get(), cache_.get());
    if (cfg_.autopath) autopath::collectMetrics(out, responder_.autopathStats(), responder_.podIndex().get());

    const auto& view = responder_.snapshot();
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
