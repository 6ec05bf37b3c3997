#include "hdnsd/uvx/curl_multi.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "hdnsd/util/log.h"

namespace hdnsd::uvx {

// ---- CurlTransfer -------------------------------------------------------------------------

CurlTransfer::~CurlTransfer() {
  if (multi_ != nullptr) multi_->remove(*this);  // before easy_ is cleaned up
}

Result<void, std::string> CurlTransfer::prepare(const Options& o) {
  easy_.reset(curl_easy_init());
  if (!easy_) return Unexpected{std::string("curl_easy_init failed")};
  headers_.reset();
  for (const auto& h : o.headers) {
    curl_slist* next = curl_slist_append(headers_.get(), h.c_str());
    if (next == nullptr) return Unexpected{std::string("out of memory")};
    (void)headers_.release();
    headers_.reset(next);
  }
  CURL* e = easy_.get();
  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode r) {
    if (rc == CURLE_OK) rc = r;
  };
  set(curl_easy_setopt(e, CURLOPT_URL, o.url.c_str()));
  set(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http"));
  set(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf_));
  set(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
  set(curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_.get()));
  set(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &CurlTransfer::onWriteCb));
  set(curl_easy_setopt(e, CURLOPT_WRITEDATA, this));
  set(curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &CurlTransfer::onHeaderCb));
  set(curl_easy_setopt(e, CURLOPT_HEADERDATA, this));
  set(curl_easy_setopt(e, CURLOPT_PRIVATE, this));
  // TLS: always verified, against the given CA only (the cluster CA, not the system store).
  set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L));
  set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L));
  if (!o.caFile.empty()) set(curl_easy_setopt(e, CURLOPT_CAINFO, o.caFile.c_str()));
  set(curl_easy_setopt(e, CURLOPT_CAPATH, nullptr));
  if (o.http2) set(curl_easy_setopt(e, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_2TLS)));
  // A watch may legitimately be silent for minutes: detect a dead peer with TCP keepalive, not
  // with a low-speed limit.
  set(curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L));
  set(curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L));
  set(curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L));
  set(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o.connectTimeout_ms));
  set(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o.timeout_ms));
  set(curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""));  // gzip if the server offers it
  set(curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L));         // prefer multiplexing over a new connection
  if (rc != CURLE_OK) return Unexpected{std::string("curl option: ") + curl_easy_strerror(rc)};
  status_ = 0;
  retryAfter_s_ = -1;
  headDone_ = false;
  return {};
}

const char* CurlTransfer::httpVersion() const noexcept {
  long v = 0;
  if (easy_) curl_easy_getinfo(easy_.get(), CURLINFO_HTTP_VERSION, &v);
  switch (v) {
    case CURL_HTTP_VERSION_2_0: return "HTTP/2";
    case CURL_HTTP_VERSION_1_1: return "HTTP/1.1";
    case CURL_HTTP_VERSION_1_0: return "HTTP/1.0";
    default: return "HTTP";
  }
}

size_t CurlTransfer::onHeaderCb(char* p, size_t size, size_t n, void* selfp) noexcept {
  auto* self = static_cast<CurlTransfer*>(selfp);
  const size_t len = size * n;
  std::string_view line(p, len);
  if (line.rfind("HTTP/", 0) == 0) {  // a new status line (after a 100 Continue, say)
    self->headDone_ = false;
    self->retryAfter_s_ = -1;
    return len;
  }
  constexpr std::string_view kRetry = "retry-after:";
  if (line.size() > kRetry.size()) {
    bool match = true;
    for (size_t i = 0; i < kRetry.size() && match; ++i)
      match = std::tolower(static_cast<unsigned char>(line[i])) == kRetry[i];
    if (match) {
      // delta-seconds only (RFC 9110 10.2.3); the apiserver sends seconds. An HTTP-date is ignored.
      std::string v(line.substr(kRetry.size()));
      char* end = nullptr;
      long s = std::strtol(v.c_str(), &end, 10);
      if (end != v.c_str() && s >= 0) self->retryAfter_s_ = s;
    }
  }
  if (line == "\r\n" || line == "\n") {
    curl_easy_getinfo(self->easy_.get(), CURLINFO_RESPONSE_CODE, &self->status_);
    if (self->status_ >= 200 && !self->headDone_) {
      self->headDone_ = true;
      if (self->onStatus) self->onStatus(self->status_);
    }
  }
  return len;
}

size_t CurlTransfer::onWriteCb(char* p, size_t size, size_t n, void* selfp) noexcept {
  auto* self = static_cast<CurlTransfer*>(selfp);
  const size_t len = size * n;
  if (!self->onData) return len;
  bool keep = false;
  try {
    keep = self->onData(std::string_view(p, len));
  } catch (...) {
    keep = false;
  }
  return keep ? len : 0;  // 0: CURLE_WRITE_ERROR ends the transfer
}

// ---- CurlMulti ----------------------------------------------------------------------------

CurlMulti::CurlMulti(uv_loop_t* loop) : loop_(loop) {}

CurlMulti::~CurlMulti() { close(); }

Result<void, std::string> CurlMulti::init() {
  static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);  // once per process
  if (global != CURLE_OK) return Unexpected{std::string("curl_global_init: ") + curl_easy_strerror(global)};
  int err = 0;
  timer_ = makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (!timer_) return Unexpected{std::string("uv_timer_init: ") + uv_strerror(err)};
  timer_->data = this;
  multi_.reset(curl_multi_init());
  if (!multi_) return Unexpected{std::string("curl_multi_init failed")};
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &CurlMulti::onSocketCb);
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &CurlMulti::onTimerCb);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_.get(), CURLMOPT_PIPELINING, long(CURLPIPE_MULTIPLEX));
  return {};
}

Result<void, std::string> CurlMulti::add(CurlTransfer& t) {
  if (!multi_ || !t.easy_) return Unexpected{std::string("curl: not initialised")};
  CURLMcode rc = curl_multi_add_handle(multi_.get(), t.easy_.get());
  if (rc != CURLM_OK) return Unexpected{std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc)};
  t.multi_ = this;
  transfers_[t.easy_.get()] = &t;
  return {};
}

void CurlMulti::remove(CurlTransfer& t) noexcept {
  if (t.multi_ != this) return;
  t.multi_ = nullptr;
  transfers_.erase(t.easy_.get());
  if (multi_ && t.easy_) curl_multi_remove_handle(multi_.get(), t.easy_.get());
}

void CurlMulti::close() noexcept {
  for (auto it = transfers_.begin(); it != transfers_.end(); it = transfers_.erase(it)) {
    it->second->multi_ = nullptr;
    if (multi_) curl_multi_remove_handle(multi_.get(), it->first);
  }
  multi_.reset();  // curl_multi_cleanup: may still call onSocketCb (REMOVE) for cached connections
  for (auto& [fd, p] : pollers_)
    if (p->poll) uv_poll_stop(p->poll.get());
  pollers_.clear();
  timer_.reset();
}

int CurlMulti::onSocketCb(CURL*, curl_socket_t fd, int what, void* selfp, void*) noexcept {
  auto* self = static_cast<CurlMulti*>(selfp);
  auto it = self->pollers_.find(fd);
  if (what == CURL_POLL_REMOVE) {
    if (it != self->pollers_.end()) {
      uv_poll_stop(it->second->poll.get());  // now: curl may close the fd when we return
      self->pollers_.erase(it);              // UvPtr closes the handle, freed in the callback
    }
    return 0;
  }
  if (it == self->pollers_.end()) {
    auto p = std::make_unique<Poller>();
    p->fd = fd;
    p->owner = self;
    p->poll = makeHandle<uv_poll_t>(self->loop_, nullptr, uv_poll_init_socket, fd);
    if (!p->poll) {
      LOG_ERROR("curl: cannot poll socket %d", int(fd));
      return -1;
    }
    p->poll->data = p.get();
    it = self->pollers_.emplace(fd, std::move(p)).first;
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(it->second->poll.get(), events, &CurlMulti::onPollCb);
  return 0;
}

int CurlMulti::onTimerCb(CURLM*, long timeout_ms, void* selfp) noexcept {
  auto* self = static_cast<CurlMulti*>(selfp);
  if (!self->timer_) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(self->timer_.get());
    return 0;
  }
  // 0 means "call socket_action now"; doing it from inside this callback would recurse into
  // curl, so do it on the next loop turn (1 ms).
  uv_timer_start(
      self->timer_.get(),
      [](uv_timer_t* t) {
        if (auto* s = static_cast<CurlMulti*>(t->data)) s->action(CURL_SOCKET_TIMEOUT, 0);
      },
      timeout_ms == 0 ? 1 : uint64_t(timeout_ms), 0);
  return 0;
}

void CurlMulti::onPollCb(uv_poll_t* h, int status, int events) noexcept {
  auto* p = static_cast<Poller*>(h->data);
  if (p == nullptr) return;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  p->owner->action(p->fd, flags);
}

void CurlMulti::action(curl_socket_t fd, int flags) noexcept {
  if (!multi_) return;
  int running = 0;
  inAction_ = true;
  curl_multi_socket_action(multi_.get(), fd, flags, &running);
  inAction_ = false;
  drainDone();
}

void CurlMulti::drainDone() noexcept {
  int left = 0;
  while (multi_) {
    CURLMsg* m = curl_multi_info_read(multi_.get(), &left);
    if (m == nullptr) break;
    if (m->msg != CURLMSG_DONE) continue;
    auto it = transfers_.find(m->easy_handle);
    CURLcode code = m->data.result;
    if (it == transfers_.end()) {
      curl_multi_remove_handle(multi_.get(), m->easy_handle);
      continue;
    }
    CurlTransfer* t = it->second;
    remove(*t);  // before onDone, which may destroy t or start a new transfer
    if (t->status_ == 0) curl_easy_getinfo(t->easy_.get(), CURLINFO_RESPONSE_CODE, &t->status_);
    const char* msg = t->errbuf_[0] != '\0' ? t->errbuf_ : curl_easy_strerror(code);
    std::string message(msg);  // errbuf_ dies with t
    // Moved out: onDone may destroy t (and with it the std::function being run).
    auto done = std::move(t->onDone);
    t->onDone = nullptr;
    if (done) done(code, message.c_str());
  }
}

}  // namespace hdnsd::uvx
