// A minimal HTTP/1.1 server for the operator endpoints (/health, /ready, /metrics), running on
// the daemon's single libuv loop. It answers small GET/HEAD requests from a Handler; it is not
// a general web server (no request bodies are passed on, no TLS, no chunked responses).
//
// Why http-parser (Debian libhttp-parser 2.9, <http_parser.h>) and not libmicrohttpd: it is a
// callback-based incremental parser with no I/O of its own, so we feed it the bytes straight
// from uv_read callbacks on our loop. libmicrohttpd brings its own threads or select/poll loop,
// which would mean a second event loop, cross-thread access to readiness and metrics state,
// and another shutdown path. With http-parser there is one loop, one thread, one way to stop.
//
// Ownership: the Server owns the listening handle and every Connection; each Connection owns
// its uv_tcp_t and idle uv_timer_t through uvx::UvPtr (memory freed only in the close
// callback). Every uv_write_t is allocated together with the response bytes it sends and frees
// both in its write callback, which libuv still runs (with UV_ECANCELED) when the connection
// closes first; by then handle->data is null, so the callback touches nothing else.
//
// Limits (Limits below) keep a misbehaving client from holding memory or sockets: a cap on
// connections (extra ones are accepted and closed at once, so the backlog keeps draining), on
// request-header bytes (431 then close), on request-body bytes (413 then close), on responses
// queued but not yet written (the parser pauses; reading resumes once they drain), and a
// per-request timeout (the idle timer restarts when a connection is accepted and after each
// response is written, and is not pushed back by partial reads, so a slow trickle of header
// bytes cannot keep a connection open). Malformed requests get 400 then close.
//
// Threads: loop thread only. After close() (or destruction), run the loop until it is idle so
// libuv can deliver the close callbacks that free the handles.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "hdnsd/util/result.h"
#include "hdnsd/uvx/uv_ptr.h"

namespace hdnsd::http {

struct Response {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;  // sent as "Allow:" when non-empty (RFC 9110 §15.5.6 requires it on 405)
};

// Called once per complete request, in order, on the loop thread. `method` is the upper-case
// token ("GET", "HEAD", "POST", ...), `path` the request target's path without the query
// string. For HEAD the server sends the headers of the returned Response (Content-Length
// included) and drops the body, so a Handler treats HEAD like GET. The views die when the call
// returns. A Handler that throws produces a 500.
using Handler = std::function<Response(std::string_view method, std::string_view path)>;

struct Limits {
  size_t maxConnections = 64;
  size_t maxHeaderBytes = 8 * 1024;  // request line + header lines of one request
  size_t maxBodyBytes = 8 * 1024;    // bodies are read and discarded, never buffered
  size_t maxQueuedResponses = 8;     // per connection, written but not yet acknowledged
  uint64_t idleTimeout_ms = 10'000;
};

// Counters for the daemon to export (e.g. via a metrics collector). Loop thread only.
struct ServerStats {
  uint64_t accepted = 0;      // connections taken on
  uint64_t rejected = 0;      // connections closed at once because of maxConnections
  uint64_t requests = 0;      // complete requests answered by the Handler
  uint64_t badRequests = 0;   // 400, 413, 431: the connection was then closed
  uint64_t timeouts = 0;      // connections closed by the idle timer
};

class Connection;  // private, src/http/server.cc

class Server {
 public:
  Server(uv_loop_t* loop, Handler handler, Limits limits = {});
  ~Server();  // close()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on "127.0.0.1:9153" or "[::1]:9153" (numeric only). Port 0 picks a free
  // port, see port(). Once only; on error nothing is left listening.
  Result<void, std::string> listen(const std::string& hostPort);

  // Stops accepting and closes every connection (responses still queued are dropped). Safe to
  // call twice. Not from inside a Handler.
  void close();

  uint16_t port() const noexcept { return port_; }
  size_t connectionCount() const noexcept { return conns_.size(); }
  const ServerStats& stats() const noexcept { return stats_; }

 private:
  friend class Connection;
  static void onConnectionCb(uv_stream_t* server, int status) noexcept;
  void onConnection(int status);
  void closeConnection(Connection* c);  // deletes c; caller returns right after

  uv_loop_t* loop_;
  Handler handler_;
  Limits limits_;
  uvx::UvPtr<uv_tcp_t> listener_;
  uint16_t port_ = 0;
  ServerStats stats_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> conns_;
};

}  // namespace hdnsd::http
