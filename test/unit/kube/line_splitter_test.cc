// kube::LineSplitter: watch stream lines over arbitrary chunk boundaries, and the line bound.
#include "hdnsd/kube/line_splitter.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using hdnsd::kube::LineSplitter;

const std::string kStream =
    "{\"type\":\"ADDED\",\"object\":{\"a\":1}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"b\":22}}\r\n"
    "\n"
    "{\"type\":\"BOOKMARK\",\"object\":{}}\n";
const std::vector<std::string> kLines = {"{\"type\":\"ADDED\",\"object\":{\"a\":1}}",
                                         "{\"type\":\"MODIFIED\",\"object\":{\"b\":22}}",
                                         "{\"type\":\"BOOKMARK\",\"object\":{}}"};

std::vector<std::string> feedAll(LineSplitter& s, const std::vector<std::string>& chunks,
                                 LineSplitter::Status* last = nullptr) {
  std::vector<std::string> out;
  LineSplitter::Status st = LineSplitter::Status::kOk;
  for (const auto& c : chunks) {
    st = s.feed(c, [&out](std::string_view l) {
      out.emplace_back(l);
      return true;
    });
    if (st != LineSplitter::Status::kOk) break;
  }
  if (last) *last = st;
  return out;
}

}  // namespace

TEST_CASE("LineSplitter: every single split point of a multi-event buffer gives the same lines") {
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    LineSplitter s(1024);
    auto lines = feedAll(s, {kStream.substr(0, cut), kStream.substr(cut)});
    CHECK_MESSAGE(lines == kLines, "cut at " << cut);
    CHECK(s.buffered() == 0);
  }
}

TEST_CASE("LineSplitter: every pair of split points (three chunks), and one byte at a time") {
  for (size_t a = 0; a <= kStream.size(); ++a)
    for (size_t b = a; b <= kStream.size(); ++b) {
      LineSplitter s(1024);
      auto lines = feedAll(s, {kStream.substr(0, a), kStream.substr(a, b - a), kStream.substr(b)});
      REQUIRE_MESSAGE(lines == kLines, "cuts at " << a << "," << b);
    }
  std::vector<std::string> bytes;
  for (char c : kStream) bytes.emplace_back(1, c);
  LineSplitter s(1024);
  CHECK(feedAll(s, bytes) == kLines);
}

TEST_CASE("LineSplitter: a partial line is kept until its newline arrives") {
  LineSplitter s(1024);
  auto lines = feedAll(s, {"{\"type\":", "\"ADDED\"}"});
  CHECK(lines.empty());
  CHECK(s.buffered() == 16);
  lines = feedAll(s, {"\n"});
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "{\"type\":\"ADDED\"}");
}

TEST_CASE("LineSplitter: a line over the bound is an error, whether complete or still partial") {
  SUBCASE("partial, growing over several chunks") {
    LineSplitter s(10);
    LineSplitter::Status st;
    feedAll(s, {"12345", "67890", "1"}, &st);
    CHECK(st == LineSplitter::Status::kTooLong);
  }
  SUBCASE("complete in one chunk") {
    LineSplitter s(10);
    LineSplitter::Status st;
    auto lines = feedAll(s, {"ok\n12345678901\n"}, &st);
    CHECK(st == LineSplitter::Status::kTooLong);
    CHECK(lines == std::vector<std::string>{"ok"});
  }
  SUBCASE("exactly at the bound is fine") {
    LineSplitter s(10);
    LineSplitter::Status st;
    auto lines = feedAll(s, {"12345", "67890\n"}, &st);
    CHECK(st == LineSplitter::Status::kOk);
    CHECK(lines == std::vector<std::string>{"1234567890"});
  }
}

TEST_CASE("LineSplitter: onLine returning false stops at once") {
  LineSplitter s(1024);
  int seen = 0;
  auto st = s.feed(kStream, [&seen](std::string_view) { return ++seen < 2; });
  CHECK(st == LineSplitter::Status::kStopped);
  CHECK(seen == 2);
}

TEST_CASE("LineSplitter: skipOverlong drops a long line (in one chunk or many) and goes on") {
  for (size_t cut : {size_t(1), size_t(3), size_t(7), size_t(1000)}) {
    CAPTURE(cut);
    LineSplitter sp(8, /*skipOverlong=*/true);
    const std::string stream = "short\nthis line is far too long\nok\n0123456789\r\nlast\n";
    std::vector<std::string> lines;
    for (size_t i = 0; i < stream.size(); i += cut) {
      auto st = sp.feed(std::string_view(stream).substr(i, cut), [&](std::string_view l) {
        lines.emplace_back(l);
        return true;
      });
      CHECK(st == LineSplitter::Status::kOk);
      CHECK(sp.buffered() <= 8);
    }
    CHECK(lines == std::vector<std::string>{"short", "ok", "last"});
    CHECK(sp.skipped() == 2);
  }
}
