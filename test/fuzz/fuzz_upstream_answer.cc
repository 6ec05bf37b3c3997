// libFuzzer target for the forwarder's answer walker (src/upstream/wire.cc): any bytes as an
// upstream "answer" to www.example.com A with ID 0x4242. checkAnswer must never read out of
// bounds; when it accepts, stripOpt and finishForClient must produce a message that still walks
// (every record in bounds) with the client's ID and question bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>

#include "hdnsd/dns/name.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"
#include "hdnsd/upstream/wire.h"

namespace {

using namespace hdnsd;

#define FUZZ_ASSERT(cond)                                                                  \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "fuzz_upstream_answer: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

uint8_t gBuf[dns::kMaxMessage + 64];

void fuzzOne(const uint8_t* data, size_t size) {
  static const uint8_t kQuery[] = {0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
                                   3, 'W', 'w', 'W', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
                                   0, 1, 0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
  dns::Query q;
  FUZZ_ASSERT(dns::parseQuery(kQuery, &q).has_value());
  std::span<const uint8_t> a(data, size);
  auto info = upstream::checkAnswer(a, 0x4242, q.qname, q.qtype, q.qclass);
  if (!info) return;
  FUZZ_ASSERT(info->questionEnd == q.questionEnd);
  FUZZ_ASSERT(info->optOffset + info->optLength <= size);
  size_t n = upstream::stripOpt(a, *info, {gBuf, sizeof gBuf});
  FUZZ_ASSERT(n == size - info->optLength);
  upstream::ClientQuestion c;
  upstream::captureClient(kQuery, q, 512, &c);
  size_t m = upstream::finishForClient({gBuf, sizeof gBuf}, n, c, 1232);
  FUZZ_ASSERT(m >= q.questionEnd && m <= 512);
  FUZZ_ASSERT(gBuf[0] == 0xbe && gBuf[1] == 0xef);
  FUZZ_ASSERT(std::memcmp(gBuf + 12, kQuery + 12, q.questionEnd - 12) == 0);
  // The result (QR cleared) parses as a query whose records all stay in bounds, with our OPT.
  gBuf[dns::kOffFlags] &= 0x7F;
  dns::Query back;
  auto r = dns::parseQuery({gBuf, m}, &back);
  FUZZ_ASSERT(r.has_value() || r.error() == dns::ParseError::kDuplicateOpt || r.error() == dns::ParseError::kBadOpt);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzzOne(data, size);
  return 0;
}

#include "standalone_main.h"
