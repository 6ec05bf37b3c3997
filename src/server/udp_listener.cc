#include "hdnsd/server/udp_listener.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <new>

#include "hdnsd/dns/wire.h"
#include "hdnsd/util/log.h"
#include "hdnsd/uvx/reuse_port.h"

namespace hdnsd::server {
namespace {

// A send that had to wait for socket room: the request owns a copy of the answer and frees
// itself in its callback, which libuv runs even when the handle is closed (UV_ECANCELED).
struct QueuedSend {
  uv_udp_send_t req;
  std::shared_ptr<size_t> queued;  // shared: the callback may run after the listener is gone
  uint8_t bytes[1];                // over-allocated to the answer's size
};

}  // namespace

UdpListener::UdpListener(uv_loop_t* loop, query::Responder& responder, query::QueryStats& stats)
    : loop_(loop),
      responder_(responder),
      stats_(stats),
      recvBatch_(new uint8_t[kBatch * kChunk]),
      answer_(new uint8_t[dns::kMaxMessage]) {}

UdpListener::~UdpListener() { close(); }

Result<void, std::string> UdpListener::bind(const SockAddr& addr) {
  int err = 0;
  auto flags = static_cast<unsigned>(addr.family()) | UV_UDP_RECVMMSG;
  udp_ = uvx::makeHandle<uv_udp_t>(loop_, &err, uv_udp_init_ex, flags);
  if (!udp_) return Unexpected{"udp " + addr.text() + ": " + uv_strerror(err)};
  udp_->data = this;
  unsigned bindFlags = addr.family() == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
  uvx::enableReusePort(reinterpret_cast<uv_handle_t*>(udp_.get()));  // restarts share the port
  if ((err = uv_udp_bind(udp_.get(), addr.get(), bindFlags)) != 0 ||
      (err = uv_udp_recv_start(udp_.get(), onAllocCb, onRecvCb)) != 0) {
    udp_.reset();
    return Unexpected{"udp " + addr.text() + ": " + uv_strerror(err)};
  }
  return {};
}

Result<void, std::string> UdpListener::open(int fd) {
  int err = 0;
  udp_ = uvx::makeHandle<uv_udp_t>(loop_, &err, uv_udp_init_ex, unsigned(AF_UNSPEC) | UV_UDP_RECVMMSG);
  if (!udp_) return Unexpected{"udp fd " + std::to_string(fd) + ": " + uv_strerror(err)};
  udp_->data = this;
  if ((err = uv_udp_open(udp_.get(), fd)) != 0 || (err = uv_udp_recv_start(udp_.get(), onAllocCb, onRecvCb)) != 0) {
    udp_.reset();
    return Unexpected{"udp fd " + std::to_string(fd) + ": " + uv_strerror(err)};
  }
  return {};
}

bool UdpListener::stopReceivingNew() noexcept {
  uv_os_fd_t fd = -1;
  if (!udp_ || uv_fileno(reinterpret_cast<uv_handle_t*>(udp_.get()), &fd) != 0) return false;
  SockAddr self;
  socklen_t len = sizeof self.ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&self.ss), &len) != 0) return false;
  // Port 9 (discard) of our own address: nobody sends from there. Connecting keeps the bound
  // address when it is a specific one; a wildcard one would be narrowed, so leave it alone.
  if (self.family() == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&self.ss);
    if (a->sin_addr.s_addr == htonl(INADDR_ANY)) return false;
    a->sin_port = htons(9);
  } else if (self.family() == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&self.ss);
    if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) return false;
    a->sin6_port = htons(9);
  } else {
    return false;
  }
  return ::connect(fd, self.get(), len) == 0;
}

size_t UdpListener::queuedBytes() const noexcept {
  uv_os_fd_t fd = -1;
  int n = 0;
  if (!udp_ || uv_fileno(reinterpret_cast<const uv_handle_t*>(udp_.get()), &fd) != 0) return 0;
  if (ioctl(fd, FIONREAD, &n) != 0 || n < 0) return 0;
  return size_t(n);
}

void UdpListener::close() noexcept {
  if (auto* f = responder_.forwarder()) f->cancel(this);
  if (udp_) {
    uv_udp_recv_stop(udp_.get());
    udp_.reset();
  }
}

void UdpListener::stopReading() noexcept {
  if (udp_) uv_udp_recv_stop(udp_.get());
}

uint16_t UdpListener::port() const noexcept {
  if (!udp_) return 0;
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_udp_getsockname(udp_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  SockAddr a;
  a.ss = ss;
  return a.port();
}

void UdpListener::onAllocCb(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  auto* self = static_cast<UdpListener*>(h->data);
  if (!self) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  // One batch buffer reused for every read: each datagram is answered before the next read.
  *buf = uv_buf_init(reinterpret_cast<char*>(self->recvBatch_.get()), kBatch * kChunk);
}

void UdpListener::onRecvCb(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                           unsigned flags) noexcept {
  if (auto* self = static_cast<UdpListener*>(h->data)) self->onRecv(nread, buf, from, flags);
}

void UdpListener::onRecv(ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned flags) noexcept {
  // With recvmmsg libuv ends a batch with a UV_UDP_MMSG_FREE call (nread 0, no address) meant
  // for freeing; our buffer is owned by the listener, so there is nothing to do.
  if (flags & UV_UDP_MMSG_FREE) return;
  if (nread < 0) {
    LOG_WARN("udp: receive error: %s", uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (from == nullptr) return;  // nothing more to read this time
  if (flags & UV_UDP_PARTIAL) return;  // larger than 64 KiB: cannot be a DNS message
  std::span<const uint8_t> query(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread));
  const upstream::Client client{this, from, query::Transport::kUdp};
  size_t len = responder_.respond(query, {answer_.get(), dns::kMaxMessage}, query::Transport::kUdp, &client);
  if (len > 0) send(from, answer_.get(), len);
}

void UdpListener::deliverAnswer(const sockaddr* to, std::span<const uint8_t> answer) noexcept {
  if (udp_ && to) send(to, answer.data(), answer.size());
}

void UdpListener::send(const sockaddr* to, const uint8_t* bytes, size_t len) noexcept {
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(const_cast<uint8_t*>(bytes)), static_cast<unsigned>(len));
  int rc = uv_udp_try_send(udp_.get(), &b, 1, to);
  if (rc >= 0) return;
  if (rc != UV_EAGAIN || *queuedSends_ >= kMaxQueuedSends) {
    query::bump(stats_.udpSendDropped);
    return;
  }
  // Socket buffer full: queue a copy (the only allocation on this path, and bounded).
  void* mem = ::operator new(sizeof(QueuedSend) + len, std::nothrow);
  if (!mem) {
    query::bump(stats_.udpSendDropped);
    return;
  }
  auto* qs = new (mem) QueuedSend{{}, queuedSends_, {0}};
  std::memcpy(qs->bytes, bytes, len);
  uv_buf_t copy = uv_buf_init(reinterpret_cast<char*>(qs->bytes), static_cast<unsigned>(len));
  ++*queuedSends_;
  rc = uv_udp_send(&qs->req, udp_.get(), &copy, 1, to, [](uv_udp_send_t* req, int) {
    auto* done = reinterpret_cast<QueuedSend*>(req);
    --*done->queued;
    done->~QueuedSend();
    ::operator delete(done);
  });
  if (rc != 0) {
    --*queuedSends_;
    qs->~QueuedSend();
    ::operator delete(mem);
    query::bump(stats_.udpSendDropped);
  }
}

}  // namespace hdnsd::server
