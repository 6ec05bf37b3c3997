#include "tcp_connection.h"

#include <cstring>
#include <new>

#include "hdnsd/dns/wire.h"
#include "hdnsd/server/tcp_listener.h"
#include "hdnsd/util/log.h"

namespace hdnsd::server {
namespace {

// A write that could not finish at once: the request owns the unsent bytes.
struct WriteReq {
  uv_write_t req;
  size_t len;
  uint8_t bytes[1];  // over-allocated
};

}  // namespace

void TcpConnection::accept(TcpListener& owner, uv_stream_t* server) noexcept {
  auto* c = new (std::nothrow) TcpConnection(owner);
  if (!c) return;
  if (uv_tcp_init(owner.loop_, &c->tcp_) != 0) {
    delete c;
    return;
  }
  c->tcp_.data = c;
  c->openHandles_ = 1;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp_)) != 0) {
    c->closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp_), onClosedCb);
    return;
  }
  int peerLen = sizeof c->peer_;
  if (uv_tcp_getpeername(&c->tcp_, reinterpret_cast<sockaddr*>(&c->peer_), &peerLen) != 0)
    c->peer_.ss_family = AF_UNSPEC;  // unknown: the consistent policy orders as for no address
  uv_timer_init(owner.loop_, &c->idle_);  // cannot fail on Linux
  c->idle_.data = c;
  c->openHandles_ = 2;
  owner.link(c);
  query::bump(owner.stats_.tcpConnectionsAccepted);
  if (owner.stats_.tcpConnectionsOpen.load(std::memory_order_relaxed) > owner.limits_.maxConnections) {
    // Over the cap: accepting and closing at once tells the client to go elsewhere, where a
    // backlog that never drains would leave it hanging (RFC 7766 6.2.2 lets servers do this).
    query::bump(owner.stats_.tcpConnectionsRefused);
    c->close();
    return;
  }
  // One address may not take every slot (a flood from one pod, or one host behind NAT).
  if (c->peer_.ss_family != AF_UNSPEC && owner.connectionsFrom(c->peer_) > owner.limits_.maxPerClient) {
    query::bump(owner.stats_.tcpPerClientRefused);
    c->close();
    return;
  }
  uv_tcp_nodelay(&c->tcp_, 1);
  uv_timer_start(&c->idle_, onIdleCb, owner.limits_.idleTimeout_ms, 0);
  c->updateReading();
}

void TcpConnection::onAllocCb(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  auto* c = static_cast<TcpConnection*>(h->data);
  if (!c->in_) {
    c->in_.reset(new (std::nothrow) uint8_t[kInitialBuffer]);
    c->inCap_ = c->in_ ? kInitialBuffer : 0;
  }
  *buf = uv_buf_init(reinterpret_cast<char*>(c->in_.get() + c->inLen_),
                     static_cast<unsigned>(c->inCap_ - c->inLen_));
}

void TcpConnection::onReadCb(uv_stream_t* s, ssize_t nread, const uv_buf_t*) noexcept {
  static_cast<TcpConnection*>(s->data)->onRead(nread);
}

void TcpConnection::onRead(ssize_t nread) noexcept {
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {         // EOF or error: answers already written still go out first
    closeGracefully();
    return;
  }
  inLen_ += static_cast<size_t>(nread);
  processFrames();
}

// Answers every complete frame in the buffer, unless the client is not reading its answers.
void TcpConnection::processFrames() noexcept {
  size_t off = 0;
  while (!closing_ && inLen_ - off >= 2 && pendingWrite_ <= owner_->limits_.maxPendingBytes) {
    if (waiting >= owner_->limits_.maxInFlight) {  // enough of its queries upstream already
      pausedInFlight_ = true;
      break;
    }
    size_t len = dns::getU16(in_.get() + off);
    if (len < dns::kHeaderSize) {  // cannot be a DNS message: the stream is out of sync
      query::bump(owner_->stats_.tcpBadFrames);
      close();
      return;
    }
    if (inLen_ - off < 2 + len) break;
    if (!answer(in_.get() + off + 2, len)) return;
    off += 2 + len;
    uv_timer_start(&idle_, onIdleCb, owner_->limits_.idleTimeout_ms, 0);  // idle counts from the last query
  }
  if (closing_) return;
  if (off > 0) {
    std::memmove(in_.get(), in_.get() + off, inLen_ - off);
    inLen_ -= off;
  }
  // Make room for a frame larger than the buffer (at most 2 + 65535 bytes).
  if (inLen_ >= 2) {
    size_t need = 2 + size_t{dns::getU16(in_.get())};
    if (need > inCap_) {
      std::unique_ptr<uint8_t[]> bigger(new (std::nothrow) uint8_t[kMaxFrame]);
      if (!bigger) {
        close();
        return;
      }
      std::memcpy(bigger.get(), in_.get(), inLen_);
      in_ = std::move(bigger);
      inCap_ = kMaxFrame;
    }
  }
  updateReading();
}

bool TcpConnection::answer(const uint8_t* msg, size_t len) noexcept {
  uint8_t* out = owner_->answer_.get();
  const sockaddr* peer = peer_.ss_family == AF_UNSPEC ? nullptr : reinterpret_cast<const sockaddr*>(&peer_);
  const upstream::Client client{this, peer, query::Transport::kTcp};
  size_t n = owner_->responder_.respond({msg, len}, {out + 2, dns::kMaxMessage}, query::Transport::kTcp, &client);
  if (n == 0) return true;  // dropped (e.g. a response sent to us): keep the connection
  dns::putU16(out, static_cast<uint16_t>(n));
  write(out, n + 2);
  return !closing_;
}

void TcpConnection::deliverAnswer(const sockaddr*, std::span<const uint8_t> answer) noexcept {
  if (closing_ || answer.empty() || answer.size() > dns::kMaxMessage) return;
  // The listener's frame buffer is free here: this runs from a c-ares callback, or inside
  // respond() for this very query, whose own answer is then never written.
  uint8_t* out = owner_->answer_.get();
  std::memmove(out + 2, answer.data(), answer.size());
  dns::putU16(out, static_cast<uint16_t>(answer.size()));
  write(out, answer.size() + 2);
  if (!closing_ && draining_ && pendingWrite_ == 0 && waiting == 0) close();
  if (!closing_ && !draining_ && pausedInFlight_ && waiting < owner_->limits_.maxInFlight) {
    // Resume on the next loop turn, not here: this may run inside a c-ares callback that is
    // still walking the waiters of the answer, where a new query must not start.
    pausedInFlight_ = false;
    resume_ = true;
    uv_timer_start(&idle_, onIdleCb, 0, 0);
  }
}

void TcpConnection::write(const uint8_t* bytes, size_t len) noexcept {
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(const_cast<uint8_t*>(bytes)), static_cast<unsigned>(len));
  // uv_try_write refuses (EAGAIN) while earlier writes are queued, so answers stay in order.
  int rc = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
  size_t sent = rc > 0 ? static_cast<size_t>(rc) : 0;
  if (rc < 0 && rc != UV_EAGAIN) {
    close();
    return;
  }
  if (sent == len) return;
  size_t rest = len - sent;
  void* mem = ::operator new(sizeof(WriteReq) + rest, std::nothrow);
  if (!mem) {
    close();
    return;
  }
  auto* w = static_cast<WriteReq*>(mem);
  w->len = rest;
  std::memcpy(w->bytes, bytes + sent, rest);
  uv_buf_t rb = uv_buf_init(reinterpret_cast<char*>(w->bytes), static_cast<unsigned>(rest));
  w->req.data = this;
  pendingWrite_ += rest;
  rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &rb, 1, [](uv_write_t* req, int status) {
    auto* done = reinterpret_cast<WriteReq*>(req);
    auto* c = static_cast<TcpConnection*>(req->data);
    size_t n = done->len;
    ::operator delete(done);
    // Runs before the connection's close callback even when cancelled, so `c` is alive.
    if (status < 0) {
      c->pendingWrite_ -= n;
      c->close();
      return;
    }
    c->onWritten(n);
  });
  if (rc != 0) {
    pendingWrite_ -= rest;
    ::operator delete(mem);
    close();
  }
}

void TcpConnection::onWritten(size_t len) noexcept {
  pendingWrite_ -= len;
  if (closing_) return;
  if (draining_) {
    if (pendingWrite_ == 0 && waiting == 0) close();
    return;
  }
  // The client caught up: answer what was waiting in the buffer, read again.
  if (pendingWrite_ <= owner_->limits_.maxPendingBytes / 2) processFrames();
}

void TcpConnection::updateReading() noexcept {
  bool want = !closing_ && !draining_ && pendingWrite_ <= owner_->limits_.maxPendingBytes &&
              waiting < owner_->limits_.maxInFlight && inLen_ < inCap_ + (in_ ? 0 : 1);
  auto* s = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (want && !reading_) {
    reading_ = uv_read_start(s, onAllocCb, onReadCb) == 0;
  } else if (!want && reading_) {
    uv_read_stop(s);
    reading_ = false;
  }
}

void TcpConnection::onIdleCb(uv_timer_t* t) noexcept {
  auto* c = static_cast<TcpConnection*>(t->data);
  if (c->resume_) {  // not a timeout: answers came back, go on with the queries already read
    c->resume_ = false;
    uv_timer_start(&c->idle_, onIdleCb, c->owner_->limits_.idleTimeout_ms, 0);
    c->processFrames();
    return;
  }
  query::bump(c->owner_->stats_.tcpIdleClosed);
  c->close();
}

void TcpConnection::closeGracefully() noexcept {
  if (closing_) return;
  draining_ = true;
  updateReading();
  if (pendingWrite_ == 0 && waiting == 0) close();  // answers still coming from upstream: wait
}

void TcpConnection::close() noexcept {
  if (closing_) return;
  closing_ = true;
  if (auto* f = owner_->responder_.forwarder()) f->cancel(this);  // their answers have nowhere to go
  owner_->unlink(this);
  if (reading_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), onClosedCb);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), onClosedCb);
}

void TcpConnection::onClosedCb(uv_handle_t* h) noexcept {
  auto* c = static_cast<TcpConnection*>(h->data);
  if (--c->openHandles_ == 0) delete c;
}

}  // namespace hdnsd::server
