// The --state-file format (ops/state_format.h): what is written reads back, every damaged or
// foreign file is refused with one line (never a throw), the file doubles as an --endpoints-file
// List, and the atomic write never leaves a partial file behind.
#include "hdnsd/ops/state_format.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "hdnsd/kube/decode.h"

namespace {

using namespace hdnsd;
using namespace hdnsd::ops;

cluster::ClusterModel smallModel() {
  cluster::ClusterModel m;
  cluster::Service s;
  s.ns = "shop";
  s.name = "web";
  s.headless = true;
  m.services["shop/web"] = s;
  cluster::EndpointSlice sl;
  sl.ns = "shop";
  sl.name = "web-abc";
  sl.serviceName = "web";
  cluster::Endpoint e;
  e.addresses = {*cluster::IpAddr::parse("10.244.1.1")};
  sl.endpoints = {e};
  m.upsertSlice("shop/web-abc", sl);
  return m;
}

// www.example.test A 192.0.2.1 as the cache stores it (QR RD RA, question, one record, no OPT).
std::vector<uint8_t> wire(uint8_t last = 1) {
  return {0x77, 0x77, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l',
          'e', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, last};
}

StateHeader header(bool cluster = true) {
  StateHeader h;
  h.version = "9.9.9";
  h.writtenAtUnixMs = 1714564800123;
  h.zone = "cluster.local";
  h.source = "kubernetes-api";
  h.cluster = cluster;
  return h;
}

std::string sample() {
  const auto m = smallModel();
  return encodeState(header(), &m, {SavedAnswer{wire(1), false, 300, 1714564900000}, SavedAnswer{wire(2), true, 60, 5}});
}

std::string refused(std::string_view text, std::string_view zone = "cluster.local") {
  auto r = decodeState(text, zone, true);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find('\n') == std::string::npos);  // one line
  return r.error();
}

// A fresh directory under /tmp, removed (with what is in it) at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/hdnsd-state-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    if (DIR* d = opendir(path.c_str())) {
      while (dirent* e = readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.push_back(e->d_name);
      closedir(d);
    }
    return out;
  }
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("state file: what encodeState writes, decodeState reads back") {
  auto r = decodeState(sample(), "cluster.local", true);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  CHECK(r->header.format == kStateFormat);
  CHECK(r->header.version == "9.9.9");
  CHECK(r->header.writtenAtUnixMs == 1714564800123);
  CHECK(r->header.zone == "cluster.local");
  CHECK(r->header.source == "kubernetes-api");
  CHECK(r->header.cluster);
  REQUIRE(r->model.has_value());
  CHECK(r->model->services.count("shop/web") == 1);
  REQUIRE(r->model->slices().count("shop/web-abc") == 1);
  CHECK(r->model->slices().at("shop/web-abc").endpoints.at(0).addresses.at(0).text() == "10.244.1.1");
  REQUIRE(r->cache.size() == 2);
  CHECK(r->cache[0].message == wire(1));
  CHECK_FALSE(r->cache[0].dnssecOk);
  CHECK(r->cache[0].ttl_s == 300);
  CHECK(r->cache[0].expiresAtUnixMs == 1714564900000);
  CHECK(r->cache[1].message == wire(2));
  CHECK(r->cache[1].dnssecOk);
  CHECK(r->cache[1].expiresAtUnixMs == 5);
}

TEST_CASE("state file: readable by people (names, ISO time) and by --endpoints-file (a kubectl List)") {
  const std::string text = sample();
  CHECK(text.find("\"name\":\"www.example.test.\",\"type\":1,\"class\":1") != std::string::npos);
  CHECK(text.find("\"writtenAt\":\"2024-05-01T12:00:00Z\"") != std::string::npos);
  kube::DecodeStats st;
  auto asList = kube::decodeList(text, &st);
  REQUIRE_MESSAGE(asList.has_value(), (asList ? "" : asList.error()));
  CHECK(st.services == 1);
  CHECK(st.slices == 1);
}

TEST_CASE("state file: without a cluster part, or when not wanted, no model is decoded") {
  auto noCluster = decodeState(encodeState(header(false), nullptr, {SavedAnswer{wire(), false, 1, 1}}), "cluster.local", true);
  REQUIRE(noCluster.has_value());
  CHECK_FALSE(noCluster->header.cluster);
  CHECK_FALSE(noCluster->model.has_value());
  CHECK(noCluster->cache.size() == 1);
  auto notWanted = decodeState(sample(), "cluster.local", false);
  REQUIRE(notWanted.has_value());
  CHECK_FALSE(notWanted->model.has_value());
  CHECK(notWanted->cache.size() == 2);
}

TEST_CASE("state file: every truncation is refused, never thrown") {
  const std::string text = sample();
  for (size_t cut = 0; cut + 2 < text.size(); cut += 7) {  // "}\n" is the last: any shorter prefix is cut
    auto r = decodeState(std::string_view(text).substr(0, cut), "cluster.local", true);
    CHECK_MESSAGE(!r.has_value(), "accepted a file cut at ", cut);
  }
  CHECK(refused("").find("not valid JSON") != std::string::npos);
  CHECK(refused("\x00\xff garbage").find("not valid JSON") != std::string::npos);
}

TEST_CASE("state file: another format, another zone, or no state file at all is refused by name") {
  std::string v2 = sample();
  v2.replace(v2.find("\"format\":1"), 10, "\"format\":2");
  CHECK(refused(v2) == "format 2, this hdnsd reads format 1");
  CHECK(refused(sample(), "other.zone") == "written for zone cluster.local, this hdnsd serves other.zone");
  CHECK(refused(R"({"apiVersion":"v1","kind":"List","items":[]})").find("not an hdnsd state file") !=
        std::string::npos);
  CHECK(refused("[1,2,3]").find("not an hdnsd state file") != std::string::npos);
  std::string textFormat = sample();
  textFormat.replace(textFormat.find("\"format\":1"), 10, "\"format\":\"1\"");
  CHECK(refused(textFormat) == "hdnsdState.format: expected a whole number");
}

TEST_CASE("state file: a damaged cache entry or cluster item refuses the whole file") {
  std::string badB64 = sample();
  const size_t w = badB64.find("\"wire\":\"") + 8;
  badB64[w] = '!';
  CHECK(refused(badB64) == "hdnsdCache[0].wire: not base64");

  std::string shortWire = sample();
  const size_t w2 = shortWire.find("\"wire\":\"") + 8;
  shortWire.replace(w2, shortWire.find('"', w2) - w2, "AAAA");
  CHECK(refused(shortWire) == "hdnsdCache[0].wire: 3 bytes is no DNS answer");

  std::string noTtl = sample();
  noTtl.replace(noTtl.find("\"ttl\":300"), 9, "\"ttl\":-1");
  CHECK(refused(noTtl) == "hdnsdCache[0].ttl: expected a whole number");

  std::string badItem = sample();
  badItem.replace(badItem.find("\"10.244.1.1\""), 12, "\"10.244.1.x\"");
  CHECK(refused(badItem).find("cluster part: items[1] (EndpointSlice shop/web-abc)") == 0);
}

TEST_CASE("base64: RFC 4648 test vectors, round trips, and bad input refused") {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (auto [plain, coded] : vectors) {
    CHECK(base64Encode(reinterpret_cast<const uint8_t*>(plain), std::strlen(plain)) == coded);
    auto back = base64Decode(coded);
    REQUIRE(back.has_value());
    CHECK(std::string(back->begin(), back->end()) == plain);
  }
  std::vector<uint8_t> all(256);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint8_t(i);
  CHECK(base64Decode(base64Encode(all.data(), all.size())) == all);
  for (const char* bad : {"Zg=", "Zm9v!A==", "=AAA", "Zg=a", "Z===", "Zm9v\n"}) CHECK_MESSAGE(!base64Decode(bad), bad);
}

TEST_CASE("writeFileAtomically: the whole file, mode 0600, no temporary left") {
  TempDir d;
  const std::string path = d.path + "/state.json";
  REQUIRE(writeFileAtomically(path, "first").has_value());
  REQUIRE(writeFileAtomically(path, "second, longer").has_value());
  CHECK(slurp(path) == "second, longer");
  struct stat sb{};
  REQUIRE(stat(path.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0600);
  CHECK(d.entries() == std::vector<std::string>{"state.json"});
}

TEST_CASE("writeFileAtomically: a failed write leaves the old file and no temporary") {
  TempDir d;
  const std::string path = d.path + "/state.json";
  REQUIRE(writeFileAtomically(path, "old").has_value());
  // The rename cannot replace a non-empty directory: the last step fails after a full write.
  const std::string dirTarget = d.path + "/busy";
  REQUIRE(mkdir(dirTarget.c_str(), 0700) == 0);
  REQUIRE(writeFileAtomically(dirTarget + "/x", "x").has_value());
  auto r = writeFileAtomically(dirTarget, "new");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("cannot rename over " + dirTarget) == 0);
  CHECK(slurp(path) == "old");
  auto names = d.entries();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"busy", "state.json"});
  // A directory that does not exist: nothing created anywhere.
  auto missing = writeFileAtomically(d.path + "/no/such/dir/state.json", "x");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().find("cannot create") == 0);
}

TEST_CASE("readStateFile: missing is no error; too large and not a file are") {
  TempDir d;
  auto none = readStateFile(d.path + "/absent.json");
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  REQUIRE(writeFileAtomically(d.path + "/s.json", "0123456789").has_value());
  auto ok = readStateFile(d.path + "/s.json");
  REQUIRE(ok.has_value());
  CHECK(**ok == "0123456789");
  auto big = readStateFile(d.path + "/s.json", 9);
  REQUIRE_FALSE(big.has_value());
  CHECK(big.error().find("more than the 9") != std::string::npos);
  auto dir = readStateFile(d.path);
  REQUIRE_FALSE(dir.has_value());
  CHECK(dir.error().find("not a regular file") != std::string::npos);
}
