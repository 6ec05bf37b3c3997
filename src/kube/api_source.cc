#include "hdnsd/kube/api_source.h"

#include <malloc.h>

#include <chrono>
#include <cmath>

#include "hdnsd/util/log.h"

#ifndef HDNSD_VERSION
#define HDNSD_VERSION "dev"
#endif

namespace hdnsd::kube {
namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr size_t kMaxListBody = 512u << 20;  // one list page; the apiserver's own cap is lower
constexpr double kHealthyStream_s = 1.0;     // a stream that lived this long resumes at once
// A batch dirtying more services than this (or 1/8 of the view) is compiled from scratch on the
// thread pool instead of service by service on the loop (relists).
constexpr size_t kIncrementalMax = 256;

enum ErrorKind : size_t {
  kErrConnect, kErrHttp401, kErrHttp403, kErrHttp404, kErrHttp410, kErrHttp429, kErrHttp5xx,
  kErrHttpOther, kErrDecode, kErrLineTooLong, kErrErrorEvent, kErrCount
};
const char* kErrorKindNames[kErrCount] = {"connect", "http_401", "http_403", "http_404", "http_410", "http_429",
                                          "http_5xx", "http_other", "decode", "line_too_long", "error_event"};

// The start of the programming-latency interval: the controller's trigger time, else the
// arrival; 0 (no sample) for listed state (triggerTime_s < 0).
double triggerOf(const ApiObject& o, double arrival_s) {
  if (o.triggerTime_s < 0) return 0;
  return o.triggerTime_s > 0 ? o.triggerTime_s : arrival_s;
}

double monotonic_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

// One collection: list (or streaming list), then watch, forever, until closed.
struct ApiSource::Watch {
  enum class Mode { kStreaming, kList };
  enum class Phase { kIdle, kListing, kWatching, kWaiting };
  enum class Abort { kNone, kRelist, kRestart };

  ApiSource* src;
  Resource resource;
  Scope scope;
  std::string what;  // "endpointslices (all namespaces)" for logs and /ready
  Mode mode;
  Phase phase = Phase::kIdle;
  bool synced = false;
  bool initial = false;          // inside a list or a streaming list's initial events
  uint32_t incompleteStreams = 0;
  std::string rv;                // last resourceVersion seen
  std::string continueToken;
  std::unordered_set<std::string> owned;    // object keys this collection put in the model
  std::unordered_set<std::string> listing;  // keys seen by the list in progress
  std::unique_ptr<uvx::CurlTransfer> xfer;
  std::string body;              // list page, or an error response
  LineSplitter splitter;
  Abort abort = Abort::kNone;
  std::string abortWhy;
  long status = 0;
  double started_s = 0;
  bool gotEvent = false;
  uint32_t attempt = 0;
  bool resumeList = false;       // what retryLater's timer starts: a list page, or a watch
  std::string lastError;
  long lastLoggedStatus = 0;
  double lastEvent_s = 0;        // monotonic
  uvx::UvPtr<uv_timer_t> retry;
  // metrics
  metrics::Counter* events[5] = {};
  metrics::Counter* errors[kErrCount] = {};
  metrics::Counter* relists = nullptr;
  metrics::Counter* listRequests = nullptr;
  metrics::Counter* watchRequests = nullptr;

  Watch(ApiSource* s, Resource r, Scope sc, std::string w)
      : src(s), resource(r), scope(std::move(sc)), what(std::move(w)),
        mode(s->opts_.streamingList ? Mode::kStreaming : Mode::kList), splitter(s->opts_.maxEventBytes, /*skipOverlong=*/true) {}

  void registerMetrics(metrics::Registry& reg) {
    const std::string res = resourceName(resource);
    for (size_t t = 0; t < 5; ++t)
      events[t] = &reg.counter("hdnsd_kube_watch_events_total", "Watch events received, by resource and type.",
                               {{"resource", res}, {"type", eventTypeName(EventType(t))}});
    for (size_t k = 0; k < kErrCount; ++k)
      errors[k] = &reg.counter("hdnsd_kube_watch_errors_total",
                               "Failed API requests and broken watch streams, by resource and kind.",
                               {{"resource", res}, {"kind", kErrorKindNames[k]}});
    relists = &reg.counter("hdnsd_kube_relists_total", "Lists after the first (410 Gone/Expired), by resource.",
                           {{"resource", res}});
    listRequests = &reg.counter("hdnsd_kube_requests_total", "API requests started, by resource and verb.",
                                {{"resource", res}, {"verb", "list"}});
    watchRequests = &reg.counter("hdnsd_kube_requests_total", "API requests started, by resource and verb.",
                                 {{"resource", res}, {"verb", "watch"}});
  }

  void error(ErrorKind k, const std::string& msg) {
    errors[k]->inc();
    lastError = msg;
  }

  std::vector<std::string> headers(bool force) {
    std::vector<std::string> h = {"Accept: application/json", "User-Agent: " + src->opts_.userAgent};
    const std::string& tok = src->token_.get(src->now_s(), force);
    if (!tok.empty()) h.push_back("Authorization: Bearer " + tok);
    return h;
  }

  bool startTransfer(const std::string& url, long timeout_ms) {
    xfer = std::make_unique<uvx::CurlTransfer>();
    uvx::CurlTransfer::Options o;
    o.url = url;
    o.caFile = src->opts_.target.caFile;
    o.headers = headers(false);
    o.timeout_ms = timeout_ms;
    if (auto r = xfer->prepare(o); !r) {
      LOG_ERROR("kube: %s: %s", what.c_str(), r.error().c_str());
      return false;
    }
    body.clear();
    status = 0;
    abort = Abort::kNone;
    gotEvent = false;
    started_s = monotonic_s();
    xfer->onStatus = [this](long code) { status = code; };
    if (auto r = src->multi_->add(*xfer); !r) {
      LOG_ERROR("kube: %s: %s", what.c_str(), r.error().c_str());
      return false;
    }
    return true;
  }

  // ---- list -------------------------------------------------------------------------------
  void startList() {
    phase = Phase::kListing;
    if (continueToken.empty()) {
      listing.clear();
      initial = true;
    }
    listRequests->inc();
    const std::string url = listUrl(src->opts_.target.server, resource, scope, src->opts_.pageSize, continueToken);
    LOG_DEBUG("kube: GET %s", url.c_str());
    resumeList = true;
    if (!startTransfer(url, 120'000)) return retryLater(-1);
    xfer->onData = [this](std::string_view b) {
      const size_t cap = status == 200 ? kMaxListBody : kMaxErrorBody;
      if (body.size() + b.size() > cap) {
        abortWhy = "list response over " + std::to_string(cap) + " bytes";
        return false;
      }
      body.append(b);
      return true;
    };
    xfer->onDone = [this](CURLcode code, const char* msg) { onListDone(code, msg); };
  }

  void onListDone(CURLcode code, const char* msg) {
    if (code != CURLE_OK || status != 200) return onFailure(code, msg, /*listing=*/true);
    src->decodePage(*this, std::move(body));
  }

  void onPage(Result<ListPage, std::string>& page, double elapsed_ms) {
    xfer.reset();
    if (!page) {
      error(kErrDecode, "list decode: " + page.error());
      LOG_ERROR("kube: %s: list: %s; retrying", what.c_str(), page.error().c_str());
      continueToken.clear();
      resumeList = true;
      return retryLater(-1);
    }
    const double arrival = src->now_s();
    LOG_DEBUG("kube: %s: list page of %zu items decoded in %.1f ms", what.c_str(), page->items.size(), elapsed_ms);
    for (size_t i = 0; i < page->skipped.size(); ++i) {  // bad items: skipped, their last good version kept
      error(kErrDecode, "list item: " + page->skipped[i]);
      const std::string& key = page->skippedItems[i].key;
      LOG_ERROR("kube: %s: list: skipping %s: %s; its last good version is kept", what.c_str(),
                key.empty() ? "an object" : key.c_str(), page->skipped[i].c_str());
      if (!key.empty()) listing.insert(key);
    }
    for (auto& item : page->items) {
      listing.insert(item.key);
      item.triggerTime_s = -1;  // listed state, not a change: no programming-latency sample
      src->apply(*this, std::move(item), false, arrival);
    }
    if (!page->continueToken.empty()) {
      continueToken = page->continueToken;
      return startList();
    }
    rv = page->resourceVersion;
    endInitial();
    startWatch();
  }

  void endInitial() {
    initial = false;
    src->removeStale(*this);
    if (resource == Resource::kPods) src->publishPods();
    attempt = 0;
    if (!synced) {
      synced = true;
      LOG_INFO("kube: %s: synced (%zu objects, resourceVersion %s)", what.c_str(), owned.size(), rv.c_str());
      src->checkSynced();
    }
  }

  // ---- watch ------------------------------------------------------------------------------
  void startWatch() {
    phase = Phase::kWatching;
    WatchParams p;
    const uint32_t t = src->opts_.watchTimeout_s;
    p.timeout_s = t + uint32_t(std::uniform_int_distribution<uint32_t>(0, t > 0 ? t - 1 : 0)(src->rng_));
    if (rv.empty() && mode == Mode::kStreaming) {
      p.sendInitialEvents = true;  // a streaming list: initial events, then the end bookmark
      listing.clear();
      initial = true;
    }
    p.resourceVersion = rv;
    splitter.reset();
    watchRequests->inc();
    const std::string url = watchUrl(src->opts_.target.server, resource, scope, p);
    LOG_DEBUG("kube: GET %s", url.c_str());
    // The server ends the stream after timeoutSeconds; our hard limit is a minute later.
    resumeList = false;
    if (!startTransfer(url, long(p.timeout_s + 60) * 1000)) return retryLater(-1);
    xfer->onData = [this](std::string_view b) { return onStreamData(b); };
    xfer->onDone = [this](CURLcode code, const char* msg) { onWatchDone(code, msg); };
  }

  bool onStreamData(std::string_view b) {
    if (status != 200) {  // an error response: keep (some of) its Status body
      if (body.size() < kMaxErrorBody) body.append(b.substr(0, kMaxErrorBody - body.size()));
      return true;
    }
    const double arrival = src->now_s();
    const uint64_t skippedBefore = splitter.skipped();
    auto st = splitter.feed(b, [this, arrival](std::string_view line) { return onLine(line, arrival); });
    if (splitter.skipped() != skippedBefore) {  // an object too big to take: skipped, the watch goes on
      error(kErrLineTooLong, "watch event over " + std::to_string(splitter.maxLine()) + " bytes");
      LOG_ERROR("kube: %s: skipped a watch event over %zu bytes (--kube-max-event-bytes); the object it "
                "carried keeps its last good version", what.c_str(), splitter.maxLine());
    }
    if (st == LineSplitter::Status::kTooLong) {
      error(kErrLineTooLong, "watch event over " + std::to_string(splitter.maxLine()) + " bytes");
      abort = Abort::kRestart;
      abortWhy = lastError;
      return false;
    }
    return st != LineSplitter::Status::kStopped;
  }

  bool onLine(std::string_view line, double arrival) {
    auto ev = decodeWatchEvent(line, resource);
    if (!ev) {
      error(kErrDecode, "watch event: " + ev.error());
      abort = Abort::kRestart;
      abortWhy = lastError;
      return false;
    }
    events[size_t(ev->type)]->inc();
    lastEvent_s = monotonic_s();
    gotEvent = true;
    if (!ev->skipped.empty()) {  // a valid event whose object does not decode: skip that object only
      error(kErrDecode, "watch event: " + ev->skipped);
      LOG_ERROR("kube: %s: skipping %s (resourceVersion %s): %s; its last good version is kept", what.c_str(),
                ev->object.key.empty() ? "an object" : ev->object.key.c_str(),
                ev->object.resourceVersion.c_str(), ev->skipped.c_str());
      if (!ev->object.resourceVersion.empty()) rv = ev->object.resourceVersion;
      if (initial && !ev->object.key.empty()) listing.insert(ev->object.key);  // not stale: keep the old one
      return true;
    }
    switch (ev->type) {
      case EventType::kAdded:
      case EventType::kModified:
      case EventType::kDeleted: {
        const bool deleted = ev->type == EventType::kDeleted;
        if (!ev->object.resourceVersion.empty()) rv = ev->object.resourceVersion;
        if (initial) {
          listing.insert(ev->object.key);
          ev->object.triggerTime_s = -1;  // initial state, not a change
        }
        src->apply(*this, std::move(ev->object), deleted, arrival);
        return true;
      }
      case EventType::kBookmark:
        rv = ev->object.resourceVersion;
        if (initial && ev->initialEventsEnd) {
          incompleteStreams = 0;
          endInitial();
        }
        return true;
      case EventType::kError:
        if (ev->errorCode == 410 || ev->errorReason == "Expired" || ev->errorReason == "Gone") {
          abort = Abort::kRelist;
          abortWhy = "ERROR event 410 " + ev->errorReason + ": " + ev->errorMessage;
          errors[kErrHttp410]->inc();
        } else {
          error(kErrErrorEvent, "ERROR event " + std::to_string(ev->errorCode) + " " + ev->errorReason + ": " +
                                    ev->errorMessage);
          abort = Abort::kRestart;
          abortWhy = lastError;
        }
        return false;
    }
    return true;
  }

  void onWatchDone(CURLcode code, const char* msg) {
    const double lived = monotonic_s() - started_s;
    if (abort == Abort::kRelist) {
      LOG_WARN("kube: %s: %s; relisting", what.c_str(), abortWhy.c_str());
      return relist();
    }
    if (abort == Abort::kRestart) {
      LOG_ERROR("kube: %s: %s; restarting the watch from resourceVersion %s", what.c_str(), abortWhy.c_str(),
                rv.empty() ? "(none)" : rv.c_str());
      if (initial) rv.clear();  // an interrupted initial stream starts over
      xfer.reset();
      resumeList = false;
      return retryLater(-1);
    }
    if (status == 200 && (code == CURLE_OK || gotEvent || lived >= kHealthyStream_s)) {
      const bool healthy = gotEvent || lived >= kHealthyStream_s;
      // The server closed the stream (timeoutSeconds) or it dropped after working: resume.
      if (code != CURLE_OK) {
        errors[kErrConnect]->inc();
        LOG_WARN("kube: %s: watch stream dropped (%s); resuming from resourceVersion %s", what.c_str(), msg,
                 rv.c_str());
      } else {
        LOG_DEBUG("kube: %s: watch ended after %.0f s; resuming from %s", what.c_str(), lived, rv.c_str());
      }
      if (initial) {  // a streaming list that never reached its end bookmark
        rv.clear();
        if (++incompleteStreams >= 2 && mode == Mode::kStreaming) {
          LOG_WARN("kube: %s: streaming list ended twice before its initial-events-end bookmark; using list+watch",
                   what.c_str());
          mode = Mode::kList;
          xfer.reset();
          return startList();
        }
      }
      xfer.reset();
      if (!healthy) {  // ended at once with nothing: do not spin on a server that does that
        resumeList = false;
        return retryLater(-1);
      }
      attempt = 0;
      return startWatch();
    }
    onFailure(code, msg, /*listing=*/false);
  }

  void relist() {
    relists->inc();
    xfer.reset();
    rv.clear();
    continueToken.clear();
    if (mode == Mode::kStreaming) return startWatch();
    startList();
  }

  // Any failed request: classify, log, back off (or switch mode / resource).
  void onFailure(CURLcode code, const char* msg, bool listing) {
    const char* verb = listing ? "list" : "watch";
    long retryAfter = -1;
    if (xfer) retryAfter = xfer->retryAfter_s();
    const std::string statusText = statusMessage(body);
    if (code != CURLE_OK && status == 0) {
      error(kErrConnect, std::string(verb) + ": " + msg);
      LOG_WARN("kube: %s: %s: %s; retrying (serving the last known view)", what.c_str(), verb, msg);
    } else if (code != CURLE_OK && status == 200) {
      error(kErrConnect, std::string(verb) + ": " + (abortWhy.empty() ? msg : abortWhy.c_str()));
      LOG_WARN("kube: %s: %s interrupted: %s; retrying", what.c_str(), verb, lastError.c_str());
    } else if (status == 410) {
      errors[kErrHttp410]->inc();
      LOG_WARN("kube: %s: %s: 410 %s; relisting", what.c_str(), verb, statusText.c_str());
      return relist();
    } else if (status == 401 || status == 403) {
      error(status == 401 ? kErrHttp401 : kErrHttp403,
            std::string(verb) + ": " + std::to_string(status) + " " + statusText);
      if (status == 401) (void)src->token_.get(src->now_s(), /*force=*/true);  // maybe rotated
      if (lastLoggedStatus != status)
        LOG_ERROR("kube: %s: %s: %ld %s; the service account needs RBAC permission to %s%s%s; retrying",
                  what.c_str(), verb, status, status == 401 ? "Unauthorized (token rejected)" : "Forbidden",
                  rbacHint(resource).c_str(), scope.ns.empty() ? " cluster-wide" : (" in namespace " + scope.ns).c_str(),
                  src->token_.error().empty() ? "" : (" (" + src->token_.error() + ")").c_str());
    } else if (status == 404 && resource == Resource::kEndpointSlices) {
      errors[kErrHttp404]->inc();
      LOG_WARN("kube: %s: 404: the discovery.k8s.io/v1 EndpointSlice API is absent; falling back to v1 Endpoints",
               what.c_str());
      src->fallBackToEndpoints(*this);
      return;  // this watch is gone
    } else if (mode == Mode::kStreaming && !listing && rv.empty() && status >= 400 && status < 500 && status != 429) {
      error(kErrHttpOther, std::string(verb) + ": " + std::to_string(status) + " " + statusText);
      LOG_INFO("kube: %s: the server does not offer streaming lists (%ld %s); using list+watch", what.c_str(), status,
               statusText.c_str());
      mode = Mode::kList;
      xfer.reset();
      return startList();
    } else if (status == 429) {
      error(kErrHttp429, std::string(verb) + ": 429 " + statusText);
      LOG_WARN("kube: %s: %s: 429 Too Many Requests; retrying after %ld s", what.c_str(), verb, retryAfter);
    } else if (status >= 500) {
      error(kErrHttp5xx, std::string(verb) + ": " + std::to_string(status) + " " + statusText);
      LOG_WARN("kube: %s: %s: %ld %s; retrying (serving the last known view)", what.c_str(), verb, status,
               statusText.c_str());
    } else {
      error(kErrHttpOther, std::string(verb) + ": " + std::to_string(status) + " " + statusText);
      LOG_ERROR("kube: %s: %s: %ld %s; retrying", what.c_str(), verb, status, statusText.c_str());
    }
    if (status != 401 && status != 403) lastLoggedStatus = 0;
    else lastLoggedStatus = status;
    if (initial && !listing) rv.clear();  // a streaming list starts over
    resumeList = listing;
    xfer.reset();
    retryLater(status == 429 || status == 503 ? retryAfter : -1);
  }

  void retryLater(long retryAfter_s) {
    phase = Phase::kWaiting;
    const double u = std::uniform_real_distribution<double>(0, 1)(src->rng_);
    const double delay = backoffDelay_ms(src->opts_.backoff, attempt++, u, retryAfter_s);
    if (!retry) {
      retry = uvx::makeHandle<uv_timer_t>(src->loop_, nullptr, uv_timer_init);
      if (!retry) return;
      retry->data = this;
    }
    LOG_DEBUG("kube: %s: retry in %.0f ms", what.c_str(), delay);
    uv_timer_start(
        retry.get(),
        [](uv_timer_t* t) {
          auto* w = static_cast<Watch*>(t->data);
          if (w == nullptr || w->src->closed_) return;
          w->resume();
        },
        uint64_t(delay), 0);
  }

  void resume() {
    xfer.reset();
    if (resumeList || (mode == Mode::kList && rv.empty())) return startList();
    startWatch();
  }
};

// ---- thread-pool jobs ------------------------------------------------------------------------

struct ApiSource::PageJob {
  uv_work_t req{};
  ApiSource* src;
  std::shared_ptr<bool> alive;
  Watch* watch;
  Resource resource;
  std::string body;
  Result<ListPage, std::string> page = Unexpected{std::string("not run")};
  double elapsed_ms = 0;
};

struct ApiSource::BuildJob {
  uv_work_t req{};
  ApiSource* src;
  std::shared_ptr<bool> alive;
  std::shared_ptr<const cluster::ClusterModel> model;  // frozen while the job runs
  cluster::ViewOptions opts;
  std::shared_ptr<const cluster::Snapshot> snap;
  double elapsed_ms = 0;
};

void ApiSource::decodePage(Watch& w, std::string body) {
  auto* job = new PageJob{};
  job->req.data = job;
  job->src = this;
  job->alive = alive_;
  job->watch = &w;
  job->resource = w.resource;
  job->body = std::move(body);
  int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<PageJob*>(req->data);
        auto t0 = std::chrono::steady_clock::now();
        j->page = decodeListPage(j->body, j->resource);
        j->body.clear();
        j->body.shrink_to_fit();
        j->elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<PageJob> j(static_cast<PageJob*>(req->data));
        if (!*j->alive || j->src->closed_) return;
        j->watch->onPage(j->page, j->elapsed_ms);
      });
  if (rc != 0) {
    delete job;
    LOG_ERROR("kube: cannot queue a list page decode: %s", uv_strerror(rc));
    w.retryLater(-1);
  }
}

// ---- ApiSource -------------------------------------------------------------------------------

ApiSource::ApiSource(uv_loop_t* loop, ApiSourceOptions opts, metrics::Registry& registry, OnSnapshot onSnapshot)
    : loop_(loop), opts_(std::move(opts)), registry_(registry), onSnapshot_(std::move(onSnapshot)),
      token_(opts_.target.tokenFile), rng_(std::random_device{}()) {
  registerMetrics();
}

ApiSource::~ApiSource() { close(); }

void ApiSource::registerMetrics() {
  // SIG Scalability's DNS programming latency SLI buckets (seconds).
  static constexpr double kLatency[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,    5,     10,   30,    60,   120, 300};
  programmingLatency_ = &registry_.histogram(
      "hdnsd_kube_dns_programming_latency_seconds",
      "From an EndpointSlice change (its last-change-trigger-time annotation, else its arrival) to the view "
      "serving it.",
      kLatency);
  publishLatency_ = &registry_.histogram("hdnsd_kube_event_publish_seconds",
                                         "From a watch event's arrival to the view serving it.", kLatency);
  fullBuilds_ = &registry_.counter("hdnsd_kube_view_builds_total", "Views published from the API, by kind.",
                                   {{"kind", "full"}});
  incrementalBuilds_ = &registry_.counter("hdnsd_kube_view_builds_total", "Views published from the API, by kind.",
                                          {{"kind", "incremental"}});
  registry_.addCollector([this](std::vector<metrics::FamilyData>& out) {
    metrics::FamilyData since{"hdnsd_kube_seconds_since_last_event",
                              "Seconds since the last watch event (bookmarks included), by resource; -1 before any.",
                              metrics::Type::kGauge, {}};
    metrics::FamilyData synced{"hdnsd_kube_synced", "1 once the resource's initial list has synced.",
                               metrics::Type::kGauge, {}};
    const double now = monotonic_s();
    std::map<std::string, std::pair<double, bool>> byRes;  // resource -> (latest event, all synced)
    for (const auto& w : watches_) {
      auto& e = byRes.try_emplace(resourceName(w->resource), 0.0, true).first->second;
      e.first = std::max(e.first, w->lastEvent_s);
      e.second = e.second && w->synced;
    }
    for (const auto& [res, e] : byRes) {
      since.add({{"resource", res}}, e.first > 0 ? now - e.first : -1);
      synced.add({{"resource", res}}, e.second ? 1 : 0);
    }
    out.push_back(std::move(since));
    out.push_back(std::move(synced));
  });
}

double ApiSource::now_s() const noexcept {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void ApiSource::addWatch(Resource r, const std::string& ns, std::string labelSelector, const char* role) {
  Scope s;
  s.ns = ns;
  s.labelSelector = std::move(labelSelector);
  std::string what = std::string(resourceName(r)) + (role[0] != '\0' ? std::string(" ") + role : "") +
                     (ns.empty() ? " (all namespaces)" : " (namespace " + ns + ")");
  auto w = std::make_unique<Watch>(this, r, std::move(s), std::move(what));
  w->registerMetrics(registry_);
  watches_.push_back(std::move(w));
}

Result<void, std::string> ApiSource::start() {
  multi_ = std::make_unique<uvx::CurlMulti>(loop_);
  if (auto r = multi_->init(); !r) return Unexpected{"kube: " + r.error()};
  int err = 0;
  publishTimer_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (!publishTimer_) return Unexpected{std::string("kube: ") + uv_strerror(err)};
  publishTimer_->data = this;
  (void)token_.get(now_s());
  if (!token_.error().empty()) LOG_WARN("kube: %s (will retry)", token_.error().c_str());

  auto join = [this](const std::string& extra) {
    if (opts_.labelSelector.empty()) return extra;
    if (extra.empty()) return opts_.labelSelector;
    return opts_.labelSelector + "," + extra;
  };
  std::vector<std::string> nss = opts_.namespaces;
  if (nss.empty()) nss.push_back("");
  for (const auto& ns : nss) {
    addWatch(Resource::kServices, ns, join(""), "");
    if (opts_.headlessOnly) {
      // The complement of kube-proxy's selector, plus slices not made by the EndpointSlice
      // controller (hand-made slices of selector-less services lack the headless label).
      addWatch(Resource::kEndpointSlices, ns, join(kHeadlessLabel), "headless");
      addWatch(Resource::kEndpointSlices, ns,
               join(std::string(kManagedByLabel) + "!=" + kSliceControllerName), "not controller-managed");
    } else {
      addWatch(Resource::kEndpointSlices, ns, join(""), "");
    }
  }
  if (!opts_.autopathNode.empty())
    for (const auto& ns : nss) {  // --autopath: this node's pods only (cheap, unlike every pod)
      addWatch(Resource::kPods, ns, "", ("of node " + opts_.autopathNode).c_str());
      watches_.back()->scope.fieldSelector = "spec.nodeName=" + opts_.autopathNode;
    }
  LOG_INFO("kube: watching %s: %zu collections%s%s", opts_.target.server.c_str(), watches_.size(),
           opts_.headlessOnly ? ", headless services only" : "",
           opts_.labelSelector.empty() ? "" : (", label selector " + opts_.labelSelector).c_str());
  for (auto& w : watches_) {
    if (w->mode == Watch::Mode::kStreaming) w->startWatch();
    else w->startList();
  }
  return {};
}

void ApiSource::fallBackToEndpoints(Watch& w) {
  // Replace this EndpointSlice collection with a v1 Endpoints one (same namespace). Both
  // headless-only slice collections map onto one Endpoints collection with the headless label
  // dropped: hand-made Endpoints lack it too; non-headless services are not in the model, so
  // their Endpoints are never compiled.
  const std::string ns = w.scope.ns;
  w.xfer.reset();
  w.retry.reset();
  auto keys = std::make_shared<std::vector<std::string>>(w.owned.begin(), w.owned.end());
  auto drop = [this, keys] {
    const double now = now_s();
    for (const auto& k : *keys) {
      auto it = model_->slices().find(k);
      if (it == model_->slices().end()) continue;
      markDirty(cluster::objectKey(it->second.ns, it->second.serviceName), 0, now);
      model_->eraseSlice(k);
    }
  };
  if (frozen()) frozenOps_.push_back(drop);  // the thread pool is reading the model
  else drop();
  for (auto it = watches_.begin(); it != watches_.end(); ++it)
    if (it->get() == &w) {
      // Destroying w from inside its own callback chain would pull the rug: defer by one turn.
      auto dead = std::shared_ptr<Watch>(it->release());
      watches_.erase(it);
      auto* t = new uv_timer_t{};
      uv_timer_init(loop_, t);
      t->data = new std::shared_ptr<Watch>(std::move(dead));
      uv_timer_start(
          t,
          [](uv_timer_t* h) {
            delete static_cast<std::shared_ptr<Watch>*>(h->data);
            uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* p) { delete reinterpret_cast<uv_timer_t*>(p); });
          },
          0, 0);
      break;
    }
  for (const auto& other : watches_)
    if (other->resource == Resource::kEndpoints && other->scope.ns == ns) return;  // already there
  addWatch(Resource::kEndpoints, ns, opts_.labelSelector, "");
  Watch& e = *watches_.back();
  if (e.mode == Watch::Mode::kStreaming) e.startWatch();
  else e.startList();
}

void ApiSource::close() noexcept {
  if (closed_) return;
  closed_ = true;
  *alive_ = false;
  for (auto& w : watches_) {
    w->xfer.reset();
    w->retry.reset();
  }
  watches_.clear();
  publishTimer_.reset();
  if (multi_) multi_->close();
}

bool ApiSource::synced() const noexcept { return allSynced_ && current_ != nullptr; }

std::string ApiSource::problem() const {
  for (const auto& w : watches_)
    if (!w->synced)
      return "kubernetes API " + opts_.target.server + ": " + w->what + " not synced yet" +
             (w->lastError.empty() ? "" : " (" + w->lastError + ")");
  if (!current_) return "kubernetes API " + opts_.target.server + ": compiling the first view";
  return {};
}

void ApiSource::apply(Watch& w, ApiObject&& obj, bool deleted, double arrival_s) {
  if (w.resource == Resource::kPods) return applyPod(w, obj, deleted);  // not in the model: no freeze
  if (frozen()) {
    // The thread pool is reading model_: hold the update until the build (or save) is done.
    auto held = std::make_shared<ApiObject>(std::move(obj));
    Watch* wp = &w;
    frozenOps_.push_back([this, wp, held, deleted, arrival_s] { applyNow(*wp, *held, deleted, arrival_s); });
    return;
  }
  applyNow(w, obj, deleted, arrival_s);
}

void ApiSource::applyNow(Watch& w, ApiObject& obj, bool deleted, double arrival_s) {
  if (deleted) w.owned.erase(obj.key);
  else w.owned.insert(obj.key);
  // Services changing is not an endpoint change: no programming-latency sample for them.
  const double trigger = w.resource == Resource::kServices ? 0 : triggerOf(obj, arrival_s);
  for (const auto& svc : applyObject(*model_, endpointsSlices_, w.resource, obj, deleted, opts_.headlessOnly))
    markDirty(svc, trigger, arrival_s);
}

void ApiSource::applyPod(Watch& w, const ApiObject& obj, bool deleted) {
  if (deleted) w.owned.erase(obj.key);
  else w.owned.insert(obj.key);
  if (deleted || !obj.pod) pods_.erase(obj.key);
  else pods_[obj.key] = *obj.pod;
  if (w.synced && !w.initial) publishPods();  // the initial list publishes once, at its end
}

void ApiSource::publishPods() {
  if (!onPods_) return;
  std::vector<autopath::PodEntry> entries;
  entries.reserve(pods_.size());
  for (const auto& [key, p] : pods_)
    if (!p.hostNetwork && !p.terminal && !p.ips.empty()) entries.push_back({p.ns, p.ips});
  auto idx = autopath::PodIndex::build(entries);
  LOG_DEBUG("kube: autopath: %zu pods of node %s, %zu addresses (%zu ambiguous)", idx->pods(),
            opts_.autopathNode.c_str(), idx->addresses(), idx->conflicts());
  onPods_(std::move(idx));
}

void ApiSource::removeStale(Watch& w) {
  // After a (re)list: objects this collection had that the new list does not.
  std::vector<std::string> gone;
  for (const auto& key : w.owned)
    if (!w.listing.count(key)) gone.push_back(key);
  const double arrival = now_s();
  for (auto& key : gone) {
    ApiObject o;
    o.key = key;
    apply(w, std::move(o), /*deleted=*/true, arrival);
  }
  if (!gone.empty()) LOG_INFO("kube: %s: %zu objects gone since the last list", w.what.c_str(), gone.size());
  w.listing.clear();
}

void ApiSource::markDirty(const std::string& serviceKey, double trigger_s, double arrival_s) {
  auto [it, fresh] = dirty_.try_emplace(serviceKey, Dirty{trigger_s, arrival_s});
  if (!fresh) {
    if (trigger_s > 0 && (it->second.trigger_s == 0 || trigger_s < it->second.trigger_s)) it->second.trigger_s = trigger_s;
    if (arrival_s < it->second.arrival_s) it->second.arrival_s = arrival_s;
  }
  schedulePublish();
}

void ApiSource::schedulePublish() noexcept {
  if (!publishTimer_ || !allSynced_ || building_) return;
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(publishTimer_.get()))) return;
  // 0 ms: runs at the start of the next loop turn, after every read of this turn (one batch).
  uv_timer_start(
      publishTimer_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<ApiSource*>(t->data)) self->publish();
      },
      0, 0);
}

void ApiSource::checkSynced() noexcept {
  if (allSynced_) return;
  for (const auto& w : watches_)
    if (!w->synced) return;
  allSynced_ = true;
  LOG_INFO("kube: every collection synced: %zu services, %zu endpoint slices; compiling the view",
           model_->services.size(), model_->slices().size());
  startFullBuild();
}

void ApiSource::publish() noexcept {
  if (!allSynced_ || building_ || closed_) return;
  if (dirty_.empty() && !rebuildAll_) return;
  const size_t limit = std::max<size_t>(kIncrementalMax, current_ ? current_->serviceCount() / 8 : 0);
  if (!current_ || rebuildAll_ || dirty_.size() > limit) return startFullBuild();
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<const cluster::Snapshot> snap = current_;
  try {
    for (const auto& [key, d] : dirty_) snap = cluster::Snapshot::rebuildService(*snap, *model_, key);
  } catch (const std::exception& e) {
    LOG_ERROR("kube: incremental view update failed (%s); compiling the whole view", e.what());
    return startFullBuild();
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  current_ = snap;
  onSnapshot_(snap);
  incrementalBuilds_->inc();
  const double now = now_s();
  double maxLag = 0;
  for (const auto& [key, d] : dirty_) {
    publishLatency_->observe(std::max(0.0, now - d.arrival_s));
    maxLag = std::max(maxLag, now - d.arrival_s);
    if (d.trigger_s > 0) programmingLatency_->observe(std::max(0.0, now - d.trigger_s));
  }
  LOG_DEBUG("kube: published %zu changed services in %.2f ms (event to publish at most %.2f ms)", dirty_.size(), ms,
            maxLag * 1000);
  dirty_.clear();
}

void ApiSource::startFullBuild() noexcept {
  if (building_ || closed_) return;
  building_ = true;
  rebuildAll_ = false;
  auto* job = new BuildJob{};
  job->req.data = job;
  job->src = this;
  job->alive = alive_;
  job->model = model_;
  job->opts = opts_.view;
  // The batch this build covers: everything dirty now (later events queue in frozenOps_).
  auto covered = std::make_shared<std::map<std::string, Dirty>>(std::move(dirty_));
  dirty_.clear();
  int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<BuildJob*>(req->data);
        auto t0 = std::chrono::steady_clock::now();
        try {
          j->snap = cluster::Snapshot::build(*j->model, j->opts);
        } catch (const std::exception&) {
          j->snap.reset();
        }
        // Parsing the lists left the heap full of freed JSON nodes; hand those pages back to the
        // kernel (here, off the loop) so RSS reflects the view, not the parse's high-water mark.
        malloc_trim(0);
        j->elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<BuildJob> j(static_cast<BuildJob*>(req->data));
        if (!*j->alive) return;
        j->src->finishFullBuild(std::move(j->snap), j->elapsed_ms);
      });
  if (rc != 0) {
    delete job;
    building_ = false;
    LOG_ERROR("kube: cannot queue a view build: %s", uv_strerror(rc));
    return;
  }
  // Latency of the covered changes is observed when the build lands.
  coveredByBuild_ = std::move(covered);
}

void ApiSource::finishFullBuild(std::shared_ptr<const cluster::Snapshot> snap, double elapsed_ms) noexcept {
  building_ = false;
  if (closed_) return;
  if (!snap) {
    LOG_ERROR("kube: compiling the view failed; keeping the last one");
  } else {
    const bool first = current_ == nullptr;
    current_ = snap;
    fullBuilds_->inc();
    if (first)
      LOG_INFO("kube: serving %zu services, %zu endpoints (%zu objects skipped), compiled in %.1f ms",
               snap->serviceCount(), snap->endpointCount(), snap->skippedObjects(), elapsed_ms);
    else
      LOG_INFO("kube: view recompiled: %zu services, %zu endpoints in %.1f ms", snap->serviceCount(),
               snap->endpointCount(), elapsed_ms);
    onSnapshot_(snap);
    if (coveredByBuild_) {
      const double now = now_s();
      for (const auto& [key, d] : *coveredByBuild_) {
        publishLatency_->observe(std::max(0.0, now - d.arrival_s));
        if (d.trigger_s > 0 && !first) programmingLatency_->observe(std::max(0.0, now - d.trigger_s));
      }
    }
  }
  coveredByBuild_.reset();
  thaw();
}

void ApiSource::thaw() noexcept {
  if (closed_) {
    frozenOps_.clear();  // they point at watches close() destroyed
    return;
  }
  if (frozen()) return;
  // Apply what arrived meanwhile; that marks services dirty and schedules an incremental publish.
  auto ops = std::move(frozenOps_);
  frozenOps_.clear();
  for (auto& op : ops) op();
  schedulePublish();
}

std::shared_ptr<const cluster::ClusterModel> ApiSource::holdModel() noexcept {
  ++holds_;
  return model_;
}

void ApiSource::releaseModel() noexcept {
  if (holds_ == 0) return;
  --holds_;
  thaw();
}

void ApiSource::setViewOptions(const cluster::ViewOptions& v) {
  opts_.view = v;
  if (!allSynced_) return;
  rebuildAll_ = true;
  if (building_) return;  // finishFullBuild → schedulePublish → publish sees rebuildAll_
  startFullBuild();
}

}  // namespace hdnsd::kube
