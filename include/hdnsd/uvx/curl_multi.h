// libcurl's multi interface on the libuv loop: curl_multi_socket_action driven by one uv_poll_t
// per socket curl asks about and one uv_timer_t for curl's timeout (the "multi_socket" API, see
// curl's docs/examples/multi-uv.c). No extra thread; curl never blocks the loop (its resolver
// is the threaded one, which signals completion through a socket curl also hands us).
//
// Ownership (curl 7.88):
// - CURL_STRICTER makes CURL and CURLM distinct types; every handle is held in a unique_ptr
//   (EasyPtr, MultiPtr) whose deleter calls the matching cleanup.
// - A CurlTransfer owns its easy handle, its header list and its callbacks. It must be removed
//   from the multi before its easy handle is cleaned up: ~CurlTransfer does that through the
//   multi it was added to (curl forbids removing from inside curl callbacks, so never destroy a
//   transfer from its own write callback: return false from onData to abort it instead).
// - A poller is stopped (uv_poll_stop) at once when curl says CURL_POLL_REMOVE, and its handle is
//   closed right after (freed in the close callback, see uv_ptr.h); curl may close the fd next.
// - close(): cancels every transfer (no onDone), curl_multi_cleanup (whose socket callback may
//   still fire: it is still wired), then the timer and pollers. Loop thread only.
#pragma once

#ifndef CURL_STRICTER
#define CURL_STRICTER
#endif
#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hdnsd/util/result.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::uvx {

struct EasyDeleter {
  void operator()(CURL* e) const noexcept { curl_easy_cleanup(e); }
};
struct MultiDeleter {
  void operator()(CURLM* m) const noexcept { curl_multi_cleanup(m); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

class CurlMulti;

// One HTTP GET. Fill the options, then CurlMulti::add(). Callbacks run on the loop thread:
//   onStatus(code, headers done)   once the response head is complete (every redirect-free
//                                  response has one); Retry-After is parsed by then
//   onData(bytes) -> bool          body bytes as they arrive; false aborts the transfer
//   onDone(CURLcode)               the transfer ended (CURLE_OK: body complete); the transfer
//                                  may be destroyed from here
class CurlTransfer {
 public:
  struct Options {
    std::string url;
    std::string caFile;                 // CURLOPT_CAINFO; peer and host are always verified
    std::vector<std::string> headers;   // "Name: value"
    long connectTimeout_ms = 10'000;
    long timeout_ms = 0;                // whole transfer; 0: none
    bool http2 = true;                  // CURL_HTTP_VERSION_2TLS: h2 over TLS when offered
  };
  std::function<void(long status)> onStatus;
  std::function<bool(std::string_view bytes)> onData;
  std::function<void(CURLcode code, const char* message)> onDone;

  CurlTransfer() = default;
  ~CurlTransfer();
  CurlTransfer(const CurlTransfer&) = delete;
  CurlTransfer& operator=(const CurlTransfer&) = delete;

  // Creates and configures the easy handle. Fails only if curl cannot allocate or an option
  // is refused (e.g. HTTP/2 unsupported is not a failure: curl falls back to HTTP/1.1).
  Result<void, std::string> prepare(const Options& opts);

  long status() const noexcept { return status_; }
  // Seconds from a Retry-After header (delta-seconds form only), or -1.
  long retryAfter_s() const noexcept { return retryAfter_s_; }
  // "HTTP/2" or "HTTP/1.1" once the head arrived.
  const char* httpVersion() const noexcept;
  CURL* easy() const noexcept { return easy_.get(); }

 private:
  friend class CurlMulti;
  static size_t onWriteCb(char* p, size_t size, size_t n, void* self) noexcept;
  static size_t onHeaderCb(char* p, size_t size, size_t n, void* self) noexcept;

  EasyPtr easy_;
  SlistPtr headers_;
  char errbuf_[CURL_ERROR_SIZE] = {};
  long status_ = 0;
  long retryAfter_s_ = -1;
  bool headDone_ = false;
  CurlMulti* multi_ = nullptr;  // set while added
};

class CurlMulti {
 public:
  explicit CurlMulti(uv_loop_t* loop);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  Result<void, std::string> init();
  // Starts a prepared transfer. The caller keeps ownership and must keep it alive until onDone
  // or until it destroys it (which removes it).
  Result<void, std::string> add(CurlTransfer& t);
  void remove(CurlTransfer& t) noexcept;
  void close() noexcept;

  size_t active() const noexcept { return transfers_.size(); }

 private:
  struct Poller {
    UvPtr<uv_poll_t> poll;
    curl_socket_t fd;
    CurlMulti* owner;
  };
  static int onSocketCb(CURL* e, curl_socket_t fd, int what, void* self, void* socketp) noexcept;
  static int onTimerCb(CURLM* m, long timeout_ms, void* self) noexcept;
  static void onPollCb(uv_poll_t* h, int status, int events) noexcept;
  void action(curl_socket_t fd, int flags) noexcept;
  void drainDone() noexcept;

  uv_loop_t* loop_;
  // Declared so that the multi dies first (its cleanup may still call onSocketCb).
  UvPtr<uv_timer_t> timer_;
  std::unordered_map<curl_socket_t, std::unique_ptr<Poller>> pollers_;
  std::unordered_map<CURL*, CurlTransfer*> transfers_;
  MultiPtr multi_;
  bool inAction_ = false;
};

}  // namespace hdnsd::uvx
