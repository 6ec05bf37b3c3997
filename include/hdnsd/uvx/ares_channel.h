// One c-ares 1.18 channel driven by the libuv loop: c-ares' socket-state callback starts and
// stops one uv_poll per socket; one uv_timer fires at ares_timeout(); both call ares_process_fd.
// Loop thread only.
//
// Traps handled here (STYLE.md §3):
//  - ares_destroy runs every pending query's callback with ARES_EDESTRUCTION and the
//    socket-state callback, synchronously. The destructor calls it FIRST, while the pollers and
//    the timer still exist, and callers must keep the callbacks' targets alive until then.
//  - c-ares closes a socket right after reporting it (fd, 0, 0): the poller is stopped at once
//    (uv_poll_stop) and closed through UvPtr, never polled after the fd is gone.
//  - ares_send may run its callback before it returns (no servers, out of memory).
//  - A channel is never destroyed inside one of its callbacks: the owner rebuilds it later.
#pragma once

#include <ares.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hdnsd/util/result.h"
#include "hdnsd/util/sock_addr.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::uvx {

// ares_library_init once per process (c-ares 1.18 wants it before the first channel).
Result<void, std::string> aresLibraryInit();

class AresChannel {
 public:
  struct Options {
    std::vector<SockAddr> servers;
    bool tcp = false;           // ARES_FLAG_USEVC: every query over TCP
    uint32_t timeout_ms = 2000; // first try; c-ares 1.18 doubles it per round
    uint32_t tries = 2;
  };

  explicit AresChannel(uv_loop_t* loop) noexcept : loop_(loop) {}
  ~AresChannel();
  AresChannel(const AresChannel&) = delete;
  AresChannel& operator=(const AresChannel&) = delete;

  Result<void, std::string> init(const Options& o);
  bool ok() const noexcept { return channel_ != nullptr; }

  // Sends the raw query (c-ares copies it). The callback gets the answer bytes or a status.
  void send(const uint8_t* query, size_t len, ares_callback cb, void* arg) noexcept;

  // ares_destroy (callbacks with ARES_EDESTRUCTION run inside), then pollers and timer close.
  void destroy() noexcept;

  size_t openSockets() const noexcept { return pollers_.size(); }

 private:
  struct Poller {
    ares_socket_t fd;
    UvPtr<uv_poll_t> poll;
  };
  static void onSockStateCb(void* data, ares_socket_t fd, int readable, int writable) noexcept;
  static void onPollCb(uv_poll_t* p, int status, int events) noexcept;
  static void onTimerCb(uv_timer_t* t) noexcept;
  void onSockState(ares_socket_t fd, bool readable, bool writable) noexcept;
  void rearmTimer() noexcept;

  uv_loop_t* loop_;
  std::vector<Poller> pollers_;   // a handful: one per upstream server socket
  UvPtr<uv_timer_t> timer_;
  ares_channel channel_ = nullptr;  // declared last: destroyed first (explicitly, in ~AresChannel)
};

}  // namespace hdnsd::uvx
