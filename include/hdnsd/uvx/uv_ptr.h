// RAII for libuv handles. A handle whose *_init succeeded may only be freed in its close
// callback, so the deleter calls uv_close and frees the memory there. A handle whose init
// failed was never registered with the loop: release() it and delete it plainly.
// Every handle lives on the loop thread that created it.
#pragma once

#include <uv.h>

#include <memory>

namespace hdnsd::uvx {

template <class H>
struct UvCloser {
  void operator()(H* h) const noexcept {
    h->data = nullptr;  // a late callback must not reach a dead owner
    uv_close(reinterpret_cast<uv_handle_t*>(h),
             [](uv_handle_t* p) { delete reinterpret_cast<H*>(p); });
  }
};

template <class H>
using UvPtr = std::unique_ptr<H, UvCloser<H>>;

// Allocates and initialises a handle with `init(loop, h, args...)`. Returns an empty pointer
// (and the libuv error in *err) when init fails; nothing is then owed to the loop.
template <class H, class Init, class... Args>
UvPtr<H> makeHandle(uv_loop_t* loop, int* err, Init init, Args... args) {
  auto* h = new H{};
  int rc = init(loop, h, args...);
  if (rc != 0) {
    delete h;
    if (err) *err = rc;
    return UvPtr<H>();
  }
  if (err) *err = 0;
  return UvPtr<H>(h);
}

}  // namespace hdnsd::uvx
