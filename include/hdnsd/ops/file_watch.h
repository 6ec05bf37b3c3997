// Watches one file for changes the way kube/endpoints_file.h does: inotify (uv_fs_event) on
// its directory, so editors' write-and-rename and ConfigMap ..data symlink swaps are seen;
// events are debounced, then the file's bytes are compared with the last seen ones and the
// callback runs only when they differ (a neighbour file changing does nothing). Used for
// --config: a change reloads like SIGHUP. Loop thread only; control path.
#pragma once

#include <functional>
#include <string>

#include "hdnsd/util/result.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::ops {

class FileWatch {
 public:
  FileWatch(uv_loop_t* loop, std::string path, std::function<void()> onChange);
  ~FileWatch() = default;

  Result<void, std::string> start();  // remembers the current bytes
  void close() noexcept;
  // Re-reads the file now (after a SIGHUP) so the same bytes do not trigger a second reload.
  void resync() noexcept;

  static constexpr uint64_t kDebounce_ms = 50;

 private:
  void check() noexcept;

  uv_loop_t* loop_;
  std::string path_, dir_;
  std::function<void()> onChange_;
  size_t hash_ = 0;
  bool exists_ = false;
  uvx::UvPtr<uv_fs_event_t> watch_;
  uvx::UvPtr<uv_timer_t> debounce_;
};

}  // namespace hdnsd::ops
