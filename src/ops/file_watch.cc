#include "hdnsd/ops/file_watch.h"

#include <fstream>
#include <sstream>

#include "hdnsd/util/log.h"

namespace hdnsd::ops {
namespace {
bool readHash(const std::string& path, size_t* hash) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *hash = std::hash<std::string>{}(ss.str());
  return true;
}
}  // namespace

FileWatch::FileWatch(uv_loop_t* loop, std::string path, std::function<void()> onChange)
    : loop_(loop), path_(std::move(path)), onChange_(std::move(onChange)) {
  auto slash = path_.rfind('/');
  dir_ = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
}

Result<void, std::string> FileWatch::start() {
  int err = 0;
  exists_ = readHash(path_, &hash_);
  debounce_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (!debounce_) return Unexpected{std::string("uv_timer_init: ") + uv_strerror(err)};
  debounce_->data = this;
  watch_ = uvx::makeHandle<uv_fs_event_t>(loop_, &err, uv_fs_event_init);
  if (!watch_) return Unexpected{std::string("uv_fs_event_init: ") + uv_strerror(err)};
  watch_->data = this;
  err = uv_fs_event_start(
      watch_.get(),
      [](uv_fs_event_t* h, const char*, int, int status) {
        auto* self = static_cast<FileWatch*>(h->data);
        if (!self || status < 0 || !self->debounce_) return;
        uv_timer_start(
            self->debounce_.get(),
            [](uv_timer_t* t) {
              if (auto* s = static_cast<FileWatch*>(t->data)) s->check();
            },
            kDebounce_ms, 0);
      },
      dir_.c_str(), 0);
  if (err != 0) {
    watch_.reset();
    return Unexpected{"cannot watch directory " + dir_ + " of " + path_ + ": " + uv_strerror(err) +
                      " (changes are then applied on SIGHUP only)"};
  }
  return {};
}

void FileWatch::close() noexcept {
  if (watch_) uv_fs_event_stop(watch_.get());
  watch_.reset();
  debounce_.reset();
}

void FileWatch::resync() noexcept { exists_ = readHash(path_, &hash_); }

void FileWatch::check() noexcept {
  size_t h = 0;
  bool exists = readHash(path_, &h);
  if (!exists) {
    exists_ = false;  // a rename in progress, or deleted: wait for it to come back
    return;
  }
  if (exists_ && h == hash_) return;
  exists_ = true;
  hash_ = h;
  LOG_INFO("config: %s changed: reloading", path_.c_str());
  if (onChange_) onChange_();
}

}  // namespace hdnsd::ops
