// SO_REUSEPORT on a libuv socket handle, so that a second hdnsd (same user) can bind the same
// address beside this one during a restart or a DaemonSet surge, and the kernel spreads new
// traffic between them. libuv 1.44 has no flag for it: the handle must already own its socket
// (uv_udp_init_ex / uv_tcp_init_ex with an address family) and not be bound yet.
#pragma once

#include <sys/socket.h>
#include <uv.h>

namespace hdnsd::uvx {

inline void enableReusePort(uv_handle_t* h) noexcept {
  uv_os_fd_t fd = -1;
  int one = 1;
  if (uv_fileno(h, &fd) == 0) (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
}

}  // namespace hdnsd::uvx
