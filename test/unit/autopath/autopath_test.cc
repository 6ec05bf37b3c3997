// The pure half of --autopath: the search-name split, the walk's candidates and decision, and the
// client IP → namespace index. The walk is checked against CoreDNS's autopath semantics: the search
// path of a pod in namespace N is N.svc.<zone>, svc.<zone>, <zone>, then the bare name.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "hdnsd/autopath/autopath.h"

using namespace hdnsd;

namespace {

dns::NameKey key(const std::string& text) {
  std::string w;
  REQUIRE(dns::textToWire(text, &w));
  dns::NameKey k;
  REQUIRE(k.assignWire(w));
  return k;
}

const std::string& zone() {
  static std::string z = [] {
    std::string w;
    dns::textToWire("cluster.local", &w);
    return w;
  }();
  return z;
}

// A view that holds exactly these names (and, like the real one, their parents as empty non-terminals).
struct FakeView {
  std::set<std::string> names;
  std::vector<std::string> asked;
  explicit FakeView(std::initializer_list<const char*> ns) {
    for (const char* n : ns) {
      std::string t = n;
      while (true) {
        names.insert(key(t).text());
        auto dot = t.find('.');
        if (dot == std::string::npos || t.substr(dot + 1) == "cluster.local") break;
        t = t.substr(dot + 1);
      }
    }
  }
  bool operator()(const dns::NameKey& k) {
    asked.push_back(k.text());
    return names.count(k.text()) > 0;
  }
};

autopath::Plan planFor(const std::string& qname, FakeView& v, bool canForward = true) {
  return autopath::plan(key(qname), "shop", zone(), canForward, [&v](const dns::NameKey& k) { return v(k); });
}

}  // namespace

TEST_CASE("splitFirstSearch: <X>.<ns>.svc.<zone> gives X's label count, anything else 0") {
  CHECK(autopath::splitFirstSearch(key("api.example.com.shop.svc.cluster.local"), "shop", zone()) == 3);
  CHECK(autopath::splitFirstSearch(key("web.shop.svc.cluster.local"), "shop", zone()) == 1);
  CHECK(autopath::splitFirstSearch(key("a.web.shop.svc.cluster.local"), "shop", zone()) == 2);
  CHECK(autopath::splitFirstSearch(key("shop.svc.cluster.local"), "shop", zone()) == 0);       // no X
  CHECK(autopath::splitFirstSearch(key("web.team.svc.cluster.local"), "shop", zone()) == 0);   // other ns
  CHECK(autopath::splitFirstSearch(key("web.xshop.svc.cluster.local"), "shop", zone()) == 0);  // label, not suffix
  CHECK(autopath::splitFirstSearch(key("web.shop.pod.cluster.local"), "shop", zone()) == 0);
  CHECK(autopath::splitFirstSearch(key("web.shop.svc.cluster.other"), "shop", zone()) == 0);
  CHECK(autopath::splitFirstSearch(key("web.shop.svc.xcluster.local"), "shop", zone()) == 0);
  CHECK(autopath::splitFirstSearch(key("web.shop.svc.cluster.local"), "", zone()) == 0);
}

TEST_CASE("candidate: the pod's search path for X, then X itself") {
  auto q = key("api.example.com.shop.svc.cluster.local");
  dns::NameKey c;
  REQUIRE(autopath::candidate(q, 3, 0, zone(), &c));
  CHECK(c.text() == "api.example.com.shop.svc.cluster.local.");
  REQUIRE(autopath::candidate(q, 3, 1, zone(), &c));
  CHECK(c.text() == "api.example.com.svc.cluster.local.");
  REQUIRE(autopath::candidate(q, 3, 2, zone(), &c));
  CHECK(c.text() == "api.example.com.cluster.local.");
  REQUIRE(autopath::candidate(q, 3, 3, zone(), &c));
  CHECK(c.text() == "api.example.com.");
  CHECK(c.labelCount() == 3);
  CHECK_FALSE(autopath::candidate(q, 3, 4, zone(), &c));
  CHECK_FALSE(autopath::candidate(q, 0, 1, zone(), &c));
}

TEST_CASE("plan: an outside name walks the whole path in the view, then is forwarded bare") {
  FakeView v{"web.shop.svc.cluster.local", "web.team.svc.cluster.local"};
  auto p = planFor("api.example.com.shop.svc.cluster.local", v);
  CHECK(p.step == autopath::Step::kForward);
  CHECK(p.target.text() == "api.example.com.");
  CHECK(p.xLabels == 3);
  // Asked in the pod's order; the bare name is outside the zone and never looked up in the view.
  CHECK(v.asked == std::vector<std::string>{"api.example.com.shop.svc.cluster.local.",
                                            "api.example.com.svc.cluster.local.", "api.example.com.cluster.local."});
  auto none = planFor("api.example.com.shop.svc.cluster.local", v, /*canForward=*/false);
  CHECK(none.step == autopath::Step::kOriginal);
}

TEST_CASE("plan: a service of another namespace is found at <X>.svc.<zone> or <X>.<zone>") {
  FakeView v{"web.team.svc.cluster.local"};
  auto p = planFor("web.team.shop.svc.cluster.local", v);  // the pod asked "web.team"
  CHECK(p.step == autopath::Step::kView);
  CHECK(p.target.text() == "web.team.svc.cluster.local.");
  p = planFor("web.team.svc.shop.svc.cluster.local", v);  // the pod asked "web.team.svc"
  CHECK(p.step == autopath::Step::kView);
  CHECK(p.target.text() == "web.team.svc.cluster.local.");
  // An empty non-terminal exists too (NODATA ends a stub's walk): "team" → team.svc.cluster.local.
  p = planFor("team.shop.svc.cluster.local", v);
  CHECK(p.step == autopath::Step::kView);
  CHECK(p.target.text() == "team.svc.cluster.local.");
}

TEST_CASE("plan: a name in the zone asked without its trailing dot is looked up, never forwarded") {
  FakeView v{"web.team.svc.cluster.local"};
  auto p = planFor("web.team.svc.cluster.local.shop.svc.cluster.local", v);  // 4 dots < ndots 5
  CHECK(p.step == autopath::Step::kView);
  CHECK(p.target.text() == "web.team.svc.cluster.local.");
  p = planFor("nope.team.svc.cluster.local.shop.svc.cluster.local", v);
  CHECK(p.step == autopath::Step::kOriginal);
}

TEST_CASE("plan: not applied when the first name exists, X has ndots dots, or the shape differs") {
  FakeView v{"web.shop.svc.cluster.local"};
  CHECK(planFor("web.shop.svc.cluster.local", v).step == autopath::Step::kSkip);  // exists: usual answer
  CHECK(planFor("a.b.c.d.e.shop.svc.cluster.local", v).step == autopath::Step::kForward);  // 4 dots
  v.asked.clear();
  CHECK(planFor("a.b.c.d.e.f.shop.svc.cluster.local", v).step == autopath::Step::kSkip);  // 5 dots: asked as-is first
  CHECK(v.asked.empty());
  CHECK(planFor("www.example.com.team.svc.cluster.local", v).step == autopath::Step::kSkip);  // not its namespace
  CHECK(planFor("www.example.com", v).step == autopath::Step::kSkip);
}

TEST_CASE("PodIndex: IPv4, IPv6 and v4-mapped lookups; ambiguous IPs dropped") {
  auto idx = autopath::PodIndex::build({{"shop", {"10.244.1.5", "fd00::5"}},
                                        {"team", {"10.244.1.6"}},
                                        {"team", {"10.244.1.7"}},
                                        {"other", {"10.244.1.7"}},  // same IP, two namespaces
                                        {"shop", {"10.244.1.8"}},
                                        {"shop", {"10.244.1.8"}},   // same IP, same namespace
                                        {"bad", {"not-an-ip"}}});
  const uint8_t a5[4] = {10, 244, 1, 5}, a6[4] = {10, 244, 1, 6}, a7[4] = {10, 244, 1, 7}, a8[4] = {10, 244, 1, 8},
                a9[4] = {10, 244, 1, 9};
  uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
  CHECK(idx->namespaceOf(a5) == "shop");
  CHECK(idx->namespaceOf(a6) == "team");
  CHECK(idx->namespaceOf(a7) == "");
  CHECK(idx->namespaceOf(a8) == "shop");
  CHECK(idx->namespaceOf(a9) == "");
  CHECK(idx->namespaceOf(v6) == "shop");
  CHECK(idx->namespaceOf({}) == "");
  CHECK(idx->conflicts() == 1);
  CHECK(idx->pods() == 6);  // every pod with a parsable IP
  auto mapped = autopath::PodIndex::build({{"shop", {"::ffff:10.0.0.1"}}});
  const uint8_t m4[4] = {10, 0, 0, 1};
  CHECK(mapped->namespaceOf(m4) == "shop");
}
