#include "hdnsd/kube/endpoints_file.h"

#include <malloc.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "hdnsd/kube/decode.h"
#include "hdnsd/util/log.h"

namespace hdnsd::kube {

// One load on the thread pool. Inputs are copied in; the result is read back on the loop.
struct EndpointsFile::Job {
  uv_work_t req{};
  EndpointsFile* owner;
  std::shared_ptr<bool> alive;
  std::string path;
  cluster::ViewOptions opts;
  size_t lastHash;
  bool compareHash;
  // results
  bool unchanged = false;
  size_t hash = 0;
  std::shared_ptr<const cluster::Snapshot> snapshot;
  std::string error;
  double elapsed_ms = 0;
};

EndpointsFile::EndpointsFile(uv_loop_t* loop, std::string path, cluster::ViewOptions opts, OnSnapshot onSnapshot)
    : loop_(loop), path_(std::move(path)), opts_(std::move(opts)), onSnapshot_(std::move(onSnapshot)) {
  size_t slash = path_.rfind('/');
  dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
}

EndpointsFile::~EndpointsFile() { close(); }

Result<void, std::string> EndpointsFile::start() {
  int err = 0;
  debounce_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  watch_ = uvx::makeHandle<uv_fs_event_t>(loop_, &err, uv_fs_event_init);
  if (!debounce_ || !watch_) return Unexpected{std::string("endpoints file: ") + uv_strerror(err)};
  debounce_->data = this;
  watch_->data = this;
  if ((err = uv_fs_event_start(watch_.get(), onFsEventCb, dir_.c_str(), 0)) != 0)
    return Unexpected{"--endpoints-file " + path_ + ": cannot watch directory " + dir_ + ": " + uv_strerror(err)};
  startJob();
  return {};
}

void EndpointsFile::close() noexcept {
  *alive_ = false;
  if (watch_) uv_fs_event_stop(watch_.get());
  watch_.reset();
  debounce_.reset();
}

void EndpointsFile::reload(cluster::ViewOptions opts) {
  opts_ = std::move(opts);
  force_ = true;
  if (jobRunning_) {
    jobAgain_ = true;
    return;
  }
  startJob();
}

void EndpointsFile::onFsEventCb(uv_fs_event_t* h, const char*, int, int status) noexcept {
  auto* self = static_cast<EndpointsFile*>(h->data);
  if (!self) return;
  if (status < 0) {
    LOG_WARN("endpoints file: watch error on %s: %s", self->dir_.c_str(), uv_strerror(status));
    return;
  }
  // Any change in the directory may be ours (renames, symlink swaps): the content hash decides.
  self->schedule();
}

void EndpointsFile::schedule() noexcept {
  // Editors and `kubectl ... > file` write in bursts: wait for the burst to end.
  uv_timer_start(
      debounce_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<EndpointsFile*>(t->data);
        if (!self) return;
        if (self->jobRunning_) self->jobAgain_ = true;
        else self->startJob();
      },
      kDebounce_ms, 0);
}

void EndpointsFile::startJob() noexcept {
  auto* job = new Job{};
  job->req.data = job;
  job->owner = this;
  job->alive = alive_;
  job->path = path_;
  job->opts = opts_;
  job->lastHash = lastHash_;
  job->compareHash = haveHash_ && !force_;
  force_ = false;
  jobRunning_ = true;
  int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        // Thread pool: read, decode, compile. Nothing here touches the loop or the owner.
        auto* j = static_cast<Job*>(req->data);
        auto t0 = std::chrono::steady_clock::now();
        try {
          std::ifstream in(j->path, std::ios::binary);
          if (!in) {
            j->error = "cannot read the file (missing or unreadable)";
            return;
          }
          std::ostringstream ss;
          ss << in.rdbuf();
          std::string text = ss.str();
          j->hash = std::hash<std::string>{}(text);
          if (j->compareHash && j->hash == j->lastHash) {
            j->unchanged = true;
            return;
          }
          auto model = decodeList(text);
          if (!model) {
            j->error = model.error();
            return;
          }
          j->snapshot = cluster::Snapshot::build(*model, j->opts);
          model = Unexpected{std::string()};  // free the model before trimming
          malloc_trim(0);  // return the parse's freed pages to the kernel (off the loop)
        } catch (const std::exception& e) {
          j->error = e.what();
        }
        j->elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<Job> j(static_cast<Job*>(req->data));
        if (*j->alive) j->owner->finishJob(*j);
      });
  if (rc != 0) {
    delete job;
    jobRunning_ = false;
    LOG_ERROR("endpoints file: cannot queue a load: %s", uv_strerror(rc));
  }
}

void EndpointsFile::finishJob(Job& job) noexcept {
  jobRunning_ = false;
  if (!job.unchanged) {
    if (job.snapshot) {
      lastHash_ = job.hash;
      haveHash_ = true;
      lastError_.clear();
      ++loads_;
      bool first = !loaded_;
      loaded_ = true;
      LOG_INFO("endpoints file: %s %s: %zu services, %zu endpoints (%zu objects skipped) in %.1f ms",
               first ? "loaded" : "reloaded", path_.c_str(), job.snapshot->serviceCount(),
               job.snapshot->endpointCount(), job.snapshot->skippedObjects(), job.elapsed_ms);
      onSnapshot_(std::move(job.snapshot));
    } else if (job.error != lastError_ || job.hash != lastFailedHash_) {
      // Log a given failure once, not on every unrelated event in the directory.
      ++failures_;
      lastError_ = job.error;
      lastFailedHash_ = job.hash;
      LOG_ERROR("endpoints file: %s: %s; %s", path_.c_str(), job.error.c_str(),
                loaded_ ? "still serving the last good view" : "no view yet, cluster names get SERVFAIL");
    }
  }
  if (jobAgain_) {
    jobAgain_ = false;
    startJob();
  }
}

}  // namespace hdnsd::kube
