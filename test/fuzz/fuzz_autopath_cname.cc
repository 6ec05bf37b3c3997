// libFuzzer target for autopath::prependCname (src/autopath/cname.cc): any bytes as X's answer.
// It must never read or write out of bounds; when it writes a message, that message has the
// client's question at 12, every record in bounds (it parses back as a query once QR is cleared,
// with no OPT), and its first answer record is the CNAME.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "hdnsd/autopath/cname.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/dns/wire.h"

namespace {

using namespace hdnsd;

#define FUZZ_ASSERT(cond)                                                                  \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "fuzz_autopath_cname: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

uint8_t gBuf[dns::kMaxMessage];

void fuzzOne(const uint8_t* data, size_t size) {
  // Www.example.com.shop.svc.cluster.local A IN, as a client asked it.
  static const uint8_t kQuestion[] = {3, 'W', 'w', 'W', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm',
                                      4, 's', 'h', 'o', 'p', 3, 's', 'v', 'c', 7, 'c', 'l', 'u', 's', 't', 'e',
                                      'r', 5, 'l', 'o', 'c', 'a', 'l', 0, 0, 1, 0, 1};
  // A small output half the time: the TC path.
  const size_t cap = size % 2 ? 512 : sizeof gBuf;
  size_t n = autopath::prependCname({data, size}, kQuestion, 5, {gBuf, cap});
  if (n == 0) return;
  FUZZ_ASSERT(n <= cap);
  FUZZ_ASSERT(std::memcmp(gBuf + 12, kQuestion, sizeof kQuestion) == 0);
  FUZZ_ASSERT(dns::getU16(gBuf + dns::kOffAn) >= 1);
  FUZZ_ASSERT(dns::getU16(gBuf + 12 + sizeof kQuestion + 2) == dns::kTypeCNAME);
  gBuf[dns::kOffFlags] &= 0x7F;
  dns::Query back;
  auto r = dns::parseQuery({gBuf, n}, &back);
  FUZZ_ASSERT(r.has_value());
  FUZZ_ASSERT(!back.edns.present);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzzOne(data, size);
  return 0;
}

#include "standalone_main.h"
