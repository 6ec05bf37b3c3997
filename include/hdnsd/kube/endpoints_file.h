// The static cluster source: --endpoints-file, a kubectl `List` JSON of Services and
// EndpointSlices. The file's directory is watched with inotify (uv_fs_event): a watch on the
// directory survives editors and `mv` replacing the file, and ConfigMap volumes swapping their
// ..data symlink. Every event is debounced, then the file is read, decoded and compiled on the
// libuv thread pool (uv_queue_work) so a large file never stalls queries; the new Snapshot is
// handed over on the loop thread. An unchanged file is not recompiled. A bad file keeps the
// last good view and logs one line saying what is wrong and where.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/util/result.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::kube {

class EndpointsFile {
 public:
  using OnSnapshot = std::function<void(std::shared_ptr<const cluster::Snapshot>)>;

  EndpointsFile(uv_loop_t* loop, std::string path, cluster::ViewOptions opts, OnSnapshot onSnapshot);
  ~EndpointsFile();

  // Starts watching and loads the file. Fails only if the directory cannot be watched.
  Result<void, std::string> start();
  // Reloads now (SIGHUP), recompiling even if the bytes did not change when options did.
  void reload(cluster::ViewOptions opts);
  void close() noexcept;

  bool loaded() const noexcept { return loaded_; }
  // The last load error ("" after a good load): why /ready still says no.
  const std::string& lastError() const noexcept { return lastError_; }
  const std::string& path() const noexcept { return path_; }
  uint64_t loads() const noexcept { return loads_; }
  uint64_t failures() const noexcept { return failures_; }

  static constexpr uint64_t kDebounce_ms = 20;

 private:
  struct Job;
  static void onFsEventCb(uv_fs_event_t* h, const char* name, int events, int status) noexcept;
  void schedule() noexcept;
  void startJob() noexcept;
  void finishJob(Job& job) noexcept;

  uv_loop_t* loop_;
  std::string path_, dir_;
  cluster::ViewOptions opts_;
  OnSnapshot onSnapshot_;
  bool loaded_ = false;
  bool jobRunning_ = false, jobAgain_ = false, force_ = false;
  size_t lastHash_ = 0, lastFailedHash_ = 0;
  bool haveHash_ = false;
  std::string lastError_;
  uint64_t loads_ = 0, failures_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // jobs outlive a closed source
  uvx::UvPtr<uv_timer_t> debounce_;
  uvx::UvPtr<uv_fs_event_t> watch_;
};

}  // namespace hdnsd::kube
