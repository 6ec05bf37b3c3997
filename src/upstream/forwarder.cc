#include "hdnsd/policy/forwarded.h"
#include "hdnsd/upstream/forwarder.h"

#include <cstring>
#include <new>
#include <random>

#include "hdnsd/autopath/cname.h"
#include "hdnsd/dns/wire.h"
#include "hdnsd/ops/query_tap.h"
#include "hdnsd/util/log.h"

namespace hdnsd::upstream {
namespace {

constexpr size_t kRcodeLabels = 8;  // NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED other no_answer
constexpr const char* kRcodeNames[kRcodeLabels] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                                   "NOTIMP",  "REFUSED", "other",    "no_answer"};
constexpr size_t kNoAnswer = 7;
// Upstream latency buckets (seconds): a node-local cache's upstream is one hop away (sub-ms)
// or across the internet (tens of ms); the top buckets see timeouts and retries.
constexpr double kLatencyBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

size_t rcodeLabel(uint8_t rc) noexcept { return rc <= 5 ? rc : 6; }

query::Outcome outcomeOfRcode(uint8_t rc) noexcept {
  switch (rc) {
    case 0: return query::Outcome::kNoError;
    case 1: return query::Outcome::kFormErr;
    case 2: return query::Outcome::kServFail;
    case 3: return query::Outcome::kNxDomain;
    case 4: return query::Outcome::kNotImp;
    case 5: return query::Outcome::kRefused;
    default: return query::Outcome::kServFail;
  }
}

uint8_t rcodeOf(std::span<const uint8_t> msg) noexcept {
  return msg.size() >= dns::kHeaderSize ? uint8_t(dns::getU16(msg.data() + dns::kOffFlags) & 0x0F) : 2;
}

bool sameKey(const cache::Key& a, const cache::Key& b) noexcept {
  return a.hash == b.hash && a.qtype == b.qtype && a.qclass == b.qclass && a.dnssecOk == b.dnssecOk &&
         a.name.wire() == b.name.wire();
}

}  // namespace

const char* errorKindName(ErrorKind k) noexcept {
  static constexpr const char* kNames[] = {"timeout",     "servfail",      "refused",           "notimp",
                                           "conn_refused", "bad_answer",   "id_mismatch",       "question_mismatch",
                                           "overloaded",   "waiters_full", "other"};
  return k < ErrorKind::kCount ? kNames[size_t(k)] : "unknown";
}

struct Forwarder::Waiter {
  ClientQuestion cq;
  ReplySink* sink = nullptr;  // nullptr: cancelled
  sockaddr_storage addr{};
  query::Transport transport = query::Transport::kUdp;
  uint64_t received_ns = 0;  // for the latency histogram (ops::QueryTap)
  int32_t next = -1;
  bool autopath = false;     // resolveAutopath: cq is Q, the pending query is X
  uint32_t cnameTtl_s = 0;   // autopath: cap of the CNAME's TTL (the view's TTL)
};

struct Forwarder::Pending {
  Forwarder* owner = nullptr;
  cache::Key key;
  uint64_t start_ns = 0;
  size_t set = 0;
  int32_t index = 0;
  int32_t nextInBucket = -1;
  int32_t firstWaiter = -1;  // also the free-list link while unused
  uint16_t waiterCount = 0;
  uint16_t upstreamId = 0;
  bool inUse = false;
  bool prefetch = false;
};

struct Forwarder::SetState {
  explicit SetState(uv_loop_t* loop) : channel(loop) {}
  UpstreamSet info;
  uvx::AresChannel::Options channelOpts;
  metrics::Counter* rcodes[kRcodeLabels] = {};
  metrics::Counter* errors[size_t(ErrorKind::kCount)] = {};
  metrics::Histogram* latency = nullptr;
  bool needsRebuild = false;
  uvx::AresChannel channel;  // last: destroyed first
};

Forwarder::Forwarder(uv_loop_t* loop, query::QueryStats& stats, cache::Cache* cache) noexcept
    : loop_(loop), stats_(stats), cache_(cache) {}

Forwarder::~Forwarder() { closeNow(); }

Result<void, std::string> Forwarder::configure(const UpstreamPlan& plan, const ForwarderOptions& o,
                                               metrics::Registry& reg) {
  closeNow();
  sets_.clear();
  closing_ = closed_ = false;
  plan_ = plan;
  opts_ = o;
  std::random_device rd;
  rng_ = (uint64_t(rd()) << 32) | rd();
  keySeed_ = {(uint64_t(rd()) << 32) | rd(), (uint64_t(rd()) << 32) | rd()};

  pending_.reset(new Pending[opts_.maxPending]);
  freePending_ = -1;
  for (size_t i = opts_.maxPending; i-- > 0;) {
    pending_[i].owner = this;
    pending_[i].index = int32_t(i);
    pending_[i].firstWaiter = freePending_;
    freePending_ = int32_t(i);
  }
  size_t nb = 1;
  while (nb < opts_.maxPending * 2) nb <<= 1;
  buckets_.assign(nb, -1);
  waiters_.reset(new Waiter[opts_.maxWaiters]);
  freeWaiters_ = -1;
  for (size_t i = opts_.maxWaiters; i-- > 0;) {
    waiters_[i].next = freeWaiters_;
    freeWaiters_ = int32_t(i);
  }
  inFlight_ = 0;
  scratch_.reset(new uint8_t[dns::kMaxMessage]);
  out_.reset(new uint8_t[dns::kMaxMessage + 64]);
  apBuf_.reset(new uint8_t[2 * (dns::kMaxMessage + 64)]);
  int err = 0;
  rebuildTimer_ = uvx::makeHandle<uv_timer_t>(loop_, &err, uv_timer_init);
  if (!rebuildTimer_) return Unexpected{std::string("uv_timer_init: ") + uv_strerror(err)};
  rebuildTimer_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(rebuildTimer_.get()));

  for (const auto& set : plan_.sets()) {
    auto s = std::make_unique<SetState>(loop_);
    s->info = set;
    s->channelOpts = {set.servers, set.tcp, o.timeout_ms, o.tries};
    if (auto r = s->channel.init(s->channelOpts); !r) return Unexpected{"upstream " + set.name + ": " + r.error()};
    metrics::Labels base = {{"upstream", set.name}};
    for (size_t i = 0; i < kRcodeLabels; ++i)
      s->rcodes[i] = &reg.counter("hdnsd_upstream_queries_total",
                                  "Upstream queries finished, by upstream set and the answer's rcode (no_answer: "
                                  "timed out or failed on every server).",
                                  {{"upstream", set.name}, {"rcode", kRcodeNames[i]}});
    for (size_t k = 0; k < size_t(ErrorKind::kCount); ++k)
      s->errors[k] = &reg.counter("hdnsd_upstream_errors_total",
                                  "Upstream failures by kind: timeout, servfail/refused/notimp (from every server), "
                                  "conn_refused, bad_answer, id_mismatch, question_mismatch, overloaded (in-flight "
                                  "table full), waiters_full (too many clients on one query), other.",
                                  {{"upstream", set.name}, {"kind", errorKindName(ErrorKind(k))}});
    s->latency = &reg.histogram("hdnsd_upstream_latency_seconds",
                                "Time from sending an upstream query to its answer or failure, by upstream set.",
                                kLatencyBuckets, base);
    std::string servers;
    for (const auto& a : set.servers) servers += (servers.empty() ? "" : ",") + a.text();
    LOG_INFO("upstream %s: %s%s", set.name.c_str(), servers.c_str(), set.tcp ? " (tcp)" : "");
    sets_.push_back(std::move(s));
  }
  return {};
}

uint16_t Forwarder::randomId() noexcept {
  // splitmix64: IDs unpredictable enough for a loopback/cluster hop, no syscall per query.
  uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return uint16_t(z ^ (z >> 31));
}

size_t Forwarder::resolve(std::span<const uint8_t> pkt, const dns::Query& q, std::span<uint8_t> out, size_t limit,
                          const Client* client, query::Outcome* outcome, bool* fromCache) noexcept {
  ClientQuestion cq;
  auto answerNow = [&](uint8_t rcode) {
    captureClient(pkt, q, limit, &cq);
    *outcome = outcomeOfRcode(rcode);
    return writeRcode(out, cq, q.qtype, q.qclass, rcode, opts_.ednsUdpSize);
  };
  if (q.qtype == dns::kTypeAAAA && opts_.aaaa == config::Config::Aaaa::kNoData) return answerNow(0);  // NODATA
  const size_t set = plan_.route(q.qname.wire());
  if (set == UpstreamPlan::kNone || sets_.empty()) return answerNow(5);  // REFUSED: nowhere to forward
  cache::Key key = cache_ ? cache_->makeKey(q) : cache::Key::of(q, keySeed_);
  if (cache_) {
    auto r = cache_->lookup(key, pkt, q, now_ms(), out, limit);
    if (r.status != cache::Status::kMiss) {
      if (spreader_ && r.rrsetCount > 0) policy::rotateCachedAnswer(out.first(r.size), r, *spreader_, key.hash);
      if (r.prefetch && !closing_ && !findPending(key)) {
        // Refresh in the background: no waiter, the answer only refills the cache.
        if (Pending* p = startPending(key, q, set, true)) {
          ++prefetches_;
          uint8_t qbuf[dns::kHeaderSize + dns::kMaxNameWire + 4 + 11];
          size_t n = buildUpstreamQuery(q, p->upstreamId, qbuf);
          ++inFlight_;
          sets_[set]->channel.send(qbuf, n, onAnswerCb, p);
        }
      }
      *outcome = outcomeOfRcode(r.rcode);
      if (fromCache) *fromCache = true;
      return r.size;
    }
  }
  if (closing_ || !client || !client->sink) return answerNow(2);
  if (Pending* p = findPending(key)) {
    if (p->waiterCount >= opts_.maxWaitersPerQuery || !addWaiter(p, pkt, q, limit, *client)) {
      countError(set, ErrorKind::kWaitersFull);
      return answerNow(2);
    }
    ++coalesced_;
    *outcome = query::Outcome::kDropped;
    return 0;
  }
  Pending* p = startPending(key, q, set, false);
  if (!p) {
    countError(set, ErrorKind::kOverloaded);
    return answerNow(2);
  }
  if (!addWaiter(p, pkt, q, limit, *client)) {
    finish(p);
    countError(set, ErrorKind::kWaitersFull);
    return answerNow(2);
  }
  uint8_t qbuf[dns::kHeaderSize + dns::kMaxNameWire + 4 + 11];
  size_t n = buildUpstreamQuery(q, p->upstreamId, qbuf);
  ++inFlight_;
  // The callback may run inside send (no server, no memory): p must not be touched after it.
  sets_[set]->channel.send(qbuf, n, onAnswerCb, p);
  *outcome = query::Outcome::kDropped;
  return 0;
}

size_t Forwarder::resolveAutopath(std::span<const uint8_t> pkt, const dns::Query& q, std::span<const uint8_t> xpkt,
                                  const dns::Query& xq, std::span<uint8_t> out, size_t limit, const Client* client,
                                  uint32_t cnameTtlCap_s, query::Outcome* outcome) noexcept {
  const size_t set = plan_.route(xq.qname.wire());
  if (set == UpstreamPlan::kNone || sets_.empty() || closing_ || !apBuf_) return kAnswerOriginal;
  if (xq.qtype == dns::kTypeAAAA && opts_.aaaa == config::Config::Aaaa::kNoData) return kAnswerOriginal;
  const cache::Key key = cache_ ? cache_->makeKey(xq) : cache::Key::of(xq, keySeed_);
  if (cache_) {
    // X's answer into the first half of apBuf_ (no client limit: the CNAME makes it larger
    // anyway; finishForClient truncates for this client), the client's into the second half.
    std::span<uint8_t> xout(apBuf_.get(), dns::kMaxMessage + 64);
    std::span<uint8_t> mine(apBuf_.get() + dns::kMaxMessage + 64, dns::kMaxMessage + 64);
    auto r = cache_->lookup(key, xpkt, xq, now_ms(), xout, dns::kMaxMessage);
    if (r.status != cache::Status::kMiss) {
      if (r.rcode != 0 || r.truncated) return kAnswerOriginal;
      if (spreader_) policy::rotateCachedAnswer(xout.first(r.size), r, *spreader_, key.hash);
      ClientQuestion cq;
      captureClient(pkt, q, limit, &cq);
      uint8_t question[dns::kMaxNameWire + 4];
      std::memcpy(question, cq.name, cq.nameLen);
      dns::putU16(question + cq.nameLen, q.qtype);
      dns::putU16(question + cq.nameLen + 2, q.qclass);
      size_t n = cq.nameLen > 0 ? autopath::prependCname(xout.first(r.size), {question, size_t(cq.nameLen) + 4},
                                                         cnameTtlCap_s, mine.first(dns::kMaxMessage))
                                : 0;
      if (n > 0) n = finishForClient(mine, n, cq, opts_.ednsUdpSize);
      if (n == 0 || n > out.size()) return kAnswerOriginal;
      std::memcpy(out.data(), mine.data(), n);
      *outcome = outcomeOfRcode(rcodeOf(out.first(n)));
      return n;
    }
  }
  if (!client || !client->sink) return kAnswerOriginal;
  Pending* p = findPending(key);
  const bool inFlight = p != nullptr;
  if (p) {
    if (p->waiterCount >= opts_.maxWaitersPerQuery || !addWaiter(p, pkt, q, limit, *client)) {
      countError(set, ErrorKind::kWaitersFull);
      return kAnswerOriginal;
    }
    ++coalesced_;
  } else {
    p = startPending(key, xq, set, false);
    if (!p) {
      countError(set, ErrorKind::kOverloaded);
      return kAnswerOriginal;
    }
    if (!addWaiter(p, pkt, q, limit, *client)) {
      finish(p);
      countError(set, ErrorKind::kWaitersFull);
      return kAnswerOriginal;
    }
  }
  Waiter& w = waiters_[p->firstWaiter];  // addWaiter puts the new waiter first
  w.autopath = true;
  w.cnameTtl_s = cnameTtlCap_s;
  *outcome = query::Outcome::kDropped;
  if (inFlight) return 0;  // coalesced onto a query already in flight (X asked plainly, or prefetched)
  uint8_t qbuf[dns::kHeaderSize + dns::kMaxNameWire + 4 + 11];
  size_t n = buildUpstreamQuery(xq, p->upstreamId, qbuf);
  ++inFlight_;
  // The callback may run inside send: p and w must not be touched after it.
  sets_[set]->channel.send(qbuf, n, onAnswerCb, p);
  return 0;
}

Forwarder::Pending* Forwarder::findPending(const cache::Key& key) noexcept {
  if (buckets_.empty()) return nullptr;
  for (int32_t i = buckets_[key.hash & (buckets_.size() - 1)]; i >= 0; i = pending_[i].nextInBucket)
    if (sameKey(pending_[i].key, key)) return &pending_[i];
  return nullptr;
}

Forwarder::Pending* Forwarder::startPending(const cache::Key& key, const dns::Query&, size_t set,
                                            bool prefetch) noexcept {
  if (freePending_ < 0) return nullptr;
  Pending* p = &pending_[freePending_];
  freePending_ = p->firstWaiter;
  p->key = key;
  p->set = set;
  p->start_ns = uv_hrtime();
  p->firstWaiter = -1;
  p->waiterCount = 0;
  p->upstreamId = randomId();
  p->inUse = true;
  p->prefetch = prefetch;
  int32_t& head = buckets_[key.hash & (buckets_.size() - 1)];
  p->nextInBucket = head;
  head = p->index;
  return p;
}

bool Forwarder::addWaiter(Pending* p, std::span<const uint8_t> pkt, const dns::Query& q, size_t limit,
                          const Client& c) noexcept {
  if (freeWaiters_ < 0) return false;
  int32_t wi = freeWaiters_;
  Waiter& w = waiters_[wi];
  freeWaiters_ = w.next;
  captureClient(pkt, q, limit, &w.cq);
  w.sink = c.sink;
  w.transport = c.transport;
  w.received_ns = c.received_ns;
  w.autopath = false;
  if (c.addr) {
    size_t len = c.addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    std::memcpy(&w.addr, c.addr, len);
  } else {
    w.addr.ss_family = AF_UNSPEC;
  }
  w.next = p->firstWaiter;
  p->firstWaiter = wi;
  ++p->waiterCount;
  ++c.sink->waiting;
  return true;
}

void Forwarder::finish(Pending* p) noexcept {
  for (int32_t wi = p->firstWaiter; wi >= 0;) {
    Waiter& w = waiters_[wi];
    int32_t next = w.next;
    if (w.sink) --w.sink->waiting;
    w.sink = nullptr;
    w.next = freeWaiters_;
    freeWaiters_ = wi;
    wi = next;
  }
  int32_t* link = &buckets_[p->key.hash & (buckets_.size() - 1)];
  while (*link >= 0 && *link != p->index) link = &pending_[*link].nextInBucket;
  if (*link == p->index) *link = p->nextInBucket;
  p->inUse = false;
  p->nextInBucket = -1;
  p->firstWaiter = freePending_;
  freePending_ = p->index;
}

void Forwarder::cancel(ReplySink* sink) noexcept {
  if (!sink || sink->waiting == 0 || !pending_) return;
  for (size_t i = 0; i < opts_.maxPending && sink->waiting > 0; ++i) {
    if (!pending_[i].inUse) continue;
    for (int32_t wi = pending_[i].firstWaiter; wi >= 0; wi = waiters_[wi].next)
      if (waiters_[wi].sink == sink) {
        waiters_[wi].sink = nullptr;
        --sink->waiting;
      }
  }
}

void Forwarder::onAnswerCb(void* arg, int status, int, unsigned char* abuf, int alen) noexcept {
  auto* p = static_cast<Pending*>(arg);
  p->owner->onAnswer(p, status, abuf, abuf && alen > 0 ? size_t(alen) : 0);
}

void Forwarder::onAnswer(Pending* p, int status, const uint8_t* abuf, size_t alen) noexcept {
  --inFlight_;
  SetState& s = *sets_[p->set];
  s.latency->observe(double(uv_hrtime() - p->start_ns) / 1e9);
  if (status == ARES_EDESTRUCTION && closed_) {  // shutting down: nobody to answer
    finish(p);
    return;
  }
  ErrorKind kind = ErrorKind::kOther;
  if (status == ARES_SUCCESS && abuf) {
    auto info = checkAnswer({abuf, alen}, p->upstreamId, p->key.name, p->key.qtype, p->key.qclass);
    if (info && info->extRcodeHigh == 0) {
      s.rcodes[rcodeLabel(info->rcode)]->inc();
      if (cache_) cache_->insert(p->key, {abuf, alen}, now_ms());
      size_t n = stripOpt({abuf, alen}, *info, {scratch_.get(), dns::kMaxMessage});
      if (n > 0) {
        deliverFresh(p, {scratch_.get(), n});
        finish(p);
        maybeCloseChannels();
        return;
      }
      kind = ErrorKind::kBadAnswer;
    } else if (!info) {
      kind = info.error() == AnswerError::kIdMismatch         ? ErrorKind::kIdMismatch
             : info.error() == AnswerError::kQuestionMismatch ? ErrorKind::kQuestionMismatch
                                                              : ErrorKind::kBadAnswer;
    } else {
      kind = ErrorKind::kBadAnswer;  // an extended RCODE we cannot pass on faithfully
    }
  } else {
    switch (status) {
      case ARES_ETIMEOUT: kind = ErrorKind::kTimeout; break;
      case ARES_ESERVFAIL: kind = ErrorKind::kServfail; break;
      case ARES_EREFUSED: kind = ErrorKind::kRefused; break;
      case ARES_ENOTIMP: kind = ErrorKind::kNotImp; break;
      case ARES_ECONNREFUSED: kind = ErrorKind::kConnRefused; break;
      case ARES_EBADRESP: kind = ErrorKind::kBadAnswer; break;
      case ARES_ENOMEM:
        scheduleRebuild(p->set);
        break;
      default: break;
    }
  }
  s.rcodes[kNoAnswer]->inc();
  countError(p->set, kind);
  deliverFailure(p);
  finish(p);
  maybeCloseChannels();
}

void Forwarder::deliverFresh(Pending* p, std::span<const uint8_t> normalized) noexcept {
  std::span<uint8_t> out(out_.get(), dns::kMaxMessage + 64);
  for (int32_t wi = p->firstWaiter; wi >= 0; wi = waiters_[wi].next) {
    Waiter& w = waiters_[wi];
    if (!w.sink) continue;
    if (w.autopath) {
      deliver(w, p->key.qtype, out.first(autopathAnswer(w, p->key.qtype, p->key.qclass, normalized, out)));
      continue;
    }
    std::memcpy(out.data(), normalized.data(), normalized.size());
    size_t n = finishForClient(out, normalized.size(), w.cq, opts_.ednsUdpSize);
    if (n == 0) n = writeServfail(out, w.cq, p->key.qtype, p->key.qclass, opts_.ednsUdpSize);
    deliver(w, p->key.qtype, out.first(n));
  }
}

void Forwarder::deliverFailure(Pending* p) noexcept {
  std::span<uint8_t> out(out_.get(), dns::kMaxMessage + 64);
  for (int32_t wi = p->firstWaiter; wi >= 0; wi = waiters_[wi].next) {
    Waiter& w = waiters_[wi];
    if (!w.sink) continue;
    if (w.autopath) {  // Q's own answer (its NXDOMAIN): the client walks on, then asks X itself
      deliver(w, p->key.qtype, out.first(autopathAnswer(w, p->key.qtype, p->key.qclass, {}, out)));
      continue;
    }
    size_t n = 0;
    if (cache_) {
      // Serve-stale (RFC 8767): the cache writes this client's answer from the expired entry.
      uint8_t qbuf[dns::kHeaderSize + dns::kMaxNameWire + 4 + 11];
      size_t qn = rebuildQuery(w.cq, p->key.qtype, p->key.qclass, qbuf);
      dns::Query q;
      if (qn > 0 && dns::parseQuery({qbuf, qn}, &q)) {
        auto r = cache_->lookup(p->key, {qbuf, qn}, q, now_ms(), out, w.cq.limit, cache::Serve::kStaleToo);
        if (r.status != cache::Status::kMiss) n = r.size;
      }
    }
    if (n == 0) n = writeServfail(out, w.cq, p->key.qtype, p->key.qclass, opts_.ednsUdpSize);
    deliver(w, p->key.qtype, out.first(n));
  }
}

// Both halves of the answer of an autopath waiter (cq: the client's Q; the upstream query was X):
// NOERROR → Q CNAME X + X's records, shaped for the client; else, or if that cannot be written,
// Q's own answer from the Responder (the view's NXDOMAIN). Counted in hdnsd_autopath_hits_total.
size_t Forwarder::autopathAnswer(const Waiter& w, uint16_t qtype, uint16_t qclass, std::span<const uint8_t> normalized,
                                 std::span<uint8_t> out) noexcept {
  if (normalized.size() >= dns::kHeaderSize && rcodeOf(normalized) == 0 && w.cq.nameLen > 0) {
    uint8_t question[dns::kMaxNameWire + 4];
    std::memcpy(question, w.cq.name, w.cq.nameLen);
    dns::putU16(question + w.cq.nameLen, qtype);
    dns::putU16(question + w.cq.nameLen + 2, qclass);
    // out holds 64 KiB + 64: room for the client's OPT after the largest message.
    size_t n = autopath::prependCname(normalized, {question, size_t(w.cq.nameLen) + 4}, w.cnameTtl_s,
                                      out.first(dns::kMaxMessage));
    if (n > 0) n = finishForClient(out, n, w.cq, opts_.ednsUdpSize);
    if (n > 0) {
      if (autopathStats_) autopathStats_->count(autopath::Result::kUpstream);
      return n;
    }
  }
  if (autopathStats_) autopathStats_->count(autopath::Result::kNxDomain);
  uint8_t qbuf[dns::kHeaderSize + dns::kMaxNameWire + 4 + 11];
  const size_t qn = rebuildQuery(w.cq, qtype, qclass, qbuf);
  size_t n = qn > 0 && originalAnswer_ ? originalAnswer_(originalCtx_, {qbuf, qn}, out, w.cq.limit) : 0;
  return n > 0 ? n : writeServfail(out, w.cq, qtype, qclass, opts_.ednsUdpSize);
}

void Forwarder::deliver(Waiter& w, uint16_t qtype, std::span<const uint8_t> bytes) noexcept {
  ReplySink* sink = w.sink;
  // Detach first: delivering may close a TCP connection, whose cancel() must not count it twice.
  w.sink = nullptr;
  --sink->waiting;
  const query::Outcome o = outcomeOfRcode(rcodeOf(bytes));
  query::bump(stats_.queries[size_t(w.transport)][size_t(query::typeBucket(qtype))][size_t(o)]);
  if (stats_.tap) {
    ops::QueryEvent e;
    e.client = w.addr.ss_family == AF_UNSPEC ? nullptr : reinterpret_cast<const sockaddr*>(&w.addr);
    e.transport = uint8_t(w.transport);
    e.qnameWire = {reinterpret_cast<const char*>(w.cq.name), w.cq.nameLen};
    e.qtype = qtype;
    e.outcome = uint8_t(o);
    e.source = ops::Source::kUpstream;
    e.received_ns = w.received_ns;
    stats_.tap->onQuery(e);
  }
  sink->deliverAnswer(w.addr.ss_family == AF_UNSPEC ? nullptr : reinterpret_cast<const sockaddr*>(&w.addr), bytes);
}

void Forwarder::countError(size_t set, ErrorKind k) noexcept {
  if (set < sets_.size()) sets_[set]->errors[size_t(k)]->inc();
}

void Forwarder::scheduleRebuild(size_t set) noexcept {
  if (set >= sets_.size()) return;
  sets_[set]->needsRebuild = true;
  armDeferred();
}

// Channel rebuilds and the final close run on the next loop turn, never inside a c-ares callback.
void Forwarder::armDeferred() noexcept {
  if (!rebuildTimer_) return;
  uv_timer_start(rebuildTimer_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<Forwarder*>(t->data);
    if (self) self->onDeferred();
  }, 0, 0);
}

void Forwarder::onDeferred() noexcept {
  if (closing_) {
    if (inFlight_ == 0) closeNow();
    return;
  }
  for (auto& s : sets_)
    if (s->needsRebuild) {
      s->needsRebuild = false;
      LOG_WARN("upstream %s: rebuilding the c-ares channel", s->info.name.c_str());
      s->channel.destroy();  // in-flight queries fail (EDESTRUCTION): stale or SERVFAIL
      if (auto r = s->channel.init(s->channelOpts); !r) LOG_ERROR("upstream: %s", r.error().c_str());
    }
}

void Forwarder::maybeCloseChannels() noexcept {
  if (closing_ && !closed_ && inFlight_ == 0) armDeferred();
}

void Forwarder::drainThenClose() noexcept {
  closing_ = true;
  if (inFlight_ == 0) closeNow();
}

void Forwarder::closeNow() noexcept {
  closing_ = closed_ = true;
  for (auto& s : sets_) s->channel.destroy();
  rebuildTimer_.reset();
}

}  // namespace hdnsd::upstream
