#include "hdnsd/ops/query_observer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>

#include "hdnsd/query/stats.h"

namespace hdnsd::ops {
namespace {

size_t appendRaw(char* out, size_t pos, size_t cap, std::string_view s) noexcept {
  for (char c : s)
    if (pos < cap) out[pos++] = c;
  return pos;
}

// "127.0.0.1:53124", "[::1]:53124" or "-".
size_t appendClient(char* out, size_t pos, size_t cap, const sockaddr* sa) noexcept {
  char host[INET6_ADDRSTRLEN] = "-";
  unsigned port = 0;
  bool v6 = false;
  if (sa && sa->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (sa && sa->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
    v6 = true;
  } else {
    return appendRaw(out, pos, cap, "-");
  }
  char buf[INET6_ADDRSTRLEN + 10];
  int n = std::snprintf(buf, sizeof buf, v6 ? "[%s]:%u" : "%s:%u", host, port);
  return appendRaw(out, pos, cap, std::string_view(buf, n > 0 ? size_t(n) : 0));
}

}  // namespace

const char* sourceName(Source s) noexcept {
  static constexpr const char* kNames[] = {"view", "cache", "upstream", "local"};
  return s < Source::kCount ? kNames[size_t(s)] : "unknown";
}

size_t appendNameText(char* out, size_t pos, size_t cap, std::string_view wire) noexcept {
  if (wire.empty()) return appendRaw(out, pos, cap, "-");
  if (wire.size() == 1) return appendRaw(out, pos, cap, ".");
  size_t i = 0;
  while (i < wire.size()) {
    size_t len = static_cast<uint8_t>(wire[i++]);
    if (len == 0 || i + len > wire.size()) break;
    for (size_t k = 0; k < len; ++k) {
      unsigned char c = static_cast<unsigned char>(wire[i + k]);
      if (c > 0x20 && c < 0x7f && c != '.' && c != '\\' && c != '"') {
        if (pos < cap) out[pos++] = static_cast<char>(c);
      } else if (pos + 4 <= cap) {
        out[pos++] = '\\';
        out[pos++] = static_cast<char>('0' + c / 100);
        out[pos++] = static_cast<char>('0' + c / 10 % 10);
        out[pos++] = static_cast<char>('0' + c % 10);
      }
    }
    i += len;
    if (pos < cap) out[pos++] = '.';
  }
  return pos;
}

size_t appendTypeText(char* out, size_t pos, size_t cap, uint16_t qtype) noexcept {
  const char* name = nullptr;
  switch (qtype) {
    case 1: name = "A"; break;
    case 2: name = "NS"; break;
    case 5: name = "CNAME"; break;
    case 6: name = "SOA"; break;
    case 12: name = "PTR"; break;
    case 15: name = "MX"; break;
    case 16: name = "TXT"; break;
    case 28: name = "AAAA"; break;
    case 33: name = "SRV"; break;
    case 35: name = "NAPTR"; break;
    case 43: name = "DS"; break;
    case 48: name = "DNSKEY"; break;
    case 64: name = "SVCB"; break;
    case 65: name = "HTTPS"; break;
    case 251: name = "IXFR"; break;
    case 252: name = "AXFR"; break;
    case 255: name = "ANY"; break;
    default: break;
  }
  if (name) return appendRaw(out, pos, cap, name);
  char buf[16];
  int n = std::snprintf(buf, sizeof buf, "TYPE%u", unsigned(qtype));
  return appendRaw(out, pos, cap, std::string_view(buf, n > 0 ? size_t(n) : 0));
}

QueryObserver::QueryObserver(metrics::Registry& reg) {
  for (size_t s = 0; s < size_t(Source::kCount); ++s)
    durations_[s] = &reg.histogram(
        "hdnsd_dns_query_duration_seconds",
        "Time from reading a DNS query to sending its answer, by where the answer came from "
        "(view, cache, upstream, local).",
        kQueryDurationBuckets, {{"source", sourceName(Source(s))}});
}

QueryObserver::QueryObserver() {
  for (size_t s = 0; s < size_t(Source::kCount); ++s) {
    own_[s] = std::make_unique<metrics::Histogram>(kQueryDurationBuckets);
    durations_[s] = own_[s].get();
  }
}

void QueryObserver::setLog(const QueryLogOptions& o) noexcept {
  log_ = o;
  if (log_.sampleEvery == 0) log_.sampleEvery = 1;
  seen_ = 0;
}

void QueryObserver::onQuery(const QueryEvent& e) noexcept {
  uint64_t dur = 0;
  if (e.received_ns != 0) {
    uint64_t now = monotonicNs();
    dur = now > e.received_ns ? now - e.received_ns : 0;
    if (e.source < Source::kCount) durations_[size_t(e.source)]->observe(double(dur) * 1e-9);
  }
  if (!log_.enabled) return;
  if (seen_++ % log_.sampleEvery != 0) return;
  size_t n = formatLine(e, dur, line_, sizeof line_);
  ++logged_;
  (void)!::write(log_.fd, line_, n);
}

size_t QueryObserver::formatLine(const QueryEvent& e, uint64_t duration_ns, char* out, size_t cap) const noexcept {
  const bool json = log_.format == log::Format::kJson;
  const size_t lim = cap - 2;  // room for the closing '}' and '\n'
  char ts[40];
  size_t tsLen = log::timestamp(ts, sizeof ts);
  const char* transport = query::transportName(query::Transport(e.transport));
  const char* rcode = e.outcome < uint8_t(query::Outcome::kCount) ? query::outcomeName(query::Outcome(e.outcome)) : "?";
  char dur[32];
  int dn = std::snprintf(dur, sizeof dur, "%.1f", double(duration_ns) / 1000.0);
  std::string_view durText(dur, dn > 0 ? size_t(dn) : 0);
  // The name's text form may hold a backslash (\DDD): in JSON it is written into a scratch
  // buffer first, then escaped.
  char name[4 * 255 + 2];
  size_t nameLen = appendNameText(name, 0, sizeof name, e.qnameWire);
  size_t pos = 0;
  if (json) {
    pos = appendRaw(out, pos, lim, "{\"ts\":\"");
    pos = appendRaw(out, pos, lim, {ts, tsLen});
    pos = appendRaw(out, pos, lim, "\",\"level\":\"info\",\"component\":\"query\",\"msg\":\"query\",\"client\":\"");
    pos = appendClient(out, pos, lim, e.client);
    pos = appendRaw(out, pos, lim, "\",\"transport\":\"");
    pos = appendRaw(out, pos, lim, transport);
    pos = appendRaw(out, pos, lim, "\",\"qname\":\"");
    pos = log::appendJsonEscaped(out, pos, lim, {name, nameLen});
    pos = appendRaw(out, pos, lim, "\",\"qtype\":\"");
    pos = appendTypeText(out, pos, lim, e.qtype);
    pos = appendRaw(out, pos, lim, "\",\"rcode\":\"");
    pos = appendRaw(out, pos, lim, rcode);
    pos = appendRaw(out, pos, lim, "\",\"source\":\"");
    pos = appendRaw(out, pos, lim, sourceName(e.source));
    pos = appendRaw(out, pos, lim, "\",\"duration_us\":");
    pos = appendRaw(out, pos, lim, durText);
    out[pos++] = '}';
  } else {
    pos = appendRaw(out, pos, lim, {ts, tsLen});
    pos = appendRaw(out, pos, lim, " info  query: client=");
    pos = appendClient(out, pos, lim, e.client);
    pos = appendRaw(out, pos, lim, " transport=");
    pos = appendRaw(out, pos, lim, transport);
    pos = appendRaw(out, pos, lim, " qname=");
    pos = appendRaw(out, pos, lim, {name, nameLen});
    pos = appendRaw(out, pos, lim, " qtype=");
    pos = appendTypeText(out, pos, lim, e.qtype);
    pos = appendRaw(out, pos, lim, " rcode=");
    pos = appendRaw(out, pos, lim, rcode);
    pos = appendRaw(out, pos, lim, " source=");
    pos = appendRaw(out, pos, lim, sourceName(e.source));
    pos = appendRaw(out, pos, lim, " duration_us=");
    pos = appendRaw(out, pos, lim, durText);
  }
  out[pos++] = '\n';
  return pos;
}

}  // namespace hdnsd::ops
