// The Kubernetes API cluster source: list+watch of discovery.k8s.io/v1 EndpointSlices (v1
// Endpoints where that API is absent) and v1 Services over libcurl on the libuv loop
// (uvx::CurlMulti), kept in a ClusterModel and published as Snapshots. Loop thread only.
//
// Per watched collection (one resource, in one namespace or all, with one label selector):
//   1. Streaming list when the server offers it (watch with sendInitialEvents=true: ADDED
//      events, then the BOOKMARK annotated k8s.io/initial-events-end). A 4xx answer to that
//      (servers without the WatchList feature reject resourceVersionMatch on a watch), or two
//      streams in a row that end before the bookmark, switch that collection to 2.
//   2. Paginated list (limit/continue; consistent read), then watch from the list's
//      resourceVersion with allowWatchBookmarks and timeoutSeconds.
//   A stream that ends or drops resumes from the last resourceVersion seen (bookmarks
//   included) without relisting; a 410 (HTTP or an ERROR event) relists. Errors back off with
//   jitter (backoff.h; Retry-After on 429); 401 re-reads the token at once; 401/403 log one line
//   naming what RBAC must allow; a 404 on EndpointSlices falls back to v1 Endpoints.
//   A line over maxEventBytes, or one that does not decode, restarts the watch from the last
//   good resourceVersion. Through every fault the last published Snapshot keeps being served.
//
// Publishing. Nothing is published before every collection has synced (queries for cluster
// names get SERVFAIL meanwhile: Responder::snapshot() is null). The first view, and any batch
// touching many services (a relist), is compiled with Snapshot::build on the libuv thread pool;
// while it compiles the model is frozen (the job reads it) and decoded events queue up. List
// pages are parsed on the thread pool as well: a 100k-endpoint list is ~100 MB of JSON, about a
// second of parsing that must not stall queries. Watch events are decoded on the loop (one
// object each) and update the model at once; the services they touch are marked dirty and a
// 0 ms timer, which fires after the current loop turn's I/O, publishes one Snapshot for the
// whole batch with Snapshot::rebuildService per dirty service (cost: those services).
//
// Metrics (registry): hdnsd_kube_watch_events_total{resource,type},
// hdnsd_kube_relists_total{resource}, hdnsd_kube_watch_errors_total{resource,kind},
// hdnsd_kube_requests_total{resource,verb}, hdnsd_kube_seconds_since_last_event{resource},
// hdnsd_kube_synced{resource}, hdnsd_kube_dns_programming_latency_seconds (slice change,
// from its last-change-trigger-time annotation or else its arrival, to publish),
// hdnsd_kube_event_publish_seconds (event arrival to publish), hdnsd_kube_view_builds_total{kind}.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hdnsd/autopath/autopath.h"
#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/kube/api_config.h"
#include "hdnsd/kube/api_url.h"
#include "hdnsd/kube/backoff.h"
#include "hdnsd/kube/line_splitter.h"
#include "hdnsd/kube/watch_event.h"
#include "hdnsd/metrics/registry.h"
#include "hdnsd/util/result.h"
#include "hdnsd/uvx/curl_multi.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::kube {

// Labels that scope the watch (--headless-only).
inline constexpr const char* kHeadlessLabel = "service.kubernetes.io/headless";
inline constexpr const char* kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
inline constexpr const char* kSliceControllerName = "endpointslice-controller.k8s.io";

struct ApiSourceOptions {
  ApiTarget target;
  std::string labelSelector;            // --kube-label-selector (slices/endpoints and services)
  std::vector<std::string> namespaces;  // --namespace; empty: all
  bool headlessOnly = false;            // --headless-only
  uint32_t pageSize = 500;              // list limit
  size_t maxEventBytes = 4u << 20;      // longest watch line
  uint32_t watchTimeout_s = 300;        // timeoutSeconds is drawn from [T, 2T) like client-go
  bool streamingList = true;            // try sendInitialEvents first
  BackoffPolicy backoff;
  cluster::ViewOptions view;
  std::string userAgent = "hdnsd";
  // --autopath: also list+watch v1 pods with fieldSelector=spec.nodeName=<this>, per namespace
  // collection like the rest (so their sync gates readiness too), into a PodIndex. "": no pods.
  std::string autopathNode;
};

class ApiSource {
 public:
  using OnSnapshot = std::function<void(std::shared_ptr<const cluster::Snapshot>)>;
  // A new client IP → namespace map of this node's pods (autopathNode set): after the pods'
  // initial list and after every pod event once synced (host-network and finished pods left out).
  using OnPods = std::function<void(std::shared_ptr<const autopath::PodIndex>)>;
  void setOnPods(OnPods f) { onPods_ = std::move(f); }

  ApiSource(uv_loop_t* loop, ApiSourceOptions opts, metrics::Registry& registry, OnSnapshot onSnapshot);
  ~ApiSource();
  ApiSource(const ApiSource&) = delete;
  ApiSource& operator=(const ApiSource&) = delete;

  Result<void, std::string> start();
  // Reload with new view options (zone, TTL): recompiles the whole view from the model.
  void setViewOptions(const cluster::ViewOptions& v);
  void close() noexcept;

  // Every collection has synced once (stays true through later faults).
  bool synced() const noexcept;
  // Why not synced yet ("" if synced): the first collection still waiting and its last error.
  std::string problem() const;
  const std::string& server() const noexcept { return opts_.target.server; }

  // --state-file: the model, for one reader on the thread pool. While a hold is out the model
  // is frozen exactly as during a full build (updates queue up; queries are not affected);
  // releaseModel(), on the loop, applies what queued. One releaseModel() per holdModel().
  std::shared_ptr<const cluster::ClusterModel> holdModel() noexcept;
  void releaseModel() noexcept;

  struct Watch;  // one collection's list+watch state (api_source.cc)

 private:
  struct PageJob;
  struct BuildJob;
  friend struct Watch;

  void addWatch(Resource r, const std::string& ns, std::string labelSelector, const char* role);
  void decodePage(Watch& w, std::string body);  // on the thread pool; back in Watch::onPage
  void fallBackToEndpoints(Watch& w);           // 404 on EndpointSlices
  void registerMetrics();
  // Model updates. While a full build runs they are queued and applied when it ends.
  void apply(Watch& w, ApiObject&& obj, bool deleted, double arrival_s);
  void applyNow(Watch& w, ApiObject& obj, bool deleted, double arrival_s);
  void removeStale(Watch& w);  // after a (re)list: what the new list no longer has
  void applyPod(Watch& w, const ApiObject& obj, bool deleted);  // --autopath; never frozen
  void publishPods();
  void markDirty(const std::string& serviceKey, double trigger_s, double arrival_s);
  void schedulePublish() noexcept;
  void publish() noexcept;
  void startFullBuild() noexcept;
  void finishFullBuild(std::shared_ptr<const cluster::Snapshot> snap, double elapsed_ms) noexcept;
  void checkSynced() noexcept;
  bool frozen() const noexcept { return building_ || holds_ > 0; }  // a thread-pool job reads model_
  void thaw() noexcept;  // the last reader is done: apply the updates held meanwhile
  double now_s() const noexcept;  // wall clock (trigger-time annotations are wall clock)

  uv_loop_t* loop_;
  ApiSourceOptions opts_;
  metrics::Registry& registry_;
  OnSnapshot onSnapshot_;
  TokenFile token_;
  std::mt19937_64 rng_;
  // shared: a build job on the thread pool keeps it alive even if the source is destroyed.
  std::shared_ptr<cluster::ClusterModel> model_ = std::make_shared<cluster::ClusterModel>();
  // v1 Endpoints → the slice keys made from it (decodeEndpointsObject makes several).
  std::unordered_map<std::string, std::vector<std::string>> endpointsSlices_;
  // Dirty services: earliest slice trigger time and earliest arrival in this batch.
  struct Dirty {
    double trigger_s = 0, arrival_s = 0;
  };
  std::map<std::string, Dirty> dirty_;
  std::shared_ptr<const cluster::Snapshot> current_;
  std::map<std::string, PodInfo> pods_;  // --autopath: "ns/name" → this node's pod
  OnPods onPods_;
  bool allSynced_ = false, building_ = false, rebuildAll_ = false, closed_ = false;
  size_t holds_ = 0;  // holdModel() readers (the --state-file writer)
  std::vector<std::function<void()>> frozenOps_;  // model updates held during a full build
  std::shared_ptr<std::map<std::string, Dirty>> coveredByBuild_;  // the changes a build publishes
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  metrics::Histogram* programmingLatency_ = nullptr;
  metrics::Histogram* publishLatency_ = nullptr;
  metrics::Counter* fullBuilds_ = nullptr;
  metrics::Counter* incrementalBuilds_ = nullptr;
  // Declared after the state their callbacks touch, before nothing that outlives them: the
  // watches (and their transfers) go first, then the multi.
  std::unique_ptr<uvx::CurlMulti> multi_;
  uvx::UvPtr<uv_timer_t> publishTimer_;
  std::vector<std::unique_ptr<Watch>> watches_;
};

}  // namespace hdnsd::kube
