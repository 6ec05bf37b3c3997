// http::Server + probe handler on a real libuv loop, listening on 127.0.0.1 port 0. The client
// is a plain non-blocking socket in the same thread: each wait turns the loop with
// UV_RUN_NOWAIT and polls the socket, so nothing needs a second thread. Responses are parsed
// here by hand (status line, headers, Content-Length), not by http-parser, so the server's own
// parser is not its own oracle. Every test ends by closing the server, running the loop until
// idle and asserting uv_loop_close() == 0: no handle leaked.
#include "hdnsd/http/server.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>

#include "hdnsd/http/probes.h"
#include "hdnsd/metrics/registry.h"

using namespace hdnsd;
using namespace hdnsd::http;

namespace {

struct Resp {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& n) const {
    auto it = headers.find(n);
    return it == headers.end() ? std::string("<absent>") : it->second;
  }
};

// Takes one complete response off the front of buf, or nullopt if not all of it is there yet.
// `head`: the response to a HEAD request has no body whatever Content-Length says.
std::optional<Resp> takeResponse(std::string& buf, bool head) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  Resp r;
  std::string head_text = buf.substr(0, end);
  size_t lineEnd = head_text.find("\r\n");
  std::string status = head_text.substr(0, lineEnd);
  REQUIRE(status.rfind("HTTP/1.1 ", 0) == 0);
  r.status = std::stoi(status.substr(9, 3));
  size_t pos = lineEnd == std::string::npos ? head_text.size() : lineEnd + 2;
  while (pos < head_text.size()) {
    size_t e = head_text.find("\r\n", pos);
    if (e == std::string::npos) e = head_text.size();
    std::string line = head_text.substr(pos, e - pos);
    size_t colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    std::string name = line.substr(0, colon);
    for (auto& ch : name) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    size_t v = line.find_first_not_of(' ', colon + 1);
    r.headers[name] = v == std::string::npos ? "" : line.substr(v);
    pos = e + 2;
  }
  size_t len = head ? 0 : std::stoul(r.headers.at("content-length"));
  if (buf.size() < end + 4 + len) return std::nullopt;
  r.body = buf.substr(end + 4, len);
  buf.erase(0, end + 4 + len);
  return r;
}

struct Fixture {
  uv_loop_t loop{};
  metrics::Registry reg;
  Readiness readiness;
  std::unique_ptr<Server> server;

  explicit Fixture(Limits limits = {}, Handler h = nullptr) {
    REQUIRE(uv_loop_init(&loop) == 0);
    if (!h) h = makeProbeHandler(reg, readiness);
    server = std::make_unique<Server>(&loop, std::move(h), limits);
    auto r = server->listen("127.0.0.1:0");
    REQUIRE(r.has_value());
    REQUIRE(server->port() != 0);
  }
  // Closes everything and proves no handle is left on the loop.
  void finish() {
    server->close();
    server.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  // Turns the loop until pred() holds or ~3 s pass.
  template <class Pred>
  bool pumpUntil(Pred pred, int fd = -1) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop, UV_RUN_NOWAIT);
      if (pred()) return true;
      if (fd >= 0) {
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, 1);
      } else {
        ::usleep(1000);
      }
    }
    return pred();
  }
};

struct Client {
  Fixture& f;
  int fd = -1;
  std::string in;
  bool closed = false;

  explicit Client(Fixture& fx) : f(fx) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(f.server->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // Blocking connect completes from the kernel's backlog without the loop accepting.
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  ~Client() {
    if (fd >= 0) ::close(fd);
  }
  void send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        uv_run(&f.loop, UV_RUN_NOWAIT);  // let the server drain the socket
        continue;
      }
      REQUIRE(n > 0);
      off += size_t(n);
    }
  }
  void drain() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        in.append(buf, size_t(n));
        continue;
      }
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) closed = true;
      return;
    }
  }
  Resp next(bool head = false) {
    std::optional<Resp> r;
    bool ok = f.pumpUntil(
        [&] {
          drain();
          r = takeResponse(in, head);
          return r.has_value();
        },
        fd);
    REQUIRE_MESSAGE(ok, "no complete response; have: " << in);
    return *r;
  }
  // True if the server closed the connection (EOF) with no further bytes.
  bool waitClosed() {
    f.pumpUntil(
        [&] {
          drain();
          return closed;
        },
        fd);
    return closed && in.empty();
  }
};

const std::string kGetHealth = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";

}  // namespace

TEST_CASE("server: GET /health is 200 ok and the connection stays open") {
  Fixture f;
  {
    Client c(f);
    c.send(kGetHealth);
    Resp r = c.next();
    CHECK(r.status == 200);
    CHECK(r.body == "ok\n");
    CHECK(r.header("content-type") == "text/plain; charset=utf-8");
    CHECK(r.header("content-length") == "3");
    CHECK(r.header("connection") == "<absent>");  // HTTP/1.1 default: keep-alive
    CHECK(r.header("date").size() == 29);         // "Sun, 06 Nov 1994 08:49:37 GMT"
    c.send(kGetHealth);
    CHECK(c.next().status == 200);
    CHECK(f.server->connectionCount() == 1);
  }
  CHECK(f.server->stats().requests == 2);
  f.finish();
}

TEST_CASE("server: GET /ready is 503 with the reason until every source has loaded") {
  Fixture f;
  size_t endpoints = f.readiness.addSource("endpoints file examples/x.json");
  {
    Client c(f);
    c.send("GET /ready HTTP/1.1\r\nHost: t\r\n\r\n");
    Resp r = c.next();
    CHECK(r.status == 503);
    CHECK(r.body == "not ready: endpoints file examples/x.json not loaded yet\n");

    f.readiness.markLoaded(endpoints);
    c.send("GET /ready HTTP/1.1\r\nHost: t\r\n\r\n");
    r = c.next();
    CHECK(r.status == 200);
    CHECK(r.body == "ready\n");
  }
  f.finish();
}

TEST_CASE("readiness: several missing sources name the first and count the rest") {
  Readiness rd;
  CHECK(rd.ready());
  CHECK(rd.reason().empty());
  size_t a = rd.addSource("endpoints file a.json");
  size_t b = rd.addSource("kubernetes API watch");
  rd.addSource("upstream resolvers");
  CHECK_FALSE(rd.ready());
  CHECK(rd.reason() == "endpoints file a.json not loaded yet (and 2 more)");
  rd.markLoaded(a);
  CHECK(rd.reason() == "kubernetes API watch not loaded yet (and 1 more)");
  rd.markLoaded(b);
  CHECK(rd.reason() == "upstream resolvers not loaded yet");
}

TEST_CASE("server: GET /metrics is the registry in text format 0.0.4; HEAD sends no body") {
  Fixture f;
  metrics::Counter& q = f.reg.counter("hdnsd_dns_queries_total", "DNS queries.",
                                      {{"transport", "udp"}});
  q.inc(5);
  {
    Client c(f);
    c.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    Resp r = c.next();
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(r.body ==
          "# HELP hdnsd_dns_queries_total DNS queries.\n"
          "# TYPE hdnsd_dns_queries_total counter\n"
          "hdnsd_dns_queries_total{transport=\"udp\"} 5\n");

    q.inc();
    c.send("HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    Resp h = c.next(/*head=*/true);
    CHECK(h.status == 200);
    CHECK(h.header("content-length") == std::to_string(r.body.size()));  // 5 -> 6, same length
    CHECK(h.body.empty());
    // Had the server sent a body after HEAD, it would sit in front of this response.
    c.send(kGetHealth);
    Resp next = c.next();
    CHECK(next.status == 200);
    CHECK(next.body == "ok\n");

    c.send("GET /metrics?name=x HTTP/1.1\r\nHost: t\r\n\r\n");  // query string ignored
    Resp withQuery = c.next();
    CHECK(withQuery.status == 200);
    CHECK(withQuery.body.find("hdnsd_dns_queries_total{transport=\"udp\"} 6\n") !=
          std::string::npos);
  }
  f.finish();
}

TEST_CASE("server: pipelined requests on one keep-alive connection answer in order") {
  Fixture f;
  f.readiness.addSource("endpoints file x.json");
  {
    Client c(f);
    c.send(kGetHealth + "GET /ready HTTP/1.1\r\nHost: t\r\n\r\n" +
           "GET http://t/health HTTP/1.1\r\nHost: t\r\n\r\n");  // absolute-form target
    Resp a = c.next();
    Resp b = c.next();
    Resp d = c.next();
    CHECK(a.status == 200);
    CHECK(a.body == "ok\n");
    CHECK(b.status == 503);
    CHECK(d.status == 200);
    CHECK(d.body == "ok\n");
    // Still open; then Connection: close ends it after the response.
    c.send("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    Resp e = c.next();
    CHECK(e.status == 200);
    CHECK(e.header("connection") == "close");
    CHECK(c.waitClosed());
  }
  CHECK(f.pumpUntil([&] { return f.server->connectionCount() == 0; }));
  f.finish();
}

TEST_CASE("server: a request after Connection: close in the same packet is not answered") {
  Fixture f;
  {
    Client c(f);
    c.send("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n" + kGetHealth);
    CHECK(c.next().status == 200);
    CHECK(c.waitClosed());
  }
  f.finish();
}

TEST_CASE("server: a client that half-closes after its request still gets the answer") {
  Fixture f;
  {
    Client c(f);
    c.send(kGetHealth + kGetHealth);
    REQUIRE(::shutdown(c.fd, SHUT_WR) == 0);  // like `printf ... | nc`
    CHECK(c.next().status == 200);
    CHECK(c.next().status == 200);
    CHECK(c.waitClosed());
  }
  f.finish();
}

TEST_CASE("server: HTTP/1.0 closes by default, keeps the connection when asked") {
  Fixture f;
  {
    Client c(f);
    c.send("GET /health HTTP/1.0\r\n\r\n");
    Resp r = c.next();
    CHECK(r.status == 200);
    CHECK(r.header("connection") == "close");
    CHECK(c.waitClosed());
  }
  {
    Client c(f);
    c.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    Resp r = c.next();
    CHECK(r.header("connection") == "keep-alive");
    c.send("GET /health HTTP/1.0\r\n\r\n");
    CHECK(c.next().status == 200);
    CHECK(c.waitClosed());
  }
  f.finish();
}

TEST_CASE("server: malformed requests get 400 and the connection is closed") {
  const char* bad[] = {
      "BLAH /health HTTP/1.1\r\n\r\n",                     // unknown method
      "GET /health HTTP/1.1\r\nBad Header Line\r\n\r\n",   // header without a colon
      "GET /health HTTP/x.1\r\n\r\n",                      // version not a number
      "\x01\x02\x03\r\n\r\n",                              // binary garbage
  };
  for (const char* req : bad) {
    std::string reqText = req;
    CAPTURE(reqText);
    Fixture f;
    {
      Client c(f);
      c.send(req);
      Resp r = c.next();
      CHECK(r.status == 400);
      CHECK(r.header("connection") == "close");
      CHECK(c.waitClosed());
    }
    CHECK(f.server->stats().badRequests == 1);
    f.finish();
  }
}

TEST_CASE("server: oversized request header gets 431 and close") {
  Fixture f;
  {
    Client c(f);
    c.send("GET /health HTTP/1.1\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n");
    Resp r = c.next();
    CHECK(r.status == 431);
    CHECK(r.header("connection") == "close");
    CHECK(c.waitClosed());
  }
  {  // many small headers add up the same way
    Client c(f);
    std::string req = "GET /health HTTP/1.1\r\n";
    for (int i = 0; i < 2000; ++i) req += "a:\r\n";
    c.send(req + "\r\n");
    CHECK(c.next().status == 431);
    CHECK(c.waitClosed());
  }
  {  // a long URL too
    Client c(f);
    c.send("GET /" + std::string(9000, 'x') + " HTTP/1.1\r\n\r\n");
    CHECK(c.next().status == 431);
    CHECK(c.waitClosed());
  }
  f.finish();
}

TEST_CASE("server: unknown path 404, POST 405 with Allow, body discarded, connection kept") {
  Fixture f;
  {
    Client c(f);
    c.send("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    Resp r = c.next();
    CHECK(r.status == 404);
    c.send("POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    r = c.next();
    CHECK(r.status == 405);
    CHECK(r.header("allow") == "GET, HEAD");
    c.send("DELETE /health HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(c.next().status == 405);
    c.send(kGetHealth);  // the 5 body bytes were not taken for the next request
    CHECK(c.next().status == 200);
  }
  f.finish();
}

TEST_CASE("server: a body over the limit gets 413 and close") {
  Limits l;
  l.maxBodyBytes = 16;
  Fixture f(l);
  {
    Client c(f);
    c.send("POST /metrics HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b'));
    CHECK(c.next().status == 413);
    CHECK(c.waitClosed());
  }
  f.finish();
}

TEST_CASE("server: idle and trickling connections are closed by the timeout") {
  Limits l;
  l.idleTimeout_ms = 50;
  Fixture f(l);
  {
    Client idle(f);
    Client slow(f);
    slow.send("GET /hea");  // never finishes its request
    CHECK(idle.waitClosed());
    CHECK(slow.waitClosed());
  }
  CHECK(f.server->stats().timeouts == 2);
  f.finish();
}

TEST_CASE("server: the idle timer restarts after each response") {
  Limits l;
  l.idleTimeout_ms = 500;
  Fixture f(l);
  {
    Client c(f);
    auto pumpFor = [&](int ms) {
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      f.pumpUntil([&] { return std::chrono::steady_clock::now() >= until; }, c.fd);
    };
    pumpFor(300);
    c.send(kGetHealth);
    CHECK(c.next().status == 200);
    pumpFor(300);  // 600 ms after accept, 300 ms after the response: still open
    c.drain();
    CHECK_FALSE(c.closed);
    c.send(kGetHealth);
    CHECK(c.next().status == 200);
    CHECK(c.waitClosed());  // and closed once idle for the full timeout
  }
  CHECK(f.server->stats().timeouts == 1);
  f.finish();
}

TEST_CASE("server: connections over the cap are accepted and closed at once") {
  Limits l;
  l.maxConnections = 2;
  Fixture f(l);
  {
    Client a(f);
    Client b(f);
    CHECK(f.pumpUntil([&] { return f.server->connectionCount() == 2; }));
    Client c(f);
    CHECK(c.waitClosed());
    CHECK(f.server->stats().rejected == 1);
    a.send(kGetHealth);
    CHECK(a.next().status == 200);
    b.send(kGetHealth);
    CHECK(b.next().status == 200);
  }
  // Once a slot frees up, new clients are served again.
  CHECK(f.pumpUntil([&] { return f.server->connectionCount() == 0; }));
  {
    Client d(f);
    d.send(kGetHealth);
    CHECK(d.next().status == 200);
  }
  f.finish();
}

TEST_CASE("server: many pipelined requests pause the parser and all come back in order") {
  Limits l;
  l.maxQueuedResponses = 2;
  Fixture f(l, [](std::string_view, std::string_view path) {
    return Response{200, "text/plain", std::string(path), {}};
  });
  {
    Client c(f);
    std::string burst;
    for (int i = 0; i < 40; ++i) burst += "GET /" + std::to_string(i) + " HTTP/1.1\r\n\r\n";
    c.send(burst);
    for (int i = 0; i < 40; ++i) {
      Resp r = c.next();
      CHECK(r.body == "/" + std::to_string(i));
    }
    c.send("GET /last HTTP/1.1\r\n\r\n");  // reading resumed after the burst
    CHECK(c.next().body == "/last");
  }
  f.finish();
}

TEST_CASE("server: a client that does not read stops the server from producing answers") {
  Limits l;
  l.maxQueuedResponses = 2;
  int calls = 0;
  Fixture f(l, [&calls](std::string_view, std::string_view) {
    ++calls;
    return Response{200, "application/octet-stream", std::string(4 << 20, 'z'), {}};
  });
  {
    Client c(f);  // never reads: the kernel buffers fill, writes stay queued
    std::string burst;
    for (int i = 0; i < 40; ++i) burst += "GET /big HTTP/1.1\r\n\r\n";
    c.send(burst);
    for (int i = 0; i < 200; ++i) {
      uv_run(&f.loop, UV_RUN_NOWAIT);
      ::usleep(500);
    }
    CHECK(calls >= 2);
    CHECK(calls <= 6);  // 2 queued plus what the socket buffers swallowed, not all 40
    MESSAGE("handler calls while the client was not reading: " << calls);
  }
  f.finish();
}

TEST_CASE("server: a Handler that throws gives 500 and the connection survives") {
  Fixture f(Limits{}, [](std::string_view, std::string_view path) -> Response {
    if (path == "/boom") throw std::runtime_error("boom");
    return {200, "text/plain", "fine", {}};
  });
  {
    Client c(f);
    c.send("GET /boom HTTP/1.1\r\n\r\n");
    CHECK(c.next().status == 500);
    c.send("GET /x HTTP/1.1\r\n\r\n");
    CHECK(c.next().body == "fine");
  }
  f.finish();
}

TEST_CASE("server: close() with a large response still being written leaks nothing") {
  Fixture f(Limits{}, [](std::string_view, std::string_view) {
    return Response{200, "application/octet-stream", std::string(8 << 20, 'z'), {}};
  });
  Client c(f);  // never reads: the write stays queued in libuv
  c.send("GET /big HTTP/1.1\r\n\r\n");
  CHECK(f.pumpUntil([&] { return f.server->stats().requests == 1; }));
  for (int i = 0; i < 20; ++i) uv_run(&f.loop, UV_RUN_NOWAIT);
  f.finish();  // the write callback runs with UV_ECANCELED and frees its buffer
}

TEST_CASE("server: listen errors are reported, not fatal") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    Server a(&loop, [](std::string_view, std::string_view) { return Response{}; });
    CHECK_FALSE(a.listen("localhost:9153").has_value());  // numeric only
    CHECK_FALSE(a.listen("127.0.0.1").has_value());       // port required
    auto ok = a.listen("127.0.0.1:0");
    REQUIRE(ok.has_value());
    CHECK_FALSE(a.listen("127.0.0.1:0").has_value());     // once only

    // A second hdnsd may share the port (SO_REUSEPORT, for restarts), but a port held by
    // another program without SO_REUSEPORT is "in use": that error must come back.
    int other = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(other >= 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(other, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
    REQUIRE(::listen(other, 1) == 0);
    socklen_t len = sizeof sin;
    REQUIRE(getsockname(other, reinterpret_cast<sockaddr*>(&sin), &len) == 0);
    Server b(&loop, [](std::string_view, std::string_view) { return Response{}; });
    auto busy = b.listen("127.0.0.1:" + std::to_string(ntohs(sin.sin_port)));
    REQUIRE_FALSE(busy.has_value());
    CHECK(busy.error().find("cannot listen on") != std::string::npos);
    CHECK(b.port() == 0);
    close(other);

    Server c(&loop, [](std::string_view, std::string_view) { return Response{}; });
    CHECK(c.listen("127.0.0.1:" + std::to_string(a.port())).has_value());  // hdnsd beside hdnsd
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("server: listens on [::1] when the host has IPv6 loopback") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    Server s(&loop, [](std::string_view, std::string_view) { return Response{}; });
    auto r = s.listen("[::1]:0");
    if (r.has_value()) {
      CHECK(s.port() != 0);
    } else {
      MESSAGE("no IPv6 loopback here: " << r.error());
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
