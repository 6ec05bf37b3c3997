#include "hdnsd/http/server.h"

#include <http_parser.h>

#include <array>
#include <ctime>
#include <exception>

#include "hdnsd/util/sock_addr.h"
#include "hdnsd/uvx/reuse_port.h"

namespace hdnsd::http {

namespace {

// A write request and the bytes it sends, freed together in the write callback.
struct WriteReq {
  uv_write_t req{};
  std::string bytes;
};

// "Date" is required from an origin server with a clock (RFC 9110 §6.6.1), IMF-fixdate form.
void appendDate(std::string& out) {
  char buf[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  out += "Date: ";
  out.append(buf, n);
  out += "\r\n";
}

enum class ConnHeader { kNone, kClose, kKeepAlive };

std::string serialize(const Response& r, bool head, ConnHeader conn) {
  std::string out;
  out.reserve(160 + (head ? 0 : r.body.size()));
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += http_status_str(static_cast<http_status>(r.status));
  out += "\r\n";
  appendDate(out);
  out += "Content-Type: ";
  out += r.contentType;
  out += "\r\nContent-Length: ";
  out += std::to_string(r.body.size());  // for HEAD: the length GET would send (RFC 9110 §9.3.2)
  out += "\r\n";
  if (!r.allow.empty()) {
    out += "Allow: ";
    out += r.allow;
    out += "\r\n";
  }
  if (conn == ConnHeader::kClose) out += "Connection: close\r\n";
  if (conn == ConnHeader::kKeepAlive) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  if (!head) out += r.body;
  return out;
}

}  // namespace

// One accepted client. Lives in Server::conns_; deleted only by Server::closeConnection, and
// only from a top-level libuv callback (never while http_parser_execute is on the stack).
class Connection {
 public:
  Connection(Server* server, uvx::UvPtr<uv_tcp_t> tcp, uvx::UvPtr<uv_timer_t> timer)
      : server_(server), tcp_(std::move(tcp)), timer_(std::move(timer)) {
    tcp_->data = this;
    timer_->data = this;
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
  }

  // May delete this.
  void start() {
    uv_tcp_nodelay(tcp_.get(), 1);  // small responses, possibly pipelined: don't wait for ACKs
    restartTimer();
    settle();
  }

 private:
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(tcp_.get()); }
  const Limits& limits() const { return server_->limits_; }

  // ---- libuv trampolines: the owner is in handle->data, null once the handle is closing ----
  static void onAllocCb(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    auto* c = static_cast<Connection*>(h->data);
    if (!c) {
      *buf = uv_buf_init(nullptr, 0);  // libuv then reports UV_ENOBUFS; we are closing anyway
      return;
    }
    // One read at a time per stream, and onRead consumes the bytes before the next alloc.
    *buf = uv_buf_init(c->rbuf_.data(), static_cast<unsigned>(c->rbuf_.size()));
  }
  static void onReadCb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    if (auto* c = static_cast<Connection*>(s->data)) c->onRead(nread, buf);
  }
  static void onWriteCb(uv_write_t* req, int status) noexcept {
    auto* c = static_cast<Connection*>(req->handle->data);  // handle memory outlives this call
    delete reinterpret_cast<WriteReq*>(req);
    if (c) c->onWrite(status);
  }
  static void onTimerCb(uv_timer_t* t) noexcept {
    if (auto* c = static_cast<Connection*>(t->data)) c->onTimeout();
  }

  // ---- http_parser trampolines ----
  static Connection* self(http_parser* p) { return static_cast<Connection*>(p->data); }
  static int onMessageBeginCb(http_parser* p) noexcept { return self(p)->onMessageBegin(); }
  static int onUrlCb(http_parser* p, const char* at, size_t len) noexcept {
    return self(p)->onUrl(at, len);
  }
  static int onHeaderFieldCb(http_parser* p, const char*, size_t len) noexcept {
    return self(p)->onHeaderBytes(len, /*field=*/true);
  }
  static int onHeaderValueCb(http_parser* p, const char*, size_t len) noexcept {
    return self(p)->onHeaderBytes(len, /*field=*/false);
  }
  static int onBodyCb(http_parser* p, const char*, size_t len) noexcept {
    return self(p)->onBody(len);
  }
  static int onMessageCompleteCb(http_parser* p) noexcept { return self(p)->onMessageComplete(); }

  static const http_parser_settings& settings() {
    static const http_parser_settings s = [] {
      http_parser_settings st;
      http_parser_settings_init(&st);
      st.on_message_begin = onMessageBeginCb;
      st.on_url = onUrlCb;
      st.on_header_field = onHeaderFieldCb;
      st.on_header_value = onHeaderValueCb;
      st.on_body = onBodyCb;
      st.on_message_complete = onMessageCompleteCb;
      return st;
    }();
    return s;
  }

  // ---- parser callbacks: they only record state; settle() acts on it afterwards ----
  int onMessageBegin() {
    url_.clear();
    headerBytes_ = 16;  // method, spaces, "HTTP/1.1", CRLF: the url callback counts the rest
    bodyBytes_ = 0;
    inField_ = false;
    return 0;
  }
  int onUrl(const char* at, size_t len) {
    if (!countHeader(len)) return 1;
    url_.append(at, len);
    return 0;
  }
  // http_parser does not buffer: it hands us pieces, so count them (plus ": " and CRLF once
  // per field) against the cap instead of waiting for a line to end.
  int onHeaderBytes(size_t len, bool field) {
    if (field && !inField_) len += 4;
    inField_ = field;
    return countHeader(len) ? 0 : 1;
  }
  bool countHeader(size_t len) {
    headerBytes_ += len;
    if (headerBytes_ <= limits().maxHeaderBytes) return true;
    failStatus_ = 431;  // RFC 6585 §5
    return false;
  }
  int onBody(size_t len) {
    bodyBytes_ += len;  // read and dropped: no endpoint takes a body
    if (bodyBytes_ <= limits().maxBodyBytes) return 0;
    failStatus_ = 413;
    return 1;
  }
  int onMessageComplete() {
    http_parser_url u;
    http_parser_url_init(&u);
    const bool connect = parser_.method == HTTP_CONNECT;
    if (http_parser_parse_url(url_.data(), url_.size(), connect, &u) != 0) {
      failStatus_ = 400;
      return 1;
    }
    std::string_view path;
    if (u.field_set & (1 << UF_PATH)) {
      path = std::string_view(url_).substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    }
    const auto method = static_cast<http_method>(parser_.method);
    Response r;
    try {
      r = server_->handler_(http_method_str(method), path);
    } catch (const std::exception&) {
      r = Response{500, "text/plain; charset=utf-8", "internal error\n", {}};
    }
    ++server_->stats_.requests;
    const bool keepAlive = http_should_keep_alive(&parser_) != 0;
    ConnHeader ch = ConnHeader::kNone;
    if (!keepAlive) ch = ConnHeader::kClose;
    // HTTP/1.0 keeps a connection only when asked to, and must be told we agreed.
    else if (parser_.http_major == 1 && parser_.http_minor == 0) ch = ConnHeader::kKeepAlive;
    send(serialize(r, method == HTTP_HEAD, ch));
    if (!keepAlive || broken_) {
      closeAfterWrite_ = true;
      http_parser_pause(&parser_, 1);  // anything after this request is dropped
    } else if (queued_ >= limits().maxQueuedResponses) {
      paused_ = true;  // backpressure: resume once the client has read our answers
      http_parser_pause(&parser_, 1);
    }
    return 0;
  }

  // ---- I/O ----
  void send(std::string bytes) {
    auto* w = new WriteReq;
    w->bytes = std::move(bytes);
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    if (uv_write(&w->req, stream(), &buf, 1, onWriteCb) != 0) {
      delete w;  // no callback is owed for a write that failed to start
      broken_ = true;
      return;
    }
    ++queued_;
  }

  // Runs the parser over bytes; afterwards paused_/closeAfterWrite_/broken_ say what next.
  void feed(const char* data, size_t len) {
    size_t n = http_parser_execute(&parser_, &settings(), data, len);
    const auto err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) {
      if (paused_ && !closeAfterWrite_) pending_.assign(data + n, len - n);
      return;
    }
    if (err != HPE_OK) {
      int status = failStatus_ ? failStatus_ : err == HPE_HEADER_OVERFLOW ? 431 : 400;
      ++server_->stats_.badRequests;
      Response r{status, "text/plain; charset=utf-8", "", {}};
      r.body = std::to_string(status) + " " + http_status_str(static_cast<http_status>(status)) + "\n";
      send(serialize(r, false, ConnHeader::kClose));
      closeAfterWrite_ = true;
      return;
    }
    if (parser_.upgrade) closeAfterWrite_ = true;  // CONNECT / Upgrade: we speak no other protocol
  }

  void onRead(ssize_t nread, const uv_buf_t* buf) {
    if (nread == 0) return;  // EAGAIN
    if (nread < 0) {
      if (nread != UV_EOF) {
        server_->closeConnection(this);
        return;
      }
      closeAfterWrite_ = true;  // the client has sent everything: answer, then close
    } else {
      feed(buf->base, static_cast<size_t>(nread));
    }
    settle();
  }

  void onWrite(int status) {
    --queued_;
    if (status < 0) {  // peer reset, or UV_ECANCELED (not seen here: data is null then)
      server_->closeConnection(this);
      return;
    }
    if (queued_ == 0) restartTimer();  // the next request gets a full timeout from now
    if (paused_ && queued_ == 0 && !closeAfterWrite_) {
      paused_ = false;
      http_parser_pause(&parser_, 0);
      std::string data = std::move(pending_);
      pending_.clear();
      feed(data.data(), data.size());
    }
    settle();
  }

  void onTimeout() {
    ++server_->stats_.timeouts;
    server_->closeConnection(this);
  }

  void restartTimer() {
    uv_timer_start(timer_.get(), onTimerCb, server_->limits_.idleTimeout_ms, 0);
  }

  // Reconciles reading and closing with the state the parser left. May delete this.
  void settle() {
    if (broken_) {
      server_->closeConnection(this);
      return;
    }
    const bool wantRead = !closeAfterWrite_ && !paused_;
    if (wantRead && !reading_) {
      if (uv_read_start(stream(), onAllocCb, onReadCb) != 0) {
        server_->closeConnection(this);
        return;
      }
      reading_ = true;
    } else if (!wantRead && reading_) {
      uv_read_stop(stream());
      reading_ = false;
    }
    if (closeAfterWrite_ && queued_ == 0) server_->closeConnection(this);
  }

  Server* server_;
  uvx::UvPtr<uv_tcp_t> tcp_;
  uvx::UvPtr<uv_timer_t> timer_;
  http_parser parser_{};
  std::string url_;             // the request target, at most maxHeaderBytes
  std::string pending_;         // unparsed bytes kept while paused_
  size_t headerBytes_ = 0;
  size_t bodyBytes_ = 0;
  size_t queued_ = 0;           // writes started, callback not yet run
  int failStatus_ = 0;          // why a parser callback refused the request
  bool inField_ = false;
  bool reading_ = false;
  bool paused_ = false;         // too many queued responses: parser paused, reading stopped
  bool closeAfterWrite_ = false;
  bool broken_ = false;         // a write could not start: close now
  std::array<char, 4096> rbuf_;
};

Server::Server(uv_loop_t* loop, Handler handler, Limits limits)
    : loop_(loop), handler_(std::move(handler)), limits_(limits) {}

Server::~Server() { close(); }

Result<void, std::string> Server::listen(const std::string& hostPort) {
  if (listener_) return Unexpected{std::string("http: already listening")};
  auto addr = SockAddr::parse(hostPort);
  if (!addr) {
    return Unexpected{"http: bad address '" + hostPort +
                      "' (want ADDR:PORT, e.g. 127.0.0.1:9153 or [::1]:9153)"};
  }
  int err = 0;
  auto l = uvx::makeHandle<uv_tcp_t>(loop_, &err, uv_tcp_init_ex, static_cast<unsigned>(addr->family()));
  if (!l) return Unexpected{std::string("http: uv_tcp_init: ") + uv_strerror(err)};
  l->data = this;
  // A DaemonSet surge starts the new hdnsd on the host network beside the old one: both must be
  // able to hold the probe/metrics port (the DNS ports do the same).
  uvx::enableReusePort(reinterpret_cast<uv_handle_t*>(l.get()));
  // libuv defers EADDRINUSE from bind to listen, so both are checked.
  int rc = uv_tcp_bind(l.get(), addr->get(), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(l.get()), 128, onConnectionCb);
  if (rc != 0) return Unexpected{"http: cannot listen on " + hostPort + ": " + uv_strerror(rc)};
  sockaddr_storage ss{};
  int len = sizeof ss;
  rc = uv_tcp_getsockname(l.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc != 0) return Unexpected{std::string("http: getsockname: ") + uv_strerror(rc)};
  SockAddr bound;
  bound.ss = ss;
  port_ = bound.port();
  listener_ = std::move(l);
  return {};
}

void Server::close() {
  listener_.reset();  // uv_close: no more accepts
  conns_.clear();     // each connection's handles close; queued writes come back cancelled
}

void Server::onConnectionCb(uv_stream_t* server, int status) noexcept {
  if (auto* s = static_cast<Server*>(server->data)) s->onConnection(status);
}

void Server::onConnection(int status) {
  if (status < 0) return;  // e.g. EMFILE; libuv tries again on the next readiness
  int err = 0;
  auto tcp = uvx::makeHandle<uv_tcp_t>(loop_, &err, uv_tcp_init);
  if (!tcp) return;
  // Accept even over the cap, then close: a connection left unaccepted makes libuv stop
  // watching the listener, which would block every later client too.
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_.get()),
                reinterpret_cast<uv_stream_t*>(tcp.get())) != 0) {
    return;
  }
  if (conns_.size() >= limits_.maxConnections) {
    ++stats_.rejected;
    return;  // tcp's deleter closes the socket
  }
  auto timer = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (!timer) return;
  auto c = std::make_unique<Connection>(this, std::move(tcp), std::move(timer));
  Connection* raw = c.get();
  conns_.emplace(raw, std::move(c));
  ++stats_.accepted;
  raw->start();
}

void Server::closeConnection(Connection* c) { conns_.erase(c); }

}  // namespace hdnsd::http
