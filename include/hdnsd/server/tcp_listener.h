// DNS over TCP on one address (RFC 7766): 2-byte length framing, several queries pipelined on
// one connection and answered as each is ready, an idle timeout, a cap on open connections,
// and a cap on unsent answer bytes per connection (past it we stop reading that connection
// until the client reads). Loop thread only.
//
// Ownership: the listener owns its uv_tcp_t (UvPtr) and an intrusive list of connections; a
// connection owns two handles (socket, idle timer) and deletes itself once both close
// callbacks have run. Destroy the listener only after closeAll() and a loop run to idle.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "hdnsd/query/responder.h"
#include "hdnsd/util/result.h"
#include "hdnsd/util/sock_addr.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::server {

struct TcpLimits {
  uint32_t idleTimeout_ms = 10'000;
  uint32_t maxConnections = 1024;   // across all TCP listeners (counted in QueryStats)
  uint32_t maxPendingBytes = 256 * 1024;
  uint32_t maxInFlight = 128;            // queries of one connection waiting on upstream answers
  uint32_t maxPerClient = 256;           // connections from one client address (per listener)
};

class TcpConnection;

class TcpListener {
 public:
  TcpListener(uv_loop_t* loop, query::Responder& responder, query::QueryStats& stats, TcpLimits limits);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  Result<void, std::string> bind(const SockAddr& addr);  // with SO_REUSEPORT, like UdpListener
  // Serves an already-bound (listening or not) TCP socket: systemd socket activation.
  Result<void, std::string> open(int fd);
  void setLimits(TcpLimits l) noexcept { limits_ = l; }
  // Graceful stop: no new connections; open ones stop reading, flush their answers, close.
  void stopAccepting() noexcept;
  void closeAll() noexcept;  // closes every connection now
  uint16_t port() const noexcept;
  size_t connectionCount() const noexcept { return count_; }

 private:
  friend class TcpConnection;
  static void onConnectionCb(uv_stream_t* server, int status) noexcept;
  void onConnection(int status) noexcept;
  void link(TcpConnection* c) noexcept;
  size_t connectionsFrom(const sockaddr_storage& peer) const noexcept;
  void unlink(TcpConnection* c) noexcept;

  uv_loop_t* loop_;
  query::Responder& responder_;
  query::QueryStats& stats_;
  TcpLimits limits_;
  bool accepting_ = false;
  std::unique_ptr<uint8_t[]> answer_;  // 2-byte length + up to 65535 bytes, shared by connections
  TcpConnection* head_ = nullptr;
  size_t count_ = 0;
  uvx::UvPtr<uv_tcp_t> tcp_;
};

}  // namespace hdnsd::server
