#include "hdnsd/server/tcp_listener.h"

#include <cstring>

#include "hdnsd/dns/wire.h"
#include "hdnsd/util/log.h"
#include "hdnsd/uvx/reuse_port.h"
#include "tcp_connection.h"

namespace hdnsd::server {

TcpListener::TcpListener(uv_loop_t* loop, query::Responder& responder, query::QueryStats& stats,
                         TcpLimits limits)
    : loop_(loop),
      responder_(responder),
      stats_(stats),
      limits_(limits),
      answer_(new uint8_t[TcpConnection::kMaxFrame]) {}

TcpListener::~TcpListener() {
  stopAccepting();
  closeAll();
}

Result<void, std::string> TcpListener::bind(const SockAddr& addr) {
  int err = 0;
  tcp_ = uvx::makeHandle<uv_tcp_t>(loop_, &err, uv_tcp_init_ex, static_cast<unsigned>(addr.family()));
  if (!tcp_) return Unexpected{"tcp " + addr.text() + ": " + uv_strerror(err)};
  tcp_->data = this;
  unsigned flags = addr.family() == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
  uvx::enableReusePort(reinterpret_cast<uv_handle_t*>(tcp_.get()));  // restarts share the port
  if ((err = uv_tcp_bind(tcp_.get(), addr.get(), flags)) != 0 ||
      (err = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_.get()), 1024, onConnectionCb)) != 0) {
    tcp_.reset();
    return Unexpected{"tcp " + addr.text() + ": " + uv_strerror(err)};
  }
  accepting_ = true;
  return {};
}

Result<void, std::string> TcpListener::open(int fd) {
  int err = 0;
  tcp_ = uvx::makeHandle<uv_tcp_t>(loop_, &err, uv_tcp_init);
  if (!tcp_) return Unexpected{"tcp fd " + std::to_string(fd) + ": " + uv_strerror(err)};
  tcp_->data = this;
  if ((err = uv_tcp_open(tcp_.get(), fd)) != 0 ||
      (err = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_.get()), 1024, onConnectionCb)) != 0) {
    tcp_.reset();
    return Unexpected{"tcp fd " + std::to_string(fd) + ": " + uv_strerror(err)};
  }
  accepting_ = true;
  return {};
}

uint16_t TcpListener::port() const noexcept {
  if (!tcp_) return 0;
  SockAddr a;
  int len = sizeof a.ss;
  if (uv_tcp_getsockname(tcp_.get(), reinterpret_cast<sockaddr*>(&a.ss), &len) != 0) return 0;
  return a.port();
}

void TcpListener::onConnectionCb(uv_stream_t* server, int status) noexcept {
  if (auto* self = static_cast<TcpListener*>(server->data)) self->onConnection(status);
}

void TcpListener::onConnection(int status) noexcept {
  if (status < 0) {
    LOG_WARN("tcp: accept error: %s", uv_strerror(status));
    return;
  }
  if (!accepting_) return;
  TcpConnection::accept(*this, reinterpret_cast<uv_stream_t*>(tcp_.get()));
}

void TcpListener::stopAccepting() noexcept {
  accepting_ = false;
  tcp_.reset();
  for (TcpConnection* c = head_; c;) {
    TcpConnection* next = c->next;  // closeGracefully may unlink c
    c->closeGracefully();
    c = next;
  }
}

void TcpListener::closeAll() noexcept {
  while (head_) head_->close();
}

void TcpListener::link(TcpConnection* c) noexcept {
  c->next = head_;
  if (head_) head_->prev = c;
  head_ = c;
  ++count_;
  stats_.tcpConnectionsOpen.fetch_add(1, std::memory_order_relaxed);
}

// Walks the connections (at most --max-tcp-connections): only on accept, never per query.
size_t TcpListener::connectionsFrom(const sockaddr_storage& peer) const noexcept {
  auto same = [&peer](const sockaddr_storage& o) {
    if (o.ss_family != peer.ss_family) return false;
    if (peer.ss_family == AF_INET)
      return reinterpret_cast<const sockaddr_in&>(o).sin_addr.s_addr ==
             reinterpret_cast<const sockaddr_in&>(peer).sin_addr.s_addr;
    if (peer.ss_family == AF_INET6)
      return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(o).sin6_addr,
                         &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr, sizeof(in6_addr)) == 0;
    return false;
  };
  size_t n = 0;
  for (const TcpConnection* c = head_; c; c = c->next)
    if (same(c->peer())) ++n;
  return n;
}

void TcpListener::unlink(TcpConnection* c) noexcept {
  if (c->prev) c->prev->next = c->next;
  else head_ = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
  --count_;
  stats_.tcpConnectionsOpen.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace hdnsd::server
