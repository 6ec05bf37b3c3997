// systemd integration without libsystemd: the notify protocol (sd_notify(3)) and socket
// activation (sd_listen_fds(3)), both small enough to implement by hand.
//
// Notifier: when NOTIFY_SOCKET is set (Type=notify units), each call sends one datagram
// "READY=1", "STATUS=...", "RELOADING=1", "STOPPING=1" or "WATCHDOG=1" to that AF_UNIX socket
// (a path, or "@name" in the abstract namespace). Unset: every call does nothing. With
// WATCHDOG_USEC set (and WATCHDOG_PID unset or ours), startWatchdog() pings at half that
// interval from a loop timer, so a wedged loop stops the pings and systemd restarts us.
//
// ActivatedSockets: LISTEN_PID == getpid() and LISTEN_FDS = n hand us fds 3..3+n-1, already
// bound (ListenDatagram=/ListenStream= in hdnsd.socket). take(addr, type) returns the one bound
// to that address with that socket type (SOCK_DGRAM / SOCK_STREAM), once. The variables are
// unset once read, so children never see them (as sd_listen_fds(1) does).
//
// Loop thread only; control path (a few datagrams per lifetime, one per watchdog tick).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hdnsd/util/result.h"
#include "hdnsd/util/sock_addr.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::ops {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment.
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  bool enabled() const noexcept { return fd_ >= 0; }
  const std::string& socketPath() const noexcept { return path_; }
  uint64_t watchdogInterval_us() const noexcept { return watchdog_us_; }

  // Sends `state` as is ("READY=1\nSTATUS=serving"); false (and a warning once) if it failed.
  bool notify(std::string_view state) noexcept;
  void ready(std::string_view status);
  void status(std::string_view status);
  void reloading();
  void stopping();

  // WATCHDOG=1 at half of WATCHDOG_USEC from a loop timer; nothing when it is not set.
  void startWatchdog(uv_loop_t* loop);
  void stopWatchdog() noexcept { watchdog_.reset(); }

 private:
  int fd_ = -1;
  std::string path_;
  std::vector<char> addr_;  // the sockaddr_un bytes actually sent to
  uint64_t watchdog_us_ = 0;
  bool warned_ = false;
  uvx::UvPtr<uv_timer_t> watchdog_;
};

struct ActivatedSocket {
  int fd = -1;
  int type = 0;      // SOCK_DGRAM, SOCK_STREAM
  SockAddr addr;     // what it is bound to
  bool taken = false;
};

class ActivatedSockets {
 public:
  // Reads (and unsets) LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES. Not for us: empty.
  static ActivatedSockets fromEnvironment();

  bool empty() const noexcept { return sockets_.empty(); }
  size_t size() const noexcept { return sockets_.size(); }
  // The fd bound to `addr` with socket type `type`, or -1. Each fd is handed out once.
  int take(const SockAddr& addr, int type) noexcept;
  // Those nobody took (their address is not in --listen): served too, with a warning.
  std::vector<ActivatedSocket*> untaken();

 private:
  std::vector<ActivatedSocket> sockets_;
};

// Same family, address and port (IPv4-mapped or not, as given).
bool sameAddress(const SockAddr& a, const SockAddr& b) noexcept;

}  // namespace hdnsd::ops
