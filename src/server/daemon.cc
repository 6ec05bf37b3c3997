#include "hdnsd/server/daemon.h"

#include <csignal>

#include "hdnsd/metrics/process.h"
#include "hdnsd/util/log.h"

#ifndef HDNSD_VERSION
#define HDNSD_VERSION "dev"
#endif

namespace hdnsd::server {
namespace {

query::ResponderOptions responderOptions(const config::Config& c) {
  return {c.clusterDomain, c.ednsUdpSize};
}

}  // namespace

Daemon::Daemon(uv_loop_t* loop, std::vector<std::string> args, config::Config cfg)
    : loop_(loop), args_(std::move(args)), cfg_(std::move(cfg)), responder_(responderOptions(cfg_), stats_) {
  log::setLevel(cfg_.logLevel);
  registerMetrics();
}

Daemon::~Daemon() = default;

cluster::ViewOptions Daemon::viewOptions() const { return {cfg_.clusterDomain, cfg_.ttl_s}; }

TcpLimits Daemon::tcpLimits() const {
  return {cfg_.tcpIdleTimeout_ms, cfg_.maxTcpConnections, cfg_.tcpMaxPendingBytes};
}

Result<void, std::string> Daemon::start() {
  for (const auto& addr : cfg_.listen) {
    auto udp = std::make_unique<UdpListener>(loop_, responder_, stats_);
    if (auto r = udp->bind(addr); !r) return Unexpected{"--listen " + r.error()};
    auto tcp = std::make_unique<TcpListener>(loop_, responder_, stats_, tcpLimits());
    if (auto r = tcp->bind(addr); !r) return Unexpected{"--listen " + r.error()};
    LOG_INFO("dns: serving UDP and TCP on %s", addr.text().c_str());
    udp_.push_back(std::move(udp));
    tcp_.push_back(std::move(tcp));
  }
  if (cfg_.metrics) {
    http_ = std::make_unique<http::Server>(loop_, http::makeProbeHandler(registry_, readiness_));
    if (auto r = http_->listen(cfg_.metrics->text()); !r) return Unexpected{"--metrics " + r.error()};
    LOG_INFO("http: /health /ready /metrics on %s", cfg_.metrics->text().c_str());
  }
  if (!cfg_.endpointsFile.empty()) {
    startEndpointsFile();
    if (auto r = endpoints_->start(); !r) return Unexpected{r.error()};
  } else {
    // No source configured: serve an empty cluster (every cluster name NXDOMAIN) rather than
    // SERVFAIL forever. The Kubernetes API source will be the other choice.
    responder_.setSnapshot(cluster::Snapshot::build({}, viewOptions()));
    LOG_WARN("no --endpoints-file: serving an empty cluster zone %s", cfg_.clusterDomain.c_str());
  }
  return {};
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
            self->shutdown();
          }
        },
        signum);
    signals_.push_back(std::move(h));
  }
}

void Daemon::reload() {
  if (stopping_) return;
  auto parsed = config::parseCommandLine(args_);
  if (!parsed) {
    LOG_ERROR("reload: %s; keeping the running configuration", parsed.error().c_str());
    return;
  }
  applyConfig(parsed->config);
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
  bool fileChanged = applied.endpointsFile != cfg_.endpointsFile;
  cfg_ = std::move(applied);

  log::setLevel(cfg_.logLevel);
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
  } else {
    responder_.setSnapshot(cluster::Snapshot::build({}, viewOptions()));
  }
  LOG_INFO("reload: configuration applied: %s", config::toJson(cfg_).c_str());
}

void Daemon::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  // Every datagram already read was answered inside its callback; stop reading more. TCP
  // connections stop reading and close once their answers are written.
  for (auto& u : udp_) u->close();
  for (auto& t : tcp_) t->stopAccepting();
  if (endpoints_) endpoints_->close();
  if (http_) http_->close();
  signals_.clear();
  int err = 0;
  shutdownGuard_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (shutdownGuard_) {
    shutdownGuard_->data = this;
    uv_timer_start(
        shutdownGuard_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<Daemon*>(t->data);
          if (!self) return;
          for (auto& tcp : self->tcp_) tcp->closeAll();  // clients that never read their answers
          self->shutdownGuard_.reset();
        },
        1500, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(shutdownGuard_.get()));  // must not hold the loop open
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
