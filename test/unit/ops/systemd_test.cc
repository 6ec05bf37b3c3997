// The sd_notify protocol by hand: the test owns the AF_UNIX datagram socket systemd would.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "hdnsd/ops/systemd.h"

using namespace hdnsd;

namespace {

// A bound datagram socket at `name` (a path, or "@x" in the abstract namespace).
int listenAt(const std::string& name) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, name.data(), name.size());
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + name.size());
  if (name[0] == '@') sun.sun_path[0] = '\0';
  else len += 1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sun), len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string recvOne(int fd) {
  char buf[512];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

struct Env {
  explicit Env(const char* name, const std::string& v) : name_(name) { setenv(name, v.c_str(), 1); }
  ~Env() { unsetenv(name_); }
  const char* name_;
};

}  // namespace

TEST_CASE("systemd notify: READY=1, STATUS, RELOADING=1, STOPPING=1 reach a path socket") {
  std::string path = "/tmp/hdnsd-notify-test-" + std::to_string(getpid());
  unlink(path.c_str());
  int fd = listenAt(path);
  REQUIRE(fd >= 0);
  {
    Env e("NOTIFY_SOCKET", path);
    ops::Notifier n;
    REQUIRE(n.enabled());
    n.ready("serving 3 services");
    std::string m = recvOne(fd);
    CHECK(m.find("READY=1\n") == 0);
    CHECK(m.find("STATUS=serving 3 services") != std::string::npos);
    CHECK(m.find("MAINPID=" + std::to_string(getpid())) != std::string::npos);
    n.reloading();
    CHECK(recvOne(fd).find("RELOADING=1\nMONOTONIC_USEC=") == 0);
    n.stopping();
    CHECK(recvOne(fd) == "STOPPING=1");
    CHECK(n.watchdogInterval_us() == 0);
  }
  close(fd);
  unlink(path.c_str());
}

TEST_CASE("systemd notify: an @abstract NOTIFY_SOCKET works") {
  std::string name = "@hdnsd-notify-test-" + std::to_string(getpid());
  int fd = listenAt(name);
  REQUIRE(fd >= 0);
  Env e("NOTIFY_SOCKET", name);
  ops::Notifier n;
  CHECK(n.notify("STATUS=x"));
  CHECK(recvOne(fd) == "STATUS=x");
  close(fd);
}

TEST_CASE("systemd notify: no NOTIFY_SOCKET, nothing is sent and nothing fails") {
  unsetenv("NOTIFY_SOCKET");
  ops::Notifier n;
  CHECK_FALSE(n.enabled());
  CHECK_FALSE(n.notify("READY=1"));
}

TEST_CASE("systemd watchdog: WATCHDOG=1 at half of WATCHDOG_USEC; another WATCHDOG_PID: none") {
  std::string name = "@hdnsd-watchdog-test-" + std::to_string(getpid());
  int fd = listenAt(name);
  REQUIRE(fd >= 0);
  Env e("NOTIFY_SOCKET", name);
  {
    Env w("WATCHDOG_USEC", "40000");  // 40 ms: a ping every 20 ms
    Env p("WATCHDOG_PID", std::to_string(getpid()));
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
      ops::Notifier n;
      CHECK(n.watchdogInterval_us() == 40000);
      n.startWatchdog(&loop);
      uv_timer_t stop;
      uv_timer_init(&loop, &stop);
      uv_timer_start(&stop, [](uv_timer_t* t) { uv_stop(t->loop); }, 110, 0);
      uv_run(&loop, UV_RUN_DEFAULT);
      uv_close(reinterpret_cast<uv_handle_t*>(&stop), nullptr);
      int pings = 0;
      while (recvOne(fd) == "WATCHDOG=1") ++pings;
      CHECK(pings >= 4);  // one at start, then every 20 ms for 110 ms: 6 when nothing is late
      CHECK(pings <= 7);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  {
    Env w("WATCHDOG_USEC", "40000");
    Env p("WATCHDOG_PID", "1");  // meant for another process
    ops::Notifier n;
    CHECK(n.watchdogInterval_us() == 0);
  }
  close(fd);
}

TEST_CASE("socket activation: not our LISTEN_PID, nothing is taken and the variables are gone") {
  Env pid("LISTEN_PID", "1");
  Env fds("LISTEN_FDS", "2");
  auto s = ops::ActivatedSockets::fromEnvironment();
  CHECK(s.empty());
  CHECK(std::getenv("LISTEN_FDS") == nullptr);
  CHECK(std::getenv("LISTEN_PID") == nullptr);
}

TEST_CASE("socket activation: addresses match by family, address and port") {
  auto a = *SockAddr::parse("127.0.0.1:53");
  CHECK(ops::sameAddress(a, *SockAddr::parse("127.0.0.1:53")));
  CHECK_FALSE(ops::sameAddress(a, *SockAddr::parse("127.0.0.1:54")));
  CHECK_FALSE(ops::sameAddress(a, *SockAddr::parse("127.0.0.2:53")));
  CHECK_FALSE(ops::sameAddress(a, *SockAddr::parse("[::1]:53")));
  CHECK(ops::sameAddress(*SockAddr::parse("[fd00::a]:53"), *SockAddr::parse("[fd00::a]:53")));
}
