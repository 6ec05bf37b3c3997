// prependCname: an upstream answer for X becomes the answer for the client's Q with Q CNAME X in
// front. Oracle: the bytes are read back with the codec's own name reader and checked field by field.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "hdnsd/autopath/cname.h"
#include "hdnsd/dns/name.h"
#include "hdnsd/dns/wire.h"

using namespace hdnsd;

namespace {

// www.example.com A: CNAME to web.example.com (compressed pointers), web A 192.0.2.1 TTL 300,
// authority NS ns.example.com, an OPT at the end.
std::vector<uint8_t> upstreamAnswer() {
  return {0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 1, 0, 1,
          3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1,  // @12
          0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 6, 3, 'w', 'e', 'b', 0xc0, 0x10,             // CNAME web.@16
          0xc0, 0x2d, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1,                             // web A
          0xc0, 0x10, 0, 2, 0, 1, 0, 0, 0x0e, 0x10, 0, 5, 2, 'n', 's', 0xc0, 0x10,                  // NS
          0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};                                                  // OPT
}

// The client's question: www.example.com.shop.svc.cluster.local A IN, letter case as asked.
std::vector<uint8_t> clientQuestion() {
  std::vector<uint8_t> q;
  for (const char* l : {"WWW", "example", "com", "shop", "svc", "cluster", "local"}) {
    q.push_back(uint8_t(std::strlen(l)));
    q.insert(q.end(), l, l + std::strlen(l));
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  return q;
}

struct Rr {
  std::string owner, rdataName;
  uint16_t type, cls;
  uint32_t ttl;
  std::vector<uint8_t> rdata;
};

std::vector<Rr> records(const std::vector<uint8_t>& m, size_t pos, size_t n) {
  std::vector<Rr> out;
  for (size_t i = 0; i < n; ++i) {
    dns::NameKey o;
    auto e = dns::readName(m, pos, &o);
    REQUIRE(e);
    Rr r;
    r.owner = o.text();
    const uint8_t* p = m.data() + *e;
    r.type = dns::getU16(p);
    r.cls = dns::getU16(p + 2);
    r.ttl = dns::getU32(p + 4);
    const size_t len = dns::getU16(p + 8);
    r.rdata.assign(p + 10, p + 10 + len);
    if (r.type == 5 || r.type == 2) {
      dns::NameKey t;
      REQUIRE(dns::readName(m, *e + 10, &t));
      r.rdataName = t.text();
    }
    out.push_back(r);
    pos = *e + 10 + len;
  }
  return out;
}

}  // namespace

TEST_CASE("prependCname: Q CNAME X, then X's records with names re-compressed; OPT dropped") {
  auto a = upstreamAnswer();
  auto q = clientQuestion();
  std::vector<uint8_t> out(1500);
  size_t n = autopath::prependCname(a, q, 5, out);
  REQUIRE(n > 0);
  out.resize(n);
  CHECK(dns::getU16(out.data()) == 0x1234);
  CHECK((dns::getU16(out.data() + 2) & 0x800F) == 0x8000);  // QR, NOERROR
  CHECK(dns::getU16(out.data() + dns::kOffQd) == 1);
  CHECK(dns::getU16(out.data() + dns::kOffAn) == 3);
  CHECK(dns::getU16(out.data() + dns::kOffNs) == 1);
  CHECK(dns::getU16(out.data() + dns::kOffAr) == 0);  // the upstream's OPT is not passed on
  CHECK(std::memcmp(out.data() + 12, q.data(), q.size()) == 0);  // the question exactly as asked
  auto rrs = records(out, 12 + q.size(), 4);
  CHECK(rrs[0].owner == "www.example.com.shop.svc.cluster.local.");
  CHECK(rrs[0].type == 5);
  CHECK(rrs[0].rdataName == "www.example.com.");
  CHECK(rrs[0].ttl == 5);  // min(cap 5, X's answer TTLs 3600 and 300)
  CHECK(rrs[1].owner == "www.example.com.");
  CHECK(rrs[1].rdataName == "web.example.com.");
  CHECK(rrs[1].ttl == 3600);
  CHECK(rrs[2].owner == "web.example.com.");
  CHECK(rrs[2].type == 1);
  CHECK(rrs[2].rdata == std::vector<uint8_t>{192, 0, 2, 1});
  CHECK(rrs[3].owner == "example.com.");
  CHECK(rrs[3].rdataName == "ns.example.com.");
  CHECK(n < a.size() + q.size() + 20);  // compressed, not spelled out
}

TEST_CASE("prependCname: the CNAME's TTL is X's smallest answer TTL under a large cap") {
  auto a = upstreamAnswer();
  std::vector<uint8_t> out(1500);
  size_t n = autopath::prependCname(a, clientQuestion(), 86400, out);
  REQUIRE(n > 0);
  out.resize(n);
  CHECK(records(out, 12 + clientQuestion().size(), 1)[0].ttl == 300);
}

TEST_CASE("prependCname: too small a buffer keeps the CNAME and sets TC, never half an RRset") {
  auto a = upstreamAnswer();
  auto q = clientQuestion();
  std::vector<uint8_t> out(12 + q.size() + 12 + 17 + 10);  // room for the CNAME, not X's records
  size_t n = autopath::prependCname(a, q, 5, out);
  REQUIRE(n > 0);
  CHECK(dns::getU16(out.data() + dns::kOffAn) == 1);
  CHECK((dns::getU16(out.data() + 2) & dns::kFlagTC) != 0);
}

TEST_CASE("prependCname: malformed upstream answers are refused, not half-copied") {
  auto q = clientQuestion();
  std::vector<uint8_t> out(1500);
  auto a = upstreamAnswer();
  for (size_t cut = 0; cut < a.size() - 11; ++cut) {  // every truncation short of the OPT
    std::vector<uint8_t> t(a.begin(), a.begin() + long(cut));
    CHECK(autopath::prependCname(t, q, 5, out) == 0);
  }
  auto loop = a;
  loop[49] = 0xc0;  // the CNAME target's pointer (at 49) now points at itself
  loop[50] = 49;
  CHECK(autopath::prependCname(loop, q, 5, out) == 0);
}
