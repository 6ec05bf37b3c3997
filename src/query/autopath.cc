// Responder, --autopath part (see autopath/autopath.h for what and why): the search walk of a
// pod's first search name, answered in one round trip. Loop thread; no allocation (names and the
// rewritten query for X live on the stack), nothing throws.
//
//   client IP ─PodIndex─▶ namespace N; qname = X.N.svc.<zone>, absent from the view
//     ─▶ X.svc.<zone>, X.<zone> (or X itself, when in the zone) exists in the view:
//          AA, qname CNAME target (TTL --ttl), then target's answer as the view gives it
//     ─▶ X outside the zone: Forwarder::resolveAutopath (cache / one upstream query for X):
//          qname CNAME X + X's answer; NXDOMAIN or failure: qname's own NXDOMAIN
//     ─▶ nothing: qname's own NXDOMAIN (the stub walks on, as without autopath)
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "hdnsd/query/responder.h"
#include "hdnsd/upstream/forwarder.h"

namespace hdnsd::query {
namespace {

// The client's query again, for the bare name X (its first xLen bytes of the question name, in
// the client's letter case): same header, same type and class, an OPT with its size and DO.
size_t buildQueryForX(std::span<const uint8_t> pkt, const dns::Query& q, size_t xLen, uint8_t* out,
                      size_t cap) noexcept {
  const size_t need = dns::kHeaderSize + xLen + 1 + 4 + 11;
  if (need > cap || dns::kHeaderSize + xLen > pkt.size()) return 0;
  std::memcpy(out, pkt.data(), dns::kHeaderSize);
  dns::putU16(out + dns::kOffQd, 1);
  dns::putU16(out + dns::kOffAn, 0);
  dns::putU16(out + dns::kOffNs, 0);
  dns::putU16(out + dns::kOffAr, q.edns.present ? 1 : 0);
  size_t pos = dns::kHeaderSize;
  std::memcpy(out + pos, pkt.data() + dns::kHeaderSize, xLen);
  pos += xLen;
  out[pos++] = 0;
  dns::putU16(out + pos, q.qtype);
  dns::putU16(out + pos + 2, q.qclass);
  pos += 4;
  if (q.edns.present) {
    out[pos] = 0;
    dns::putU16(out + pos + 1, dns::kTypeOPT);
    dns::putU16(out + pos + 3, q.edns.udpSize);
    dns::putU32(out + pos + 5, q.edns.dnssecOk ? 0x00008000u : 0u);
    dns::putU16(out + pos + 9, 0);
    pos += 11;
  }
  return pos;
}

}  // namespace

bool Responder::autopathAnswer(const cluster::Snapshot& view, std::span<const uint8_t> pkt, const dns::Query& q,
                               dns::ResponseWriter& w, std::span<uint8_t> out, size_t limit, Transport t,
                               const upstream::Client* client, size_t* n) noexcept {
  const autopath::PodIndex* pods = podIndex_.get();
  // A partial view (--headless-only) cannot tell which search names exist.
  if (pods == nullptr || view.partialZone()) return false;
  const std::string_view ns = pods->namespaceOf(client ? client->addressBytes() : std::span<const uint8_t>());
  if (ns.empty()) return false;
  const uint16_t probeType = q.qtype == dns::kTypeANY ? dns::kTypeA : q.qtype;
  auto exists = [&view, probeType](const dns::NameKey& name) {
    const auto k = view.lookup(name, probeType).kind;
    return k != cluster::Lookup::Kind::kNxDomain && k != cluster::Lookup::Kind::kNotInZone;
  };
  const bool canForward = recursionAvailable_ && forwarder_ != nullptr;
  const autopath::Plan p = autopath::plan(q.qname, ns, zoneWire_, canForward, exists);
  switch (p.step) {
    case autopath::Step::kSkip:
      return false;
    case autopath::Step::kOriginal:
      autopathStats_.count(autopath::Result::kNxDomain);
      return false;  // the view's NXDOMAIN, as usual
    case autopath::Step::kView: {
      w.setFlags(dns::kFlagAA);
      if (!w.addRecord(dns::Section::kAnswer, dns::Owner::question(), dns::kTypeCNAME, dns::kClassIN, view.ttl(),
                       {p.target.wire(), dns::RdataKind::kName})) {
        w.setFlags(dns::kFlagTC);
        bump(stats_.truncated[size_t(t)]);
        *n = done(w, &q, t, Outcome::kNoError);
        return true;
      }
      dns::Query tq = q;  // the target's lookup; counted and reported as the client's type
      tq.qname = p.target;
      autopathStats_.count(autopath::Result::kView);
      *n = answerFromView(view, tq, w, t, client, dns::Owner::name(p.target.wire()));
      return true;
    }
    case autopath::Step::kForward: {
      uint8_t xbuf[dns::kHeaderSize + dns::kMaxNameWire + 4 + 11];
      const size_t xn = buildQueryForX(pkt, q, q.qname.labelOffset(p.xLabels), xbuf, sizeof xbuf);
      dns::Query xq;
      if (xn == 0 || !dns::parseQuery({xbuf, xn}, &xq)) {
        autopathStats_.count(autopath::Result::kNxDomain);
        return false;
      }
      upstream::Client timed = *client;
      timed.received_ns = received_ns_;
      Outcome o = Outcome::kDropped;
      const size_t r = forwarder_->resolveAutopath(pkt, q, {xbuf, xn}, xq, out.first(limit), limit, &timed,
                                                   view.ttl(), &o);
      if (r == upstream::Forwarder::kAnswerOriginal) {
        autopathStats_.count(autopath::Result::kNxDomain);
        return false;
      }
      if (r > 0) {  // from the cache; 0: pending, the forwarder counts it when it answers
        autopathStats_.count(autopath::Result::kUpstream);
        bump(stats_.queries[size_t(t)][size_t(typeBucket(q.qtype))][size_t(o)]);
        source_ = ops::Source::kCache;
        if (stats_.tap) report(&q, t, o);
      }
      *n = r;
      return true;
    }
  }
  return false;
}

size_t Responder::originalAnswerCb(void* self, std::span<const uint8_t> query, std::span<uint8_t> out,
                                   size_t limit) noexcept {
  auto* r = static_cast<Responder*>(self);
  dns::Query q;
  if (!dns::parseQuery(query, &q)) return 0;
  dns::ResponseWriter w(out);
  w.setEdnsUdpSize(r->ednsUdpSize_);
  if (!w.start(query, q, std::min(limit, out.size()))) return 0;
  if (r->recursionAvailable_) w.setFlags(dns::kFlagRA);
  const cluster::Snapshot* view = r->snapshot_.get();
  const auto kind = view ? view->lookup(q.qname, q.qtype == dns::kTypeANY ? dns::kTypeA : q.qtype).kind
                         : cluster::Lookup::Kind::kNotInZone;
  if (kind != cluster::Lookup::Kind::kNxDomain && kind != cluster::Lookup::Kind::kNoData) {
    // The name appeared while X was resolved (or the view went away): let the client ask again.
    w.setRcode(dns::Rcode::kServFail);
    return w.finish();
  }
  w.setFlags(dns::kFlagAA);
  w.setRcode(kind == cluster::Lookup::Kind::kNxDomain ? dns::Rcode::kNxDomain : dns::Rcode::kNoError);
  // The zone SOA, its TTL capped by its MINIMUM (RFC 2308 3), as answerFromView writes it.
  const cluster::RrSet& soa = view->soa();
  uint32_t ttl = view->ttl();
  if (!soa.rdatas.empty() && soa.rdatas[0].bytes.size() >= 4) {
    const auto& b = soa.rdatas[0].bytes;
    ttl = std::min(ttl, dns::getU32(reinterpret_cast<const uint8_t*>(b.data()) + b.size() - 4));
  }
  auto m = w.mark();
  for (const auto& rd : soa.rdatas)
    if (!w.addRecord(dns::Section::kAuthority, dns::Owner::name(view->zoneWire()), soa.type, dns::kClassIN, ttl,
                     rd.view())) {
      w.rollback(m);
      break;
    }
  return w.finish();
}

}  // namespace hdnsd::query
