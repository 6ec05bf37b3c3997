// --state-file on the loop: the periodic and final writes, and the load at start. See
// include/hdnsd/ops/state_file.h.
#include "hdnsd/ops/state_file.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>

#include "hdnsd/util/log.h"

namespace hdnsd::ops {
namespace {

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Same view object (a weak_ptr keeps its control block, so a later view cannot share it).
bool sameView(const std::shared_ptr<const cluster::Snapshot>& cur, const std::weak_ptr<const cluster::Snapshot>& saved) {
  return !saved.owner_before(cur) && !cur.owner_before(saved);
}

}  // namespace

struct StateFile::WriteJob {
  uv_work_t req{};
  StateFile* owner = nullptr;
  std::shared_ptr<bool> alive;
  bool final = false;
  std::string path;
  // inputs
  StateHeader header;
  std::shared_ptr<const cluster::ClusterModel> model;  // held: ApiSource::releaseModel after encode
  std::vector<SavedAnswer> answers;
  std::weak_ptr<const cluster::Snapshot> view;  // what this write covers
  uint64_t cacheChanges = 0;
  size_t services = 0, slices = 0, answerCount = 0;
  // results
  std::string text;
  std::string error;
  size_t bytes = 0;
  double collect_ms = 0, encode_ms = 0, write_ms = 0;
};

struct StateFile::LoadJob {
  uv_work_t req{};
  StateFile* owner = nullptr;
  std::shared_ptr<bool> alive;
  std::string path, zone;
  bool wantCluster = false;
  cluster::ViewOptions view;
  uint64_t nowUnixMs = 0;
  uint32_t maxAge_s = 0;
  // results
  bool missing = false;
  std::string error;
  DecodedState state;
  std::shared_ptr<const cluster::Snapshot> snapshot;  // compiled saved view (when servable)
  size_t services = 0, slices = 0;
  bool tooOld = false;
  double elapsed_ms = 0;
};

StateFile::StateFile(uv_loop_t* loop, StateFileOptions opts, StateSources sources, metrics::Registry& reg)
    : loop_(loop), opts_(std::move(opts)), src_(std::move(sources)) {
  writes_ = &reg.counter("hdnsd_state_writes_total", "--state-file writes that completed (renamed into place).");
  failures_ = &reg.counter("hdnsd_state_write_failures_total",
                           "--state-file writes that failed (the previous file is kept).");
  bytes_ = &reg.counter("hdnsd_state_written_bytes_total", "Bytes of --state-file written.");
  lastWrite_ = &reg.gauge("hdnsd_state_last_write_timestamp_seconds",
                          "Wall-clock time of the last completed --state-file write (0: none yet).");
  const char* loadedHelp = "Objects read back from --state-file at start, by kind (cache_entries: restored into the cache).";
  loadedServices_ = &reg.counter("hdnsd_state_loaded_total", loadedHelp, {{"kind", "services"}});
  loadedSlices_ = &reg.counter("hdnsd_state_loaded_total", loadedHelp, {{"kind", "slices"}});
  loadedAnswers_ = &reg.counter("hdnsd_state_loaded_total", loadedHelp, {{"kind", "cache_entries"}});
  reg.addCollector([this, alive = alive_](std::vector<metrics::FamilyData>& out) {
    if (!*alive) return;
    out.push_back(metrics::FamilyData{"hdnsd_view_stale",
                                      "1 while the cluster view served is the one saved in --state-file "
                                      "(the Kubernetes API has not synced yet).",
                                      metrics::Type::kGauge, {}}
                      .add({}, servingStale() ? 1 : 0));
  });
}

StateFile::~StateFile() { *alive_ = false; }

uint64_t StateFile::nowUnixMs() const noexcept {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

uint64_t StateFile::cacheChanges() const noexcept {
  if (src_.cache == nullptr) return 0;
  // Every store and every removal moves one of these; hits do not (they only reorder).
  const cache::Stats& s = src_.cache->stats();
  uint64_t n = 0;
  for (size_t o = 0; o < size_t(cache::InsertOutcome::kCount); ++o)
    if (cache::stored(cache::InsertOutcome(o))) n += s.inserts[o].load(std::memory_order_relaxed);
  for (const auto& e : s.evictions) n += e.load(std::memory_order_relaxed);
  return n;
}

bool StateFile::servingStale() const {
  auto stale = staleView_.lock();
  return stale && src_.currentView && stale == src_.currentView();
}

// ---- load ------------------------------------------------------------------------------------

void StateFile::start() {
  if (opts_.interval_s > 0) {
    int err = 0;
    timer_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
    if (timer_) {
      timer_->data = this;
      const uint64_t ms = uint64_t(opts_.interval_s) * 1000;
      uv_timer_start(
          timer_.get(),
          [](uv_timer_t* t) {
            if (auto* self = static_cast<StateFile*>(t->data)) self->startWrite(false);
          },
          ms, ms);
      uv_unref(reinterpret_cast<uv_handle_t*>(timer_.get()));  // must not hold the loop open
    }
  }
  auto* job = new LoadJob{};
  job->req.data = job;
  job->owner = this;
  job->alive = alive_;
  job->path = opts_.path;
  job->zone = opts_.zone;
  job->wantCluster = src_.api != nullptr;
  job->view = src_.view;
  job->view.ttl_s = std::min(job->view.ttl_s, kStaleViewTtl_s);
  job->nowUnixMs = nowUnixMs();
  job->maxAge_s = opts_.maxAge_s;
  const int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        // Thread pool: read, check, decode, compile. Nothing here touches the loop or the owner.
        auto* j = static_cast<LoadJob*>(req->data);
        const auto t0 = std::chrono::steady_clock::now();
        try {
          auto text = readStateFile(j->path);
          if (!text) {
            j->error = text.error();
            return;
          }
          if (!*text) {
            j->missing = true;
            return;
          }
          auto st = decodeState(**text, j->zone, j->wantCluster);
          text = std::optional<std::string>();
          if (!st) {
            j->error = st.error();
            return;
          }
          j->state = std::move(*st);
          const uint64_t age_ms = j->nowUnixMs > j->state.header.writtenAtUnixMs
                                      ? j->nowUnixMs - j->state.header.writtenAtUnixMs : 0;
          if (j->state.model) {
            j->services = j->state.model->services.size();
            j->slices = j->state.model->slices().size();
            j->tooOld = age_ms >= uint64_t(j->maxAge_s) * 1000;
            if (!j->tooOld) j->snapshot = cluster::Snapshot::build(*j->state.model, j->view);
            j->state.model.reset();
          }
          malloc_trim(0);  // the parse's freed pages back to the kernel (off the loop)
        } catch (const std::exception& e) {
          j->error = e.what();
        }
        j->elapsed_ms = msSince(t0);
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<LoadJob> j(static_cast<LoadJob*>(req->data));
        if (*j->alive) j->owner->loadDone(*j);
      });
  if (rc != 0) {
    delete job;
    LOG_WARN("state file: cannot queue the load of %s: %s; starting cold", opts_.path.c_str(), uv_strerror(rc));
    loaded_ = true;
  }
}

void StateFile::loadDone(LoadJob& job) noexcept {
  loaded_ = true;
  if (job.missing) {
    LOG_INFO("state file: %s does not exist yet: cold start", opts_.path.c_str());
  } else if (!job.error.empty()) {
    LOG_WARN("state file: %s: %s; ignoring it, cold start", opts_.path.c_str(), job.error.c_str());
  } else {
    const StateHeader& h = job.state.header;
    const uint64_t now = nowUnixMs();
    const double age_s = now > h.writtenAtUnixMs ? double(now - h.writtenAtUnixMs) / 1000 : 0;
    const size_t restored = src_.cache ? restoreAnswers(*src_.cache, job.state.cache, now, uv_now(loop_)) : 0;
    const size_t saved = job.state.cache.size();
    if (src_.restoreElsewhere && saved > 0)
      src_.restoreElsewhere(std::make_shared<const std::vector<SavedAnswer>>(std::move(job.state.cache)));
    std::string note;
    if (job.snapshot && !final_ && src_.currentView && !src_.currentView() && src_.serveStale) {
      src_.serveStale(job.snapshot);
      staleView_ = job.snapshot;
      note = "; serving the saved view (TTL " + std::to_string(job.snapshot->ttl()) + " s) until the API syncs";
    } else if (job.tooOld) {
      note = "; the saved view is older than --max-stale " + std::to_string(opts_.maxAge_s) + " s: not served";
    } else if (job.snapshot) {
      note = "; the API's view came first: saved view not served";
    } else if (h.cluster && src_.api == nullptr) {
      note = "; its cluster view is not used (the source is not the Kubernetes API)";
    }
    LOG_INFO("state file: loaded %zu services, %zu slices, %zu cache entries (of %zu), age %.0f s, written by hdnsd %s "
             "in %.1f ms%s",
             job.services, job.slices, restored, saved, age_s, h.version.c_str(), job.elapsed_ms,
             note.c_str());
    loadedServices_->inc(job.services);
    loadedSlices_->inc(job.slices);
    loadedAnswers_->inc(restored);
    // The file on disk holds this: nothing to write until something changes.
    savedOnce_ = true;
    if (src_.currentView) savedView_ = src_.currentView();
  }
  savedCacheChanges_ = cacheChanges();
  if (finalPending_) {
    finalPending_ = false;
    startWrite(true);
  }
}

// ---- write -----------------------------------------------------------------------------------

void StateFile::writeFinal() noexcept {
  timer_.reset();
  startWrite(true);
}

void StateFile::startWrite(bool final) noexcept {
  if (final) final_ = true;
  if (writing_ || !loaded_) {
    if (final) finalPending_ = true;  // after the write in flight (or the load)
    return;
  }
  if (src_.api != nullptr && !src_.api->synced()) {
    // The model is empty or half-listed: writing it would replace the saved view with less.
    if (final) LOG_INFO("state file: not written: the Kubernetes API has not synced since start; %s is kept",
                        opts_.path.c_str());
    return;
  }
  std::shared_ptr<const cluster::Snapshot> view = src_.currentView ? src_.currentView() : nullptr;
  const uint64_t changes = cacheChanges();
  const bool viewChanged = src_.api != nullptr && !sameView(view, savedView_);
  if (savedOnce_ && !viewChanged && changes == savedCacheChanges_) {
    if (final) LOG_INFO("state file: %s is up to date (nothing changed since the last write)", opts_.path.c_str());
    else LOG_DEBUG("state file: nothing changed since the last write");
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto job = std::make_unique<WriteJob>();
  job->req.data = job.get();
  job->owner = this;
  job->alive = alive_;
  job->final = final;
  job->path = opts_.path;
  job->view = view;
  job->cacheChanges = changes;
  job->header.version = opts_.version;
  job->header.zone = opts_.zone;
  job->header.writtenAtUnixMs = nowUnixMs();
  job->header.source = src_.source;
  job->header.cluster = src_.api != nullptr;
  if (src_.api != nullptr) {
    job->model = src_.api->holdModel();
    job->services = job->model->services.size();
    job->slices = job->model->slices().size();
  }
  if (src_.cache != nullptr) {
    // Copied here (the cache belongs to the loop); ~1 ms for 10,000 answers.
    const uint64_t mono = uv_now(loop_);
    const uint64_t wall = job->header.writtenAtUnixMs;
    job->answers.reserve(std::min(opts_.maxAnswers, src_.cache->entries()));
    src_.cache->forEachHottest(opts_.maxAnswers, mono, [&](const cache::EntryView& e) {
      SavedAnswer a;
      a.message.assign(e.message.begin(), e.message.end());
      a.dnssecOk = e.dnssecOk;
      a.ttl_s = e.ttl_s;
      const uint64_t age = mono > e.insertedMs ? mono - e.insertedMs : 0;
      a.expiresAtUnixMs = (wall > age ? wall - age : 0) + uint64_t(e.ttl_s) * 1000;
      job->answers.push_back(std::move(a));
    });
  }
  job->answerCount = job->answers.size();
  job->collect_ms = msSince(t0);
  writing_ = true;
  const int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<WriteJob*>(req->data);
        const auto t = std::chrono::steady_clock::now();
        try {
          j->text = encodeState(j->header, j->model.get(), j->answers);
        } catch (const std::exception& e) {
          j->error = std::string("encoding: ") + e.what();
        }
        j->encode_ms = msSince(t);
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<WriteJob> j(static_cast<WriteJob*>(req->data));
        if (*j->alive) j->owner->encodeDone(std::move(j));
      });
  if (rc != 0) {
    if (job->model) src_.api->releaseModel();
    writing_ = false;
    LOG_WARN("state file: cannot queue a write: %s", uv_strerror(rc));
    return;
  }
  job.release();  // owned by the request until its callback
}

void StateFile::encodeDone(std::unique_ptr<WriteJob> job) noexcept {
  if (job->model) {
    job->model.reset();
    src_.api->releaseModel();  // watch events held during the encode apply now
  }
  job->answers.clear();
  if (job->error.empty()) {
    const int rc = uv_queue_work(
        loop_, &job->req,
        [](uv_work_t* req) {
          auto* j = static_cast<WriteJob*>(req->data);
          const auto t = std::chrono::steady_clock::now();
          j->bytes = j->text.size();
          if (auto r = writeFileAtomically(j->path, j->text); !r) j->error = r.error();
          j->text.clear();
          j->text.shrink_to_fit();
          j->write_ms = msSince(t);
        },
        [](uv_work_t* req, int) {
          std::unique_ptr<WriteJob> j(static_cast<WriteJob*>(req->data));
          if (*j->alive) j->owner->writeDone(std::move(j));
        });
    if (rc == 0) {
      job.release();
      return;
    }
    job->error = std::string("cannot queue the write: ") + uv_strerror(rc);
  }
  writeDone(std::move(job));
}

void StateFile::writeDone(std::unique_ptr<WriteJob> job) noexcept {
  writing_ = false;
  if (job->error.empty()) {
    writes_->inc();
    bytes_->inc(job->bytes);
    lastWrite_->set(double(job->header.writtenAtUnixMs) / 1000);
    savedView_ = job->view;
    savedCacheChanges_ = job->cacheChanges;
    savedOnce_ = true;
    if (!lastError_.empty()) LOG_INFO("state file: %s written again", opts_.path.c_str());
    lastError_.clear();
    if (job->final)
      LOG_INFO("state file: wrote %s: %zu services, %zu slices, %zu cache entries, %zu bytes "
               "(copy %.1f ms on the loop, encode %.1f ms, write %.1f ms)",
               opts_.path.c_str(), job->services, job->slices, job->answerCount,
               job->bytes, job->collect_ms, job->encode_ms, job->write_ms);
    else
      LOG_DEBUG("state file: wrote %s: %zu bytes (copy %.1f ms on the loop, encode %.1f ms, write %.1f ms)",
                opts_.path.c_str(), job->bytes, job->collect_ms, job->encode_ms, job->write_ms);
  } else {
    failures_->inc();
    if (job->error != lastError_)
      LOG_WARN("state file: %s; the previous file is kept (retried at the next interval)", job->error.c_str());
    lastError_ = job->error;
  }
  if (finalPending_) {
    finalPending_ = false;
    startWrite(true);
  }
}

}  // namespace hdnsd::ops
