// Names: textToWire / wireToText, NameKey, isAtOrBelow, and readName's limits and pointer rules.
// Wire bytes are written by hand (RFC 1035 3.1, 4.1.4), never produced by our own code.
#include "hdnsd/dns/name.h"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using namespace hdnsd::dns;
using namespace std::string_literals;

namespace {

std::string toWire(std::string_view text) {
  std::string w;
  REQUIRE(textToWire(text, &w));
  return w;
}

// A message: 12 zero header bytes (never a valid name start), then `body`.
std::vector<uint8_t> msgWith(std::vector<uint8_t> body) {
  std::vector<uint8_t> m(12, 0);
  // push_back, not insert: GCC 12 -O2 reports a false -Warray-bounds on vector::insert.
  for (uint8_t b : body) m.push_back(b);
  return m;
}

// A label of `len` copies of `c`, with its length byte.
std::vector<uint8_t> label(size_t len, uint8_t c = 'a') {
  std::vector<uint8_t> l(len + 1, c);
  l[0] = static_cast<uint8_t>(len);
  return l;
}

void append(std::vector<uint8_t>& v, const std::vector<uint8_t>& more) {
  for (uint8_t b : more) v.push_back(b);
}

}  // namespace

TEST_CASE("textToWire: plain name, with and without trailing dot, lower-cased") {
  const std::string want = "\3web\4demo\3svc\7cluster\5local\0"s;
  CHECK(toWire("web.demo.svc.cluster.local") == want);
  CHECK(toWire("web.demo.svc.cluster.local.") == want);
  CHECK(toWire("WeB.Demo.SVC.cluster.LOCAL.") == want);
}

TEST_CASE("textToWire: root") {
  CHECK(toWire(".") == "\0"s);
  CHECK(toWire("") == "\0"s);
}

TEST_CASE("textToWire: escapes") {
  CHECK(toWire("a\\.b.c") == "\3a.b\1c\0"s);       // \. is a dot inside the label
  CHECK(toWire("\\065bc") == "\3abc\0"s);          // \065 is 'A', then lower-cased
  CHECK(toWire("x\\000y") == "\3x\0y\0"s);         // a zero byte inside a label
  CHECK(toWire("\\255") == "\1\xff\0"s);
  CHECK(toWire("a\\\\b") == "\3a\\b\0"s);          // \\ is a backslash
}

TEST_CASE("textToWire: rejects empty labels, bad escapes, over-long labels and names") {
  std::string w = "unchanged";
  CHECK_FALSE(textToWire("a..b", &w));
  CHECK_FALSE(textToWire(".a", &w));
  CHECK_FALSE(textToWire("..", &w));
  CHECK_FALSE(textToWire("a\\", &w));      // dangling backslash
  CHECK_FALSE(textToWire("\\256", &w));    // above 255
  CHECK_FALSE(textToWire("a\\12", &w));    // only two digits
  CHECK_FALSE(textToWire("\\1a2", &w));    // not three digits
  CHECK(w == "unchanged");                 // failure leaves the output alone

  CHECK(textToWire(std::string(63, 'x') + ".y", &w));
  CHECK(w.size() == 1 + 63 + 2 + 1);
  CHECK_FALSE(textToWire(std::string(64, 'x') + ".y", &w));

  // 3 labels of 63 + one of 61: 3*64 + 62 + root = 255 bytes of wire, the maximum.
  const std::string l63(63, 'a');
  const std::string ok = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');
  CHECK(textToWire(ok, &w));
  CHECK(w.size() == 255);
  CHECK_FALSE(textToWire(l63 + "." + l63 + "." + l63 + "." + std::string(62, 'b'), &w));  // 256
}

TEST_CASE("wireToText: presentation form with escapes") {
  CHECK(wireToText("\3web\3svc\0"s) == "web.svc.");
  CHECK(wireToText("\0"s) == ".");
  CHECK(wireToText("\3a.b\0"s) == "a\\046b.");             // '.' inside a label
  CHECK(wireToText("\2\xff_\0"s) == "\\255_.");
  CHECK(wireToText("\3A-z\0"s) == "A-z.");                 // case is kept
  CHECK(wireToText("\5ab"s) == ".");                        // malformed: stops, never overreads
}

TEST_CASE("textToWire/wireToText round trip") {
  for (const char* text : {"web.demo.svc.cluster.local.", ".", "a\\046b.c.", "\\255\\000x.", "_tcp.x-y."}) {
    std::string w;
    REQUIRE(textToWire(text, &w));
    CHECK(wireToText(w) == text);
    std::string again;
    REQUIRE(textToWire(wireToText(w), &again));
    CHECK(again == w);
  }
}

TEST_CASE("isAtOrBelow: label-aligned suffix match") {
  const std::string zone = toWire("cluster.local");
  CHECK(isAtOrBelow(toWire("cluster.local"), zone));
  CHECK(isAtOrBelow(toWire("web.demo.svc.cluster.local"), zone));
  CHECK_FALSE(isAtOrBelow(toWire("xcluster.local"), zone));   // same trailing bytes, not a label
  CHECK_FALSE(isAtOrBelow(toWire("local"), zone));
  CHECK_FALSE(isAtOrBelow(toWire("cluster.local.example"), zone));
  CHECK(isAtOrBelow(toWire("anything.at.all"), toWire(".")));  // everything is below the root
  CHECK(isAtOrBelow(toWire("."), toWire(".")));
  // "\1x\7cluster\5local": the suffix starting inside a label must not count.
  CHECK_FALSE(isAtOrBelow("\11a\7cluster\5local\0"s, "\7cluster\5local\0"s));
  // Zones shorter than a word, and names shorter than the zone.
  CHECK(isAtOrBelow(toWire("a.io"), toWire("io")));
  CHECK_FALSE(isAtOrBelow(toWire("a.xio"), toWire("io")));
  CHECK_FALSE(isAtOrBelow(toWire("io"), toWire("a.io")));
  // The tail bytes match but a label length byte says otherwise (a malformed name).
  CHECK_FALSE(isAtOrBelow("\100\7cluster\5local\0"s, "\7cluster\5local\0"s));
}

TEST_CASE("NameKey: assignWire lower-cases and indexes labels") {
  NameKey k;
  CHECK(k.wire() == "\0"s);
  CHECK(k.labelCount() == 0);
  REQUIRE(k.assignWire("\3WeB\4DEMO\0"s));
  CHECK(k.wire() == "\3web\4demo\0"s);
  CHECK(k.labelCount() == 2);
  CHECK(k.labelOffset(0) == 0);
  CHECK(k.labelOffset(1) == 4);
  CHECK(k.labelOffset(2) == 9);  // the root byte
  CHECK(k.text() == "web.demo.");

  CHECK_FALSE(k.assignWire("\3web"s));            // no root
  CHECK(k.wire() == "\0"s);                       // cleared on failure
  CHECK_FALSE(k.assignWire("\3web\0\0"s));        // bytes after the root
  CHECK_FALSE(k.assignWire("\xc0\x0c"s));         // no pointers in a key
  CHECK_FALSE(k.assignWire("\x40"s + std::string(64, 'a') + "\0"s));
}

TEST_CASE("NameKey: appendLabel enforces label and name limits") {
  NameKey k;
  const std::string l63(63, 'A');
  const auto* p = reinterpret_cast<const uint8_t*>(l63.data());
  CHECK_FALSE(k.appendLabel(p, 0));
  CHECK_FALSE(k.appendLabel(p, 64));
  CHECK(k.appendLabel(p, 63));
  CHECK(k.appendLabel(p, 63));
  CHECK(k.appendLabel(p, 63));
  CHECK_FALSE(k.appendLabel(p, 62));  // would make 256
  CHECK(k.appendLabel(p, 61));        // exactly 255
  CHECK(k.size() == 255);
  CHECK(k.labelCount() == 4);
  CHECK(k.data()[1] == 'a');          // lower-cased on the way in
}

TEST_CASE("readName: lower-cases every byte value like lowerAscii, wherever it sits in a word") {
  // Label bytes may be anything (RFC 2181 11); readName lower-cases 8 bytes at a time, so every
  // value is tried at every offset within a word: a first label of 1..8 bytes shifts the rest.
  for (unsigned base = 0; base < 256; base += 60) {
    for (size_t shift = 1; shift <= 8; ++shift) {
      std::vector<uint8_t> body = label(shift, 'Q');
      body.push_back(60);
      for (unsigned i = 0; i < 60; ++i) body.push_back(static_cast<uint8_t>(base + i));
      body.push_back(0);
      std::string want;
      for (uint8_t b : body) want.push_back(static_cast<char>(lowerAscii(b)));
      for (size_t i = 0; i < body.size(); i += 1 + body[i]) want[i] = static_cast<char>(body[i]);
      CAPTURE(base);
      CAPTURE(shift);
      NameKey k;
      REQUIRE(readName(msgWith(body), 12, &k).has_value());
      CHECK(k.wire() == want);
      CHECK(k.labelCount() == 2);
      CHECK(k.hash() == nameHash(want));
    }
  }
}

TEST_CASE("NameKey: hash() is nameHash(wire()) however the name was built, and ignores case") {
  const std::string lower = "\3www\7example\3com\0"s;
  const uint64_t h = nameHash(lower);
  CHECK(nameHash("\3WWW\7ExAmPlE\3COM\0"s) == h);
  NameKey k;
  SUBCASE("readName, whole words readable after the name") {
    REQUIRE(readName(msgWith({3, 'W', 'w', 'W', 7, 'e', 'X', 'a', 'm', 'p', 'l', 'E', 3, 'c', 'o', 'M', 0,
                              0, 1, 0, 1, 0, 0, 41, 0x10, 0}),
                     12, &k));
  }
  SUBCASE("readName, the message ends with the name (the last word is read short)") {
    REQUIRE(readName(msgWith({3, 'W', 'w', 'W', 7, 'e', 'X', 'a', 'm', 'p', 'l', 'E', 3, 'c', 'o', 'M', 0}), 12, &k));
  }
  SUBCASE("readName through a pointer (the label-by-label path)") {
    // 12: \7example\3com\0   25: \3WWW -> 12
    REQUIRE(readName(msgWith({7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 3, 'W', 'W', 'W', 0xC0, 12}),
                     25, &k));
  }
  SUBCASE("assignWire") { REQUIRE(k.assignWire("\3WwW\7EXAMPLE\3com\0"s)); }
  SUBCASE("appendLabel, then a copy") {
    NameKey built;
    for (const char* l : {"www", "EXAMPLE", "com"})
      REQUIRE(built.appendLabel(reinterpret_cast<const uint8_t*>(l), std::strlen(l)));
    NameKey copied(built);
    k = copied;
  }
  CHECK(k.wire() == lower);
  CHECK(k.hash() == h);
  CHECK(k.labelCount() == 3);
  // Other names hash differently (64 bits: equal only by a freak collision).
  CHECK(nameHash("\3www\7example\3org\0"s) != h);
  CHECK(nameHash("\3ww\7example\3com\0"s) != h);
  CHECK(nameHash("\3www\7example\3com\0"s.substr(4)) != h);
  // The root hashes to 0, which clear() sets without a seed.
  CHECK(nameHash("\0"s) == 0);
  k.clear();
  CHECK(k.hash() == 0);
  CHECK(NameKey().hash() == 0);
}

TEST_CASE("nameHash: keyed by the process seed") {
  const std::string w = "\3www\7example\3com\0"s;
  setNameHashSeed(1, 2);
  const uint64_t a = nameHash(w);
  setNameHashSeed(3, 4);
  CHECK(nameHash(w) != a);
  setNameHashSeed(1, 2);  // the same seed, the same hash (reproducible runs: tests, fuzzers)
  CHECK(nameHash(w) == a);
}

TEST_CASE("readName: lower-cases, returns the offset past the name") {
  const auto m = msgWith({3, 'W', 'e', 'B', 3, 's', 'V', 'c', 0, 0xff});
  NameKey k;
  auto end = readName(m, 12, &k);
  REQUIRE(end.has_value());
  CHECK(*end == 21);
  CHECK(k.wire() == "\3web\3svc\0"s);
  CHECK(skipName(m, 12).value() == 21);
}

TEST_CASE("readName: backward pointer, offset is past the pointer") {
  // 12: \3svc\0   17: \3web C0 0C (-> 12)   23: trailing byte
  const auto m = msgWith({3, 's', 'v', 'c', 0, 3, 'w', 'e', 'b', 0xC0, 12, 0xAA});
  NameKey k;
  auto end = readName(m, 17, &k);
  REQUIRE(end.has_value());
  CHECK(*end == 23);
  CHECK(k.wire() == "\3web\3svc\0"s);
  CHECK(k.labelCount() == 2);
}

TEST_CASE("readName: label of 63 is fine, length byte 64 (0x40) is rejected") {
  auto ok = msgWith(label(63));
  ok.push_back(0);
  NameKey k;
  CHECK(readName(ok, 12, &k).has_value());
  CHECK(k.size() == 65);

  auto bad = msgWith(label(64));  // 0x40: the extended label type (RFC 6891 5)
  bad.push_back(0);
  CHECK(readName(bad, 12, &k).error() == NameError::kLabelTooLong);
  const auto reserved = msgWith({0x80, 'a', 0});  // 0x80: reserved label type
  CHECK(readName(reserved, 12, &k).error() == NameError::kLabelTooLong);
}

TEST_CASE("readName: 255 bytes is fine, 256 is too long") {
  std::vector<uint8_t> n255;
  append(n255, label(63));
  append(n255, label(63));
  append(n255, label(63));
  std::vector<uint8_t> n256 = n255;
  append(n255, label(61));
  n255.push_back(0);
  append(n256, label(62));
  n256.push_back(0);
  REQUIRE(n255.size() == 255);
  REQUIRE(n256.size() == 256);
  NameKey k;
  CHECK(readName(msgWith(n255), 12, &k).has_value());
  CHECK(k.size() == 255);
  CHECK(readName(msgWith(n256), 12, &k).error() == NameError::kNameTooLong);
  CHECK(skipName(msgWith(n256), 12).error() == NameError::kNameTooLong);
}

TEST_CASE("readName: the 255 limit applies after decompression") {
  std::vector<uint8_t> body;
  append(body, label(63));
  append(body, label(63));
  append(body, label(63));
  append(body, label(61));
  body.push_back(0);                    // 12..266: a 255-byte name
  body.push_back(1);                    // 267: \1b then a pointer to it: 2 + 255 = 257
  body.push_back('b');
  body.push_back(0xC0);
  body.push_back(12);
  const auto m = msgWith(body);
  NameKey k;
  CHECK(readName(m, 12, &k).has_value());
  CHECK(readName(m, 267, &k).error() == NameError::kNameTooLong);
}

TEST_CASE("readName: pointer rules") {
  NameKey k;
  SUBCASE("forward pointer") {
    const auto m = msgWith({0xC0, 14, 1, 'a', 0});  // 12 -> 14
    CHECK(readName(m, 12, &k).error() == NameError::kBadPointer);
  }
  SUBCASE("self pointer") {
    const auto m = msgWith({1, 'a', 0, 0xC0, 15});  // the pointer at 15 points to 15
    CHECK(readName(m, 15, &k).error() == NameError::kBadPointer);
  }
  SUBCASE("pointer back to the start of its own label sequence (a loop)") {
    const auto m = msgWith({1, 'a', 0xC0, 12});  // \1a then -> 12: backwards, but a loop
    CHECK(readName(m, 12, &k).error() == NameError::kBadPointer);
  }
  SUBCASE("two pointers pointing at each other") {
    // 12: \1a\0  15: C0 17 (-> 17)  17: C0 0F (-> 15)
    const auto m = msgWith({1, 'a', 0, 0xC0, 17, 0xC0, 15});
    CHECK(readName(m, 17, &k).error() == NameError::kBadPointer);  // 17 -> 15 -> 17 forward
    CHECK(readName(m, 15, &k).error() == NameError::kBadPointer);
  }
  SUBCASE("pointer into the header") {
    const auto m = msgWith({1, 'a', 0, 1, 'b', 0xC0, 4});  // 15: \1b -> 4
    CHECK(readName(m, 15, &k).error() == NameError::kBadPointer);
    const auto q = msgWith({0xC0, 0});  // the question name can never point anywhere
    CHECK(readName(q, 12, &k).error() == NameError::kBadPointer);
  }
  SUBCASE("pointer target must precede the sequence it jumped from") {
    // 12: \1a\0  15: \1b C0 0C   19: \1c C0 0F (-> 15, whose pointer goes to 12: fine)
    const auto m = msgWith({1, 'a', 0, 1, 'b', 0xC0, 12, 1, 'c', 0xC0, 15});
    REQUIRE(readName(m, 19, &k).has_value());
    CHECK(k.wire() == "\1c\1b\1a\0"s);
    // 12: \1a\0  15: C0 13 (-> 19)  17: \1b C0 0F (-> 15): 15's pointer goes forward of 15
    const auto f = msgWith({1, 'a', 0, 0xC0, 19, 1, 'b', 0xC0, 15, 0, 0});
    CHECK(readName(f, 17, &k).error() == NameError::kBadPointer);
  }
}

TEST_CASE("readName: more than kMaxPointerJumps pointers in a chain") {
  // 12: \1a\0, then pointers each pointing at the previous one.
  std::vector<uint8_t> body = {1, 'a', 0};
  size_t prev = 12;
  std::vector<size_t> at;
  for (size_t i = 0; i < kMaxPointerJumps + 1; ++i) {
    at.push_back(12 + body.size());
    body.push_back(static_cast<uint8_t>(0xC0 | (prev >> 8)));
    body.push_back(static_cast<uint8_t>(prev));
    prev = at.back();
  }
  const auto m = msgWith(body);
  NameKey k;
  auto ok = readName(m, at[kMaxPointerJumps - 1], &k);  // exactly 64 jumps
  REQUIRE(ok.has_value());
  CHECK(*ok == at[kMaxPointerJumps - 1] + 2);
  CHECK(k.wire() == "\1a\0"s);
  CHECK(readName(m, at[kMaxPointerJumps], &k).error() == NameError::kPointerLoop);  // 65
}

TEST_CASE("readName: truncated everywhere") {
  NameKey k;
  const auto name = msgWith({3, 'w', 'e', 'b', 3, 's', 'v', 'c', 0});
  for (size_t cut = 12; cut < name.size(); ++cut) {
    std::span<const uint8_t> part(name.data(), cut);
    CAPTURE(cut);
    CHECK(readName(part, 12, &k).error() == NameError::kTruncated);
  }
  // A pointer missing its second byte.
  const auto m = msgWith({1, 'a', 0, 1, 'b', 0xC0});
  CHECK(readName(m, 15, &k).error() == NameError::kTruncated);
  CHECK(readName(m, m.size(), &k).error() == NameError::kTruncated);  // nothing at pos
}
