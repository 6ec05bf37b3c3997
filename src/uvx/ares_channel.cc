#include "hdnsd/uvx/ares_channel.h"

#include <arpa/inet.h>

#include <cstring>
#include <new>

#include "hdnsd/util/log.h"

namespace hdnsd::uvx {

Result<void, std::string> aresLibraryInit() {
  static int rc = ares_library_init(ARES_LIB_INIT_ALL);
  if (rc != ARES_SUCCESS) return Unexpected{std::string("ares_library_init: ") + ares_strerror(rc)};
  return {};
}

AresChannel::~AresChannel() { destroy(); }

Result<void, std::string> AresChannel::init(const Options& o) {
  if (auto r = aresLibraryInit(); !r) return r;
  int err = 0;
  timer_ = makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (!timer_) return Unexpected{std::string("uv_timer_init: ") + uv_strerror(err)};
  timer_->data = this;

  ares_options opts{};
  int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB |
             ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS;
  // No ARES_FLAG_NOCHECKRESP: on SERVFAIL/REFUSED/NOTIMP c-ares moves on to the next server
  // (the only failover 1.18 has) and reports the status when all failed. No ARES_FLAG_IGNTC:
  // a truncated UDP answer is retried over TCP by c-ares itself (issue 4 part 2).
  // ARES_FLAG_EDNS only affects queries c-ares builds; ours carry their own OPT.
  opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_STAYOPEN | (o.tcp ? ARES_FLAG_USEVC : 0);
  opts.timeout = static_cast<int>(o.timeout_ms);
  opts.tries = static_cast<int>(o.tries);
  opts.sock_state_cb = onSockStateCb;
  opts.sock_state_cb_data = this;
  opts.ndomains = 0;
  opts.domains = nullptr;
  char lookups[] = "b";
  opts.lookups = lookups;
  int rc = ares_init_options(&channel_, &opts, mask);
  if (rc != ARES_SUCCESS) {
    channel_ = nullptr;
    return Unexpected{std::string("ares_init_options: ") + ares_strerror(rc)};
  }
  // ares_set_servers_ports takes a linked list; build it on the stack-owned vector.
  std::vector<ares_addr_port_node> nodes(o.servers.size());
  for (size_t i = 0; i < o.servers.size(); ++i) {
    const SockAddr& s = o.servers[i];
    auto& n = nodes[i];
    n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
    n.family = s.family();
    if (s.family() == AF_INET)
      std::memcpy(&n.addr.addr4, &reinterpret_cast<const sockaddr_in*>(&s.ss)->sin_addr, 4);
    else
      std::memcpy(&n.addr.addr6, &reinterpret_cast<const sockaddr_in6*>(&s.ss)->sin6_addr, 16);
    n.udp_port = s.port();
    n.tcp_port = s.port();
  }
  rc = ares_set_servers_ports(channel_, nodes.empty() ? nullptr : nodes.data());
  if (rc != ARES_SUCCESS) {
    destroy();
    return Unexpected{std::string("ares_set_servers_ports: ") + ares_strerror(rc)};
  }
  return {};
}

void AresChannel::send(const uint8_t* query, size_t len, ares_callback cb, void* arg) noexcept {
  if (!channel_) {
    cb(arg, ARES_EDESTRUCTION, 0, nullptr, 0);
    return;
  }
  ares_send(channel_, query, static_cast<int>(len), cb, arg);
  rearmTimer();
}

void AresChannel::destroy() noexcept {
  if (channel_) {
    ares_channel c = channel_;
    channel_ = nullptr;  // a callback running inside ares_destroy sees a dead channel
    ares_destroy(c);
  }
  for (auto& p : pollers_) uv_poll_stop(p.poll.get());
  pollers_.clear();  // UvPtr closes each poll handle
  timer_.reset();
}

void AresChannel::onSockStateCb(void* data, ares_socket_t fd, int readable, int writable) noexcept {
  static_cast<AresChannel*>(data)->onSockState(fd, readable != 0, writable != 0);
}

void AresChannel::onSockState(ares_socket_t fd, bool readable, bool writable) noexcept {
  size_t i = 0;
  while (i < pollers_.size() && pollers_[i].fd != fd) ++i;
  if (!readable && !writable) {
    // c-ares closes fd right after this returns: stop polling now, close the handle later.
    if (i < pollers_.size()) {
      uv_poll_stop(pollers_[i].poll.get());
      pollers_.erase(pollers_.begin() + static_cast<ptrdiff_t>(i));
    }
    return;
  }
  if (i == pollers_.size()) {
    int err = 0;
    auto p = makeHandle<uv_poll_t>(loop_, &err, uv_poll_init_socket, fd);
    if (!p) {
      LOG_WARN("upstream: uv_poll_init_socket: %s", uv_strerror(err));
      return;  // the query times out through the timer
    }
    p->data = this;
    pollers_.push_back(Poller{fd, std::move(p)});
  }
  int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  uv_poll_start(pollers_[i].poll.get(), events, onPollCb);
}

void AresChannel::onPollCb(uv_poll_t* p, int status, int events) noexcept {
  auto* self = static_cast<AresChannel*>(p->data);
  if (!self || !self->channel_) return;
  ares_socket_t fd = -1;
  for (const auto& pl : self->pollers_)
    if (pl.poll.get() == p) fd = pl.fd;
  if (fd < 0) return;
  // On a poll error let c-ares try both directions: its read/write fails and it handles the socket.
  ares_socket_t r = (status < 0 || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD;
  ares_socket_t w = (status < 0 || (events & UV_WRITABLE)) ? fd : ARES_SOCKET_BAD;
  ares_process_fd(self->channel_, r, w);
  if (self->channel_) self->rearmTimer();
}

void AresChannel::onTimerCb(uv_timer_t* t) noexcept {
  auto* self = static_cast<AresChannel*>(t->data);
  if (!self || !self->channel_) return;
  ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  if (self->channel_) self->rearmTimer();
}

void AresChannel::rearmTimer() noexcept {
  if (!channel_ || !timer_) return;
  timeval tv{};
  timeval* next = ares_timeout(channel_, nullptr, &tv);
  if (!next) {
    uv_timer_stop(timer_.get());
    return;
  }
  uint64_t ms = uint64_t(next->tv_sec) * 1000 + uint64_t(next->tv_usec + 999) / 1000;
  uv_timer_start(timer_.get(), onTimerCb, ms ? ms : 1, 0);
}

}  // namespace hdnsd::uvx
