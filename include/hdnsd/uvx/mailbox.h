// One loop's inbox for values posted from other threads: the control loop hands each worker
// loop (server/worker.h) its new cluster view, pod index, settings and stop requests this way.
//
// Latest wins: post() merges into one pending value under a mutex (Mail::merge: a field set
// by a newer post replaces the unread older one, so a slow worker skips straight to the newest
// view instead of applying every one in between) and wakes the loop with uv_async_send. The
// loop's callback takes the whole pending value out under the mutex and handles it outside it.
// The data path never touches the mutex: a worker reads its own copies of what it was sent.
//
// Threads: open() and close() on the owning loop's thread (or before that loop runs, e.g. by
// the thread that will start it); post() from any thread. close() marks the mailbox closed under
// the same mutex post() sends under, so uv_async_send never meets a closing handle: a post
// after close() returns false and is dropped. The uv_async_t is freed in its close callback
// (uvx::UvPtr), so the loop must run once more after close().
#pragma once

#include <uv.h>

#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include "hdnsd/util/result.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::uvx {

// Mail: default-constructible (the empty value), movable, with `void merge(Mail&& newer)`.
template <class Mail>
class Mailbox {
 public:
  using Handler = std::function<void(Mail&&)>;

  Mailbox() = default;
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  Result<void, std::string> open(uv_loop_t* loop, Handler onMail) {
    int err = 0;
    async_ = makeHandle<uv_async_t>(loop, &err, uv_async_init, &Mailbox::onAsyncCb);
    if (!async_) return Unexpected{std::string("uv_async_init: ") + uv_strerror(err)};
    async_->data = this;
    onMail_ = std::move(onMail);
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    return {};
  }

  // Any thread. False once closed (or never opened): the mail is dropped.
  bool post(Mail&& mail) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_) return false;
    pending_.merge(std::move(mail));
    uv_async_send(async_.get());  // several sends before the loop wakes give one callback
    return true;
  }

  // The owning loop's thread. Unread mail is dropped; the handle closes on the next loop turn.
  void close() noexcept {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = false;
      pending_ = Mail{};
    }
    async_.reset();
  }

  bool isOpen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return open_;
  }

 private:
  static void onAsyncCb(uv_async_t* h) noexcept {
    if (auto* self = static_cast<Mailbox*>(h->data)) self->deliver();
  }
  void deliver() noexcept {
    Mail mail;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::swap(mail, pending_);
    }
    if (onMail_) onMail_(std::move(mail));  // may close() this mailbox
  }

  mutable std::mutex mu_;
  Mail pending_;  // guarded by mu_
  bool open_ = false;  // guarded by mu_
  Handler onMail_;
  UvPtr<uv_async_t> async_;
};

}  // namespace hdnsd::uvx
