// Rotating address RRsets of a forwarded answer in place: whole records move, pointers stay
// valid, anything unusual is left alone. Messages written by hand (RFC 1035 4.1).
#include "hdnsd/policy/wire_rotate.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "../../support/alloc_counter.h"
#include "hdnsd/policy/forwarded.h"
#include "hdnsd/policy/spreader.h"

namespace {

using namespace hdnsd;

// www.example. A: CNAME to web.example. (RDATA at offset 41), then three A records owned by
// a pointer to that name, then an AAAA for it, then one additional A owned by the question.
std::vector<uint8_t> cnameAnswer() {
  std::vector<uint8_t> m = {
      0x12, 0x34, 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 1,                    // header: an=5 ar=1
      3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1,  // question @12..28
      0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6,                           // CNAME @29, rdata @41
      3, 'w', 'e', 'b', 0xC0, 16,                                         // web.example.
      0xC0, 41, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1,              // A @47
      0xC0, 41, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 2,              // A @63
      0xC0, 41, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 3,              // A @79
      0xC0, 41, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
      0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1,             // additional
  };
  return m;
}

std::vector<int> lastOctets(const std::vector<uint8_t>& m) {
  return {m[47 + 15], m[63 + 15], m[79 + 15]};
}

}  // namespace

TEST_CASE("wire rotate: the A run of a CNAME answer rotates; the CNAME, AAAA and additional stay") {
  auto m = cnameAnswer();
  const auto before = m;
  size_t n = policy::rotateAddressRuns(m, [](size_t count) {
    CHECK(count == 3);
    return size_t{1};
  });
  CHECK(n == 1);
  CHECK(lastOctets(m) == std::vector<int>{2, 3, 1});
  CHECK(std::equal(m.begin(), m.begin() + 47, before.begin()));   // header, question, CNAME
  CHECK(std::equal(m.begin() + 95, m.end(), before.begin() + 95));  // AAAA, additional
  policy::rotateAddressRuns(m, [](size_t) { return size_t{2}; });
  CHECK(lastOctets(m) == std::vector<int>{1, 2, 3});  // 1 + 2 = 3: back where it started
}

TEST_CASE("wire rotate: owners written out in full are left alone (something may point into them)") {
  std::vector<uint8_t> m = {0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
                            1, 'a', 0, 0, 1, 0, 1,
                            1, 'b', 0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 1, 1, 1,   // literal owner b.
                            0xC0, 19, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 2, 2, 2, 2};   // points into it
  const auto before = m;
  CHECK(policy::rotateAddressRuns(m, [](size_t) { return size_t{1}; }) == 0);
  CHECK(m == before);
}

TEST_CASE("wire rotate: truncated or malformed messages are not touched") {
  auto m = cnameAnswer();
  m.resize(70);  // cut inside the second A record
  const auto before = m;
  policy::rotateAddressRuns(m, [](size_t) { return size_t{1}; });
  CHECK(m == before);
  std::vector<uint8_t> tiny = {0, 1, 2};
  CHECK(policy::rotateAddressRuns(tiny, [](size_t) { return size_t{1}; }) == 0);
}

TEST_CASE("wire rotate: rotateRecords moves whole records by given boundaries") {
  auto m = cnameAnswer();
  const std::array<uint16_t, 4> bounds = {47, 63, 79, 95};
  CHECK(policy::rotateRecords(m, bounds, 2));
  CHECK(lastOctets(m) == std::vector<int>{3, 1, 2});
  const std::array<uint16_t, 3> bad = {47, 40, 95};
  const auto before = m;
  CHECK(!policy::rotateRecords(m, bad, 1));
  CHECK(m == before);
}

TEST_CASE("wire rotate: the forwarded hook follows the policy, per name, without allocating") {
  policy::Spreader rr(policy::SpreaderOptions{policy::Kind::kRoundRobin, 0, 5});
  auto m = cnameAnswer();
  std::vector<int> firsts;
  std::vector<std::vector<uint8_t>> copies(6, cnameAnswer());
  hdnsd::test::startCountingAllocations();
  for (auto& c : copies) policy::rotateForwardedAnswer(c, rr, 0xABCDEF);
  CHECK(hdnsd::test::stopCountingAllocations() == 0);
  for (auto& c : copies) firsts.push_back(c[47 + 15]);
  for (size_t i = 1; i < firsts.size(); ++i) CHECK(firsts[i] == (firsts[i - 1] % 3) + 1);
  policy::Spreader none(policy::SpreaderOptions{policy::Kind::kConsistent, 0, 5});
  CHECK(policy::rotateForwardedAnswer(m, none, 1) == 0);
  CHECK(m == cnameAnswer());
}

TEST_CASE("forwarded: rotateCachedAnswer rotates the cache's RRset spans per name, no allocation") {
  policy::Spreader rr(policy::SpreaderOptions{policy::Kind::kRoundRobin, 0, 5});
  cache::LookupResult r;
  r.status = cache::Status::kFresh;
  r.rrsetCount = 1;
  r.rrsets[0] = {47, 3, 16, 1};  // the three A records of cnameAnswer()
  std::vector<std::vector<uint8_t>> copies(6, cnameAnswer());
  r.size = copies[0].size();
  hdnsd::test::startCountingAllocations();
  for (auto& c : copies) policy::rotateCachedAnswer(c, r, rr, 0x5151);
  CHECK(hdnsd::test::stopCountingAllocations() == 0);
  std::set<int> firsts;
  for (size_t i = 0; i < copies.size(); ++i) {
    auto sorted = lastOctets(copies[i]);
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int>{1, 2, 3});  // same records, another order
    firsts.insert(copies[i][47 + 15]);
  }
  CHECK(firsts.size() == 3);
  policy::Spreader none(policy::SpreaderOptions{policy::Kind::kNone, 0, 5});
  auto m = cnameAnswer();
  CHECK(policy::rotateCachedAnswer(m, r, none, 1) == 0);
  CHECK(m == cnameAnswer());
}
