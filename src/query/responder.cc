#include "hdnsd/query/responder.h"

#include <netinet/in.h>

#include <algorithm>
#include <array>

#include "hdnsd/dns/writer.h"
#include "hdnsd/upstream/forwarder.h"

namespace hdnsd::query {
namespace {

using cluster::Lookup;
using dns::Owner;
using dns::Rcode;
using dns::ResponseWriter;
using dns::Section;

Outcome outcomeOf(Rcode rc) noexcept {
  switch (rc) {
    case Rcode::kNoError: return Outcome::kNoError;
    case Rcode::kFormErr: return Outcome::kFormErr;
    case Rcode::kServFail: return Outcome::kServFail;
    case Rcode::kNxDomain: return Outcome::kNxDomain;
    case Rcode::kNotImp: return Outcome::kNotImp;
    case Rcode::kRefused: return Outcome::kRefused;
    case Rcode::kBadVers: return Outcome::kBadVers;
  }
  return Outcome::kServFail;
}

// The records of a compiled set, whole or nothing (a partial RRset must never reach a client,
// RFC 2181 5): an opaque type's as their precompiled wire tails (TYPE .. RDATA, the view's TTL
// in them: one copy each), a name type's through the writer, which compresses the names.
// `pick(j)` is the index of the j-th record to write. The snapshot is only read.
template <class Pick>
bool appendRecords(ResponseWriter& w, Section s, Owner owner, const cluster::RrSet& set, size_t n, Pick&& pick,
                   uint32_t ttl_s) noexcept {
  const cluster::Records& rs = set.rdatas;
  if (rs.hasWireTails()) {
    const size_t nameAt = set.type == dns::kTypeSRV ? cluster::Records::kTailHeader + 6 : 0;  // SRV target
    if (const size_t size = rs.fixedSize(); size != 0) {  // A, AAAA: one size, no offsets to read
      const uint8_t* base = rs.stored(0).data();
      return w.addRRsetWire(s, owner, n, [&](size_t j) { return std::span(base + pick(j) * size, size); }, nameAt,
                            size);
    }
    return w.addRRsetWire(s, owner, n, [&](size_t j) { return rs.stored(pick(j)); }, nameAt);
  }
  auto m = w.mark();
  for (size_t j = 0; j < n; ++j) {
    if (!w.addRecord(s, owner, set.type, dns::kClassIN, ttl_s, rs[pick(j)].view())) {
      w.rollback(m);
      return false;
    }
  }
  return true;
}

bool appendRrset(ResponseWriter& w, Section s, Owner owner, const cluster::RrSet& set, uint32_t ttl_s) noexcept {
  return appendRecords(w, s, owner, set, set.rdatas.size(), [](size_t j) { return j; }, ttl_s);
}

// The answer: k records of `set`, the j-th being pick(j) (the spreading policy's choice), then
// the additional records that go with them (an SRV answer cut to --max-answers carries only
// its own targets' addresses), or all of them when the set does not say. The additional
// section is optional (RFC 2181 9): what does not fit is left out. False if the answer
// records do not fit (then nothing was written).
template <class Pick>
bool writeAnswer(ResponseWriter& w, Owner owner, const cluster::RrSet& set, std::span<const cluster::Extra> extras,
                 size_t k, Pick&& pick, uint32_t ttl_s) noexcept {
  if (!appendRecords(w, Section::kAnswer, owner, set, k, pick, ttl_s)) return false;
  if (extras.empty()) return true;
  auto one = [&](const cluster::Extra& e) {
    if (e.rrset) appendRrset(w, Section::kAdditional, Owner::name(e.ownerWire), *e.rrset, ttl_s);
  };
  const auto& ranges = set.spread().extras;
  if (ranges.size() != set.rdatas.size()) {
    for (const auto& e : extras) one(e);
    return true;
  }
  for (size_t j = 0; j < k; ++j) {
    const auto [first, count] = ranges[pick(j)];
    for (uint32_t x = first; x < first + count && x < extras.size(); ++x) one(extras[x]);
  }
  return true;
}

// SOA minimum (the last 4 bytes of its RDATA) caps the negative-caching TTL (RFC 2308 3).
uint32_t soaNegativeTtl(const cluster::RrSet& soa, uint32_t ttl_s) noexcept {
  if (soa.rdatas.empty() || soa.rdatas[0].bytes.size() < 4) return ttl_s;
  const std::string_view b = soa.rdatas[0].bytes;
  uint32_t minimum = dns::getU32(reinterpret_cast<const uint8_t*>(b.data()) + b.size() - 4);
  return minimum < ttl_s ? minimum : ttl_s;
}

// answerFromView's "not ours, forward it" (kNotInZone while a forwarder is set).
constexpr size_t kForward = SIZE_MAX;

// RFC 8482 lets an ANY query be answered with any one RRset; try the ones clients want.
constexpr uint16_t kAnyOrder[] = {dns::kTypeA,   dns::kTypeAAAA, dns::kTypeCNAME, dns::kTypeSRV,
                                  dns::kTypePTR, dns::kTypeTXT,  dns::kTypeSOA};

// RFC 8482 lets an ANY query be answered with any one RRset: the first that exists.
Lookup lookupAny(const cluster::Snapshot& view, const dns::NameKey& name) noexcept {
  for (uint16_t type : kAnyOrder) {
    Lookup found = view.lookup(name, type);
    if (found.kind != Lookup::Kind::kNoData || type == kAnyOrder[std::size(kAnyOrder) - 1]) return found;
  }
  return {};
}

}  // namespace

Responder::Responder(const ResponderOptions& opts, QueryStats& stats) : stats_(stats) {
  setOptions(opts);
}

void Responder::setOptions(const ResponderOptions& opts) {
  zoneWire_.clear();
  dns::textToWire(opts.zone, &zoneWire_);
  ednsUdpSize_ = opts.ednsUdpSize;
  spreader_.setOptions(opts.spread);
  acl_ = Acl(opts.allow);
  maxUdpAmplification_ = opts.maxUdpAmplification;
  autopath_ = opts.autopath;
}

void Responder::setForwarder(upstream::Forwarder* f) noexcept {
  forwarder_ = f;
  if (f) f->setSpreader(&spreader_);
  if (f) f->setAutopath(&Responder::originalAnswerCb, this, &autopathStats_);
  recursionAvailable_ = f && f->enabled();
}

size_t Responder::done(ResponseWriter& w, const dns::Query* q, Transport t, Outcome o) noexcept {
  size_t bucket = q ? size_t(typeBucket(q->qtype)) : size_t(TypeBucket::kOther);
  bump(stats_.queries[size_t(t)][bucket][size_t(o)]);
  if (stats_.tap) report(q, t, o);
  return w.finish();
}

void Responder::report(const dns::Query* q, Transport t, Outcome o) noexcept {
  ops::QueryEvent e;
  e.client = client_ ? client_->addr : nullptr;
  e.transport = uint8_t(t);
  if (q) {
    e.qnameWire = q->qname.wire();
    e.qtype = q->qtype;
  }
  e.outcome = uint8_t(o);
  e.source = source_;
  e.received_ns = received_ns_;
  stats_.tap->onQuery(e);
}

size_t Responder::respond(std::span<const uint8_t> pkt, std::span<uint8_t> out, Transport t,
                          const upstream::Client* client) noexcept {
  // Timed only when someone listens (the daemon always does: the latency histograms).
  received_ns_ = stats_.tap ? ops::monotonicNs() : 0;
  client_ = client;
  source_ = ops::Source::kLocal;
  dns::Query q;
  ResponseWriter w(out);
  w.setEdnsUdpSize(ednsUdpSize_);
  auto parsed = dns::parseQuery(pkt, &q);
  const bool allowed = acl_.allows(client ? client->addr : nullptr);
  if (!allowed && (!parsed || !w.start(pkt, q, dns::kMaxUdpPlain))) {  // not ours to answer: say nothing
    bump(stats_.aclRefused);
    bump(stats_.queries[size_t(t)][size_t(TypeBucket::kOther)][size_t(Outcome::kDropped)]);
    return 0;
  }
  if (!allowed) {  // REFUSED, header and question only: never larger than the query
    bump(stats_.aclRefused);
    w.setRcode(Rcode::kRefused);
    return done(w, &q, t, Outcome::kRefused);
  }
  if (!parsed) {
    bump(stats_.parseErrors[size_t(parsed.error())]);
    if (parsed.error() == dns::ParseError::kShortHeader || parsed.error() == dns::ParseError::kIsResponse) {
      bump(stats_.queries[size_t(t)][size_t(TypeBucket::kOther)][size_t(Outcome::kDropped)]);
      return 0;
    }
    if (!w.startHeaderOnly(pkt, dns::kMaxUdpPlain)) return 0;
    w.setRcode(Rcode::kFormErr);
    return done(w, nullptr, t, Outcome::kFormErr);
  }
  size_t limit = t == Transport::kTcp ? dns::kMaxMessage : dns::udpLimit(q, ednsUdpSize_);
  // Amplification: over UDP the source address can be forged, so an answer may be at most
  // max(512, N × query) bytes; a larger one goes out with TC=1 and the client asks over TCP.
  // 512 is what every DNS server sends anyone (RFC 1035), so only EDNS answers are affected.
  bool capped = false;
  if (t == Transport::kUdp && maxUdpAmplification_ > 0) {
    const size_t cap = std::max<size_t>(dns::kMaxUdpPlain, size_t{maxUdpAmplification_} * pkt.size());
    if (cap < limit) {
      limit = cap;
      capped = true;
    }
  }
  if (limit > out.size()) limit = out.size();
  // Counts answers the amplification cap truncated (those sent later from upstream are not).
  auto sent = [&](size_t n) {
    if (capped && n > 2 && (out[2] & 0x02) != 0) bump(stats_.udpAmplificationCapped);
    return n;
  };

  Rcode rc = Rcode::kNoError;
  if (q.opcode != dns::kOpcodeQuery) {
    rc = Rcode::kNotImp;
  } else if (q.edns.present && q.edns.version != 0) {
    rc = Rcode::kBadVers;
  } else if ((q.qclass != dns::kClassIN && q.qclass != dns::kClassANY) || q.qtype == dns::kTypeAXFR ||
             q.qtype == dns::kTypeIXFR) {
    rc = Rcode::kRefused;
  } else if (recursionAvailable_ && !dns::isAtOrBelow(q.qname.wire(), zoneWire_)) {
    // The forwarder writes the whole answer itself (a cache hit now, an upstream answer later),
    // so no writer is started for it. (start() cannot fail here: a question is at most 271
    // bytes and `limit` at least 512.)
    return sent(forward(pkt, q, out, limit, t, client));
  }
  if (!w.start(pkt, q, limit)) return 0;
  if (recursionAvailable_) w.setFlags(dns::kFlagRA);
  if (rc != Rcode::kNoError) {
    // NOTIMP, BADVERS or REFUSED: written below
  } else if (const cluster::Snapshot* view = snapshot_.get()) {
    // A partial view's unserved names come back as kForward too: routed like any other name
    // (a --stub-zone for the cluster domain, else the default upstreams) and cached negatively.
    size_t n = 0;
    if (autopath_ && client && autopathAnswer(*view, pkt, q, w, out, limit, t, client, &n)) return sent(n);
    n = answerFromView(*view, q, w, t, client);
    return sent(n == kForward ? forward(pkt, q, out, limit, t, client) : n);
  } else {
    // No view yet: a cluster name must not get a wrong NXDOMAIN, so say "try again".
    rc = dns::isAtOrBelow(q.qname.wire(), zoneWire_) ? Rcode::kServFail : Rcode::kRefused;
  }
  w.setRcode(rc);
  return done(w, &q, t, outcomeOf(rc));
}

size_t Responder::answerFromView(const cluster::Snapshot& view, const dns::Query& q, ResponseWriter& w,
                                 Transport t, const upstream::Client* client, Owner owner) noexcept {
  source_ = ops::Source::kView;
  Lookup found = q.qtype == dns::kTypeANY ? lookupAny(view, q.qname) : view.lookup(q.qname, q.qtype);
  // Snapshot::partialZone (--headless-only): the view holds only part of the zone, so a name it
  // lacks may exist (a ClusterIP service): forward it (REFUSED without a forwarder), never NXDOMAIN.
  if (found.kind == Lookup::Kind::kNxDomain && view.partialZone()) found.kind = Lookup::Kind::kNotInZone;

  const uint32_t ttl = view.ttl();
  switch (found.kind) {
    case Lookup::Kind::kNotInZone:
      if (recursionAvailable_) return kForward;  // e.g. a reverse name of an IP we do not know
      source_ = ops::Source::kLocal;
      w.setRcode(Rcode::kRefused);
      return done(w, &q, t, Outcome::kRefused);
    case Lookup::Kind::kAnswer: {
      w.setFlags(dns::kFlagAA);
      // Load spreading (--policy, --max-answers, hdnsd.io/* annotations): which records and
      // in what order. A rotation of the stored order (none, round-robin: the usual) is
      // walked as it is; the other policies write indices into the immutable RrSet, on the
      // stack (16 KiB).
      const cluster::RrSet& set = *found.answer;
      const size_t n = set.rdatas.size();
      const policy::Spreader::Rotation rot = spreader_.rotation(set.spread(), n);
      bool fits;
      if (rot.rotates()) {
        fits = writeAnswer(w, owner, set, found.additional, rot.count, [first = rot.first, n](size_t j) {
          const size_t i = first + j;
          return i < n ? i : i - n;
        }, ttl);
      } else {
        std::array<uint32_t, policy::kMaxOrdered> order;
        const auto clientAddr = client ? client->addressBytes() : std::span<const uint8_t>();
        const size_t k = spreader_.order(set.spread(), n, clientAddr, order);
        fits = writeAnswer(w, owner, set, found.additional, k, [&order](size_t j) { return order[j]; }, ttl);
      }
      if (!fits) {
        // Does not fit in this UDP answer: TC=1 and no records, the client retries over TCP.
        w.setFlags(dns::kFlagTC);
        bump(stats_.truncated[size_t(t)]);
      }
      return done(w, &q, t, Outcome::kNoError);
    }
    case Lookup::Kind::kSynthAddress: {
      w.setFlags(dns::kFlagAA);
      size_t len = found.synthType == dns::kTypeA ? 4 : 16;
      dns::RdataView rd{{reinterpret_cast<const char*>(found.synth), len}, dns::RdataKind::kOpaque};
      w.addRecord(Section::kAnswer, owner, found.synthType, dns::kClassIN, ttl, rd);
      return done(w, &q, t, Outcome::kNoError);
    }
    case Lookup::Kind::kNoData:
    case Lookup::Kind::kNxDomain: {
      w.setFlags(dns::kFlagAA);
      bool nx = found.kind == Lookup::Kind::kNxDomain;
      w.setRcode(nx ? Rcode::kNxDomain : Rcode::kNoError);
      appendRrset(w, Section::kAuthority, Owner::name(view.zoneWire()), view.soa(),
                  soaNegativeTtl(view.soa(), ttl));
      return done(w, &q, t, nx ? Outcome::kNxDomain : Outcome::kNoError);
    }
  }
  return 0;
}

size_t Responder::forward(std::span<const uint8_t> pkt, const dns::Query& q, std::span<uint8_t> out, size_t limit,
                          Transport t, const upstream::Client* client) noexcept {
  Outcome o = Outcome::kDropped;
  bool fromCache = false;
  // A waiter keeps the receipt time: its latency is observed when the upstream answer is sent.
  upstream::Client timed;
  if (client) {
    timed = *client;
    timed.received_ns = received_ns_;
  }
  size_t n = forwarder_->resolve(pkt, q, out.first(limit), limit, client ? &timed : nullptr, &o, &fromCache);
  if (n > 0) {
    bump(stats_.queries[size_t(t)][size_t(typeBucket(q.qtype))][size_t(o)]);
    source_ = fromCache ? ops::Source::kCache : ops::Source::kLocal;
    if (stats_.tap) report(&q, t, o);
  }
  return n;  // 0: pending, the forwarder counts the query when it answers
}

}  // namespace hdnsd::query
