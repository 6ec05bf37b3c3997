// --state-file: warm restart (issue 6 part 7). The last cluster view and the hottest cache entries
// are written to a file (format: ops/state_format.h) every --state-file-interval seconds when
// something changed, and once more on a clean shutdown; at start the file is read back:
//   - the cache entries are re-inserted with the age they had (expired ones only within the
//     serve-stale window, --max-stale), into this loop's cache and, through restoreElsewhere,
//     every other worker's;
//   - with the API source, the saved view is compiled and served at once as a stale view (TTL
//     min(--ttl, kStaleViewTtl_s)), so cluster names are answered instead of SERVFAIL while the
//     first sync runs or the API is down. /ready and systemd READY=1 still wait for the real
//     sync, whose view replaces the saved one completely. A view older than --max-stale is not
//     served (--max-stale 0: never).
//
// Threads: the loop thread, except the jobs on the libuv thread pool. A write is two jobs: encode
// (reads the model, held still by ApiSource::holdModel, and a copy of the cache entries made on
// the loop), then write + fsync + rename (the model already released, so watch events queue only
// for the encode). Loading (read, parse, decode, compile) is one job. The loop waits for a job in
// flight before it ends (uv_queue_work keeps it alive), so the shutdown write completes.
//
// Metrics: hdnsd_state_writes_total, hdnsd_state_write_failures_total,
// hdnsd_state_written_bytes_total, hdnsd_state_last_write_timestamp_seconds,
// hdnsd_state_loaded_total{kind="services|slices|cache_entries"}, hdnsd_view_stale.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hdnsd/cache/cache.h"
#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/kube/api_source.h"
#include "hdnsd/metrics/registry.h"
#include "hdnsd/ops/state_format.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::ops {

// TTL of answers from a saved view: its data may be out of date, so clients should come back
// soon (the first sync normally lands within a second or two), while 0 or 1 would turn every
// lookup of a caching stub (nscd, systemd-resolved, JVMs) into a query. Negative answers carry
// it too (SOA minimum), which bounds how long a service created while we were down is denied.
inline constexpr uint32_t kStaleViewTtl_s = 2;
// Cache entries saved: the hottest (Cache::forEachHottest) of this loop's cache.
inline constexpr size_t kMaxSavedAnswers = 10000;

struct StateFileOptions {
  std::string path;
  uint32_t interval_s = 60;  // 0: only on shutdown
  std::string zone;          // --cluster-domain
  std::string version;       // HDNSD_VERSION
  uint32_t maxAge_s = 86400;  // --max-stale: an older saved view is not served
  size_t maxAnswers = kMaxSavedAnswers;
};

// Where the content comes from. Set before start(); every pointer must outlive the StateFile.
struct StateSources {
  kube::ApiSource* api = nullptr;  // the cluster part (nullptr: none: --endpoints-file, no source)
  cache::Cache* cache = nullptr;   // this loop's cache: its hottest answers are saved, and restored
  // The loaded answers for the caches of other loops (--workers), restored there; optional.
  std::function<void(std::shared_ptr<const std::vector<SavedAnswer>>)> restoreElsewhere;
  std::string source;              // "kubernetes-api", "endpoints-file", "none" (the header's)
  std::function<std::shared_ptr<const cluster::Snapshot>()> currentView;  // the responder's view
  // Serves the saved view (called only while currentView() is null); `view` was compiled with
  // the stale TTL.
  std::function<void(std::shared_ptr<const cluster::Snapshot> view)> serveStale;
  cluster::ViewOptions view;  // how to compile the saved view (TTL lowered here)
};

class StateFile {
 public:
  StateFile(uv_loop_t* loop, StateFileOptions opts, StateSources sources, metrics::Registry& registry);
  ~StateFile();
  StateFile(const StateFile&) = delete;
  StateFile& operator=(const StateFile&) = delete;

  // Reads the file (thread pool), then restores it on the loop; starts the periodic writes.
  void start();
  // Shutdown: stops the timer and writes once more if anything changed (after a write in flight).
  void writeFinal() noexcept;

  // True while the responder serves the saved view (the real one has not arrived).
  bool servingStale() const;
  uint64_t writes() const noexcept { return writes_->value(); }

 private:
  struct WriteJob;
  struct LoadJob;
  void startWrite(bool final) noexcept;
  void encodeDone(std::unique_ptr<WriteJob> job) noexcept;
  void writeDone(std::unique_ptr<WriteJob> job) noexcept;
  void loadDone(LoadJob& job) noexcept;
  uint64_t cacheChanges() const noexcept;
  uint64_t nowUnixMs() const noexcept;

  uv_loop_t* loop_;
  StateFileOptions opts_;
  StateSources src_;
  bool writing_ = false, finalPending_ = false, final_ = false, loaded_ = false;
  // What the last good write covered (the view by identity: a weak_ptr cannot be confused with
  // a later view at the same address), and what the running write covers.
  std::weak_ptr<const cluster::Snapshot> savedView_;
  uint64_t savedCacheChanges_ = 0;
  bool savedOnce_ = false;
  std::weak_ptr<const cluster::Snapshot> staleView_;  // the saved view we serve, if any
  std::string lastError_;  // a repeated write failure is logged once
  metrics::Counter* writes_ = nullptr;
  metrics::Counter* failures_ = nullptr;
  metrics::Counter* bytes_ = nullptr;
  metrics::Gauge* lastWrite_ = nullptr;
  metrics::Counter* loadedServices_ = nullptr;
  metrics::Counter* loadedSlices_ = nullptr;
  metrics::Counter* loadedAnswers_ = nullptr;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // jobs outlive a destroyed owner
  uvx::UvPtr<uv_timer_t> timer_;
};

}  // namespace hdnsd::ops
