#include "hdnsd/ops/systemd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "hdnsd/util/log.h"

namespace hdnsd::ops {
namespace {
constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START

bool parseU64(const char* s, uint64_t* out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}
}  // namespace

Notifier::Notifier() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  path_ = path;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path_.size() >= sizeof sun.sun_path || (path_[0] != '/' && path_[0] != '@')) {
    LOG_WARN("systemd: NOTIFY_SOCKET=%s is not a socket path or @abstract name; not notifying", path);
    return;
  }
  std::memcpy(sun.sun_path, path_.data(), path_.size());
  if (path_[0] == '@') sun.sun_path[0] = '\0';  // the abstract namespace
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + path_.size() + (path_[0] == '@' ? 0 : 1));
  addr_.assign(reinterpret_cast<const char*>(&sun), reinterpret_cast<const char*>(&sun) + len);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) {
    LOG_WARN("systemd: cannot create the notify socket: %s; not notifying", std::strerror(errno));
    return;
  }
  uint64_t us = 0, pid = 0;
  const char* wpid = std::getenv("WATCHDOG_PID");
  if (parseU64(std::getenv("WATCHDOG_USEC"), &us) && us > 0 &&
      (!wpid || (parseU64(wpid, &pid) && pid == uint64_t(getpid()))))
    watchdog_us_ = us;
}

Notifier::~Notifier() {
  if (fd_ >= 0) ::close(fd_);
}

bool Notifier::notify(std::string_view state) noexcept {
  if (fd_ < 0) return false;
  ssize_t n = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(addr_.data()), socklen_t(addr_.size()));
  if (n == ssize_t(state.size())) return true;
  if (!warned_) {
    warned_ = true;
    LOG_WARN("systemd: notify to %s failed: %s (is the unit Type=notify and NOTIFY_SOCKET current?)",
             path_.c_str(), std::strerror(errno));
  }
  return false;
}

void Notifier::ready(std::string_view status) {
  notify("READY=1\nSTATUS=" + std::string(status) + "\nMAINPID=" + std::to_string(getpid()));
}
void Notifier::status(std::string_view status) { notify("STATUS=" + std::string(status)); }
void Notifier::reloading() {
  // MONOTONIC_USEC lets systemd ≥ 253 tie the reload to this message (Type=notify-reload).
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t us = uint64_t(ts.tv_sec) * 1'000'000u + uint64_t(ts.tv_nsec) / 1000u;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(us));
}
void Notifier::stopping() { notify("STOPPING=1"); }

void Notifier::startWatchdog(uv_loop_t* loop) {
  if (fd_ < 0 || watchdog_us_ == 0 || watchdog_) return;
  int err = 0;
  watchdog_ = uvx::makeHandle<uv_timer_t>(loop, &err, uv_timer_init);
  if (!watchdog_) return;
  watchdog_->data = this;
  uint64_t every_ms = watchdog_us_ / 2000;
  if (every_ms == 0) every_ms = 1;
  notify("WATCHDOG=1");
  uv_timer_start(
      watchdog_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<Notifier*>(t->data)) self->notify("WATCHDOG=1");
      },
      every_ms, every_ms);
  uv_unref(reinterpret_cast<uv_handle_t*>(watchdog_.get()));  // never what keeps the loop alive
  LOG_INFO("systemd: watchdog pings every %llu ms", static_cast<unsigned long long>(every_ms));
}

ActivatedSockets ActivatedSockets::fromEnvironment() {
  ActivatedSockets out;
  uint64_t pid = 0, n = 0;
  bool forUs = parseU64(std::getenv("LISTEN_PID"), &pid) && pid == uint64_t(getpid()) &&
               parseU64(std::getenv("LISTEN_FDS"), &n);
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (!forUs) return out;
  for (int fd = kListenFdsStart; fd < kListenFdsStart + int(n) && fd < kListenFdsStart + 1024; ++fd) {
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    ActivatedSocket s;
    s.fd = fd;
    socklen_t len = sizeof s.type;
    socklen_t alen = sizeof s.addr.ss;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &s.type, &len) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&s.addr.ss), &alen) != 0 ||
        (s.addr.family() != AF_INET && s.addr.family() != AF_INET6) ||
        (s.type != SOCK_DGRAM && s.type != SOCK_STREAM)) {
      LOG_WARN("systemd: passed fd %d is not an IPv4/IPv6 UDP or TCP socket; ignored", fd);
      continue;
    }
    out.sockets_.push_back(s);
  }
  return out;
}

bool sameAddress(const SockAddr& a, const SockAddr& b) noexcept {
  if (a.family() != b.family() || a.port() != b.port()) return false;
  if (a.family() == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&b.ss)->sin_addr.s_addr;
  if (a.family() == AF_INET6)
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&b.ss)->sin6_addr, sizeof(in6_addr)) == 0;
  return false;
}

int ActivatedSockets::take(const SockAddr& addr, int type) noexcept {
  for (auto& s : sockets_)
    if (!s.taken && s.type == type && sameAddress(s.addr, addr)) {
      s.taken = true;
      return s.fd;
    }
  return -1;
}

std::vector<ActivatedSocket*> ActivatedSockets::untaken() {
  std::vector<ActivatedSocket*> out;
  for (auto& s : sockets_)
    if (!s.taken) out.push_back(&s);
  return out;
}

}  // namespace hdnsd::ops
