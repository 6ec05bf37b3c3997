// kube::decodeWatchEvent / decodeListPage / applyObject: watch lines → model → Snapshot answers,
// per-service rebuilds compared with a full build.
#include "hdnsd/kube/watch_event.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/dns/name.h"
#include "hdnsd/dns/wire.h"

namespace {

using namespace hdnsd;
using kube::EventType;
using kube::Resource;

std::string svcEvent(const char* type, const char* name, const char* clusterIP) {
  return std::string(R"({"type":")") + type + R"(","object":{"kind":"Service","apiVersion":"v1",)" +
         R"("metadata":{"name":")" + name + R"(","namespace":"shop","resourceVersion":"11"},)" +
         R"("spec":{"clusterIP":")" + clusterIP + R"(","ports":[{"name":"http","port":80}]}}})";
}

// An EndpointSlice event; `eps` is the JSON of the endpoints array.
std::string sliceEvent(const char* type, const char* name, const char* svc, const std::string& eps,
                       const char* rv = "12", const char* trigger = nullptr) {
  std::string ann = trigger ? std::string(R"(,"annotations":{"endpoints.kubernetes.io/last-change-trigger-time":")") +
                                  trigger + "\"}"
                            : "";
  return std::string(R"({"type":")") + type + R"(","object":{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1",)" +
         R"("metadata":{"name":")" + name + R"(","namespace":"shop","resourceVersion":")" + rv + "\"" +
         R"(,"labels":{"kubernetes.io/service-name":")" + svc + "\"}" + ann + "}," +
         R"("addressType":"IPv4","endpoints":)" + eps + R"(,"ports":[{"name":"http","port":8080}]}})";
}

std::vector<std::string> addresses(const cluster::Snapshot& s, const char* text, const char** rcode = nullptr) {
  std::string wire;
  REQUIRE(dns::textToWire(text, &wire));
  dns::NameKey k;
  REQUIRE(k.assignWire(wire));
  auto l = s.lookup(k, dns::kTypeA);
  if (rcode) *rcode = l.kind == cluster::Lookup::Kind::kNxDomain ? "NXDOMAIN" : "NOERROR";
  std::vector<std::string> out;
  if (l.kind != cluster::Lookup::Kind::kAnswer) return out;
  for (const auto& rd : l.answer->rdatas) {
    const auto* b = reinterpret_cast<const uint8_t*>(rd.bytes.data());
    out.push_back(std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." +
                  std::to_string(b[3]));
  }
  std::sort(out.begin(), out.end());
  return out;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("decodeWatchEvent: ADDED / MODIFIED / DELETED carry the decoded object and its resourceVersion") {
  auto ev = kube::decodeWatchEvent(
      sliceEvent("ADDED", "web-1", "web", R"([{"addresses":["10.0.0.1"],"conditions":{"ready":false}}])", "77",
                 "2024-05-01T10:00:00.5Z"),
      Resource::kEndpointSlices);
  REQUIRE(ev.has_value());
  CHECK(ev->type == EventType::kAdded);
  CHECK(ev->object.key == "shop/web-1");
  CHECK(ev->object.resourceVersion == "77");
  CHECK(ev->object.triggerTime_s == doctest::Approx(1714557600.5));
  REQUIRE(ev->object.slice.has_value());
  CHECK(ev->object.slice->serviceName == "web");
  REQUIRE(ev->object.slice->endpoints.size() == 1);
  CHECK(ev->object.slice->endpoints[0].ready == false);

  auto mod = kube::decodeWatchEvent(svcEvent("MODIFIED", "api", "10.96.0.7"), Resource::kServices);
  REQUIRE(mod.has_value());
  CHECK(mod->type == EventType::kModified);
  REQUIRE(mod->object.service.has_value());
  CHECK(mod->object.service->clusterIPs.at(0).text() == "10.96.0.7");

  auto del = kube::decodeWatchEvent(svcEvent("DELETED", "api", "10.96.0.7"), Resource::kServices);
  REQUIRE(del.has_value());
  CHECK(del->type == EventType::kDeleted);
  CHECK(del->object.key == "shop/api");
}

TEST_CASE("decodeWatchEvent: BOOKMARK, the initial-events-end bookmark, and ERROR 410 Expired") {
  auto bm = kube::decodeWatchEvent(
      R"({"type":"BOOKMARK","object":{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"900"}}})",
      Resource::kEndpointSlices);
  REQUIRE(bm.has_value());
  CHECK(bm->type == EventType::kBookmark);
  CHECK(bm->object.resourceVersion == "900");
  CHECK_FALSE(bm->initialEventsEnd);

  auto end = kube::decodeWatchEvent(
      R"({"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":{"resourceVersion":"901","annotations":{"k8s.io/initial-events-end":"true"}}}})",
      Resource::kServices);
  REQUIRE(end.has_value());
  CHECK(end->initialEventsEnd);

  auto err = kube::decodeWatchEvent(
      R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (900)","reason":"Expired","code":410}})j",
      Resource::kServices);
  REQUIRE(err.has_value());
  CHECK(err->type == EventType::kError);
  CHECK(err->errorCode == 410);
  CHECK(err->errorReason == "Expired");
  CHECK(err->errorMessage == "too old resource version: 5 (900)");
}

TEST_CASE("decodeWatchEvent: bad lines are errors with a reason, never exceptions") {
  CHECK_FALSE(kube::decodeWatchEvent("{\"type\":\"ADDED\",\"object\":", Resource::kServices).has_value());
  CHECK_FALSE(kube::decodeWatchEvent("[]", Resource::kServices).has_value());
  CHECK_FALSE(kube::decodeWatchEvent(R"({"type":"SURPRISE","object":{}})", Resource::kServices).has_value());
  CHECK_FALSE(kube::decodeWatchEvent(R"({"type":"BOOKMARK","object":{"metadata":{}}})", Resource::kServices).has_value());
  auto bad = kube::decodeWatchEvent(
      sliceEvent("ADDED", "web-1", "web", R"([{"addresses":["10.0.0.300"]}])"), Resource::kEndpointSlices);
  // A valid event with an object that does not decode: the stream is fine, only the object is
  // skipped (restarting the watch would meet it again and never get past it).
  REQUIRE(bad.has_value());
  CHECK(bad->skipped.find("EndpointSlice shop/web-1: endpoints[0].addresses[0]") != std::string::npos);
  CHECK(bad->object.key == "shop/web-1");
  CHECK_FALSE(bad->object.slice.has_value());
}

TEST_CASE("decodeListPage: items, resourceVersion and continue token") {
  auto page = kube::decodeListPage(
      R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"55","continue":"abc"},"items":[
          {"metadata":{"name":"a","namespace":"x"},"spec":{"clusterIP":"None"}},
          {"metadata":{"name":"b","namespace":"x"},"spec":{"clusterIP":"10.96.0.2"}}]})",
      Resource::kServices);
  REQUIRE(page.has_value());
  CHECK(page->resourceVersion == "55");
  CHECK(page->continueToken == "abc");
  REQUIRE(page->items.size() == 2);
  CHECK(page->items[0].key == "x/a");
  CHECK(page->items[0].service->headless);
  CHECK_FALSE(kube::decodeListPage(R"({"kind":"ServiceList","items":[]})", Resource::kServices).has_value());
}

TEST_CASE("parseRfc3339: Z, fractions and offsets; garbage rejected") {
  CHECK(*kube::parseRfc3339("1970-01-01T00:00:10Z") == doctest::Approx(10));
  CHECK(*kube::parseRfc3339("2024-05-01T10:00:00.25Z") == doctest::Approx(1714557600.25));
  CHECK(*kube::parseRfc3339("2024-05-01T12:00:00+02:00") == doctest::Approx(1714557600));
  CHECK_FALSE(kube::parseRfc3339("2024-05-01 10:00:00").has_value());
  CHECK_FALSE(kube::parseRfc3339("2024-05-01T10:00:00").has_value());
}

TEST_CASE("applyObject + rebuildService: events give the same answers as a full build, per service") {
  cluster::ClusterModel model;
  std::unordered_map<std::string, std::vector<std::string>> eps;
  cluster::ViewOptions opts;
  auto apply = [&](const std::string& line, Resource r) {
    auto ev = kube::decodeWatchEvent(line, r);
    REQUIRE(ev.has_value());
    return kube::applyObject(model, eps, r, ev->object, ev->type == EventType::kDeleted, false);
  };
  apply(svcEvent("ADDED", "web", "None"), Resource::kServices);
  apply(svcEvent("ADDED", "api", "10.96.0.9"), Resource::kServices);
  apply(sliceEvent("ADDED", "web-1", "web", R"([{"addresses":["10.0.0.1"]},{"addresses":["10.0.0.2"]}])"),
        Resource::kEndpointSlices);
  auto snap = cluster::Snapshot::build(model, opts);
  CHECK(addresses(*snap, "web.shop.svc.cluster.local") == Strings{"10.0.0.1", "10.0.0.2"});

  // Scale up with a second slice, one address duplicated and a not-ready one.
  auto affected = apply(sliceEvent("ADDED", "web-2", "web",
                                   R"([{"addresses":["10.0.0.2"]},{"addresses":["10.0.0.3"]},
                                       {"addresses":["10.0.0.4"],"conditions":{"ready":false}}])"),
                        Resource::kEndpointSlices);
  CHECK(affected == Strings{"shop/web"});
  for (const auto& k : affected) snap = cluster::Snapshot::rebuildService(*snap, model, k);
  CHECK(addresses(*snap, "web.shop.svc.cluster.local") == Strings{"10.0.0.1", "10.0.0.2", "10.0.0.3"});
  CHECK(addresses(*snap, "api.shop.svc.cluster.local") == Strings{"10.96.0.9"});

  // A pod goes not-ready, then a slice is deleted.
  affected = apply(sliceEvent("MODIFIED", "web-1", "web",
                              R"([{"addresses":["10.0.0.1"],"conditions":{"ready":false}},{"addresses":["10.0.0.2"]}])"),
                   Resource::kEndpointSlices);
  for (const auto& k : affected) snap = cluster::Snapshot::rebuildService(*snap, model, k);
  CHECK(addresses(*snap, "web.shop.svc.cluster.local") == Strings{"10.0.0.2", "10.0.0.3"});
  affected = apply(sliceEvent("DELETED", "web-2", "web", "[]"), Resource::kEndpointSlices);
  for (const auto& k : affected) snap = cluster::Snapshot::rebuildService(*snap, model, k);
  CHECK(addresses(*snap, "web.shop.svc.cluster.local") == Strings{"10.0.0.2"});

  // The incremental view answers as a full build of the same model does.
  auto full = cluster::Snapshot::build(model, opts);
  for (const char* n : {"web.shop.svc.cluster.local", "api.shop.svc.cluster.local", "nope.shop.svc.cluster.local"})
    CHECK(addresses(*snap, n) == addresses(*full, n));
  CHECK(snap->endpointCount() == full->endpointCount());

  // Deleting the service: NXDOMAIN.
  affected = apply(svcEvent("DELETED", "web", "None"), Resource::kServices);
  CHECK(affected == Strings{"shop/web"});
  for (const auto& k : affected) snap = cluster::Snapshot::rebuildService(*snap, model, k);
  const char* rc = nullptr;
  CHECK(addresses(*snap, "web.shop.svc.cluster.local", &rc).empty());
  CHECK(std::string(rc) == "NXDOMAIN");
}

TEST_CASE("applyObject: a slice relabelled to another service dirties both; unknown deletions change nothing") {
  cluster::ClusterModel model;
  std::unordered_map<std::string, std::vector<std::string>> eps;
  auto ev = kube::decodeWatchEvent(sliceEvent("ADDED", "s1", "a", R"([{"addresses":["10.0.0.1"]}])"),
                                   Resource::kEndpointSlices);
  kube::applyObject(model, eps, Resource::kEndpointSlices, ev->object, false, false);
  ev = kube::decodeWatchEvent(sliceEvent("MODIFIED", "s1", "b", R"([{"addresses":["10.0.0.1"]}])"),
                              Resource::kEndpointSlices);
  CHECK(kube::applyObject(model, eps, Resource::kEndpointSlices, ev->object, false, false) ==
        Strings{"shop/a", "shop/b"});
  kube::ApiObject gone;
  gone.key = "shop/never";
  CHECK(kube::applyObject(model, eps, Resource::kServices, gone, true, false).empty());
}

TEST_CASE("applyObject: --headless-only keeps headless services only; v1 Endpoints become slices") {
  cluster::ClusterModel model;
  std::unordered_map<std::string, std::vector<std::string>> eps;
  auto ev = kube::decodeWatchEvent(svcEvent("ADDED", "api", "10.96.0.9"), Resource::kServices);
  CHECK(kube::applyObject(model, eps, Resource::kServices, ev->object, false, true).empty());
  CHECK(model.services.empty());
  ev = kube::decodeWatchEvent(svcEvent("ADDED", "web", "None"), Resource::kServices);
  kube::applyObject(model, eps, Resource::kServices, ev->object, false, true);
  CHECK(model.services.count("shop/web") == 1);

  auto e = kube::decodeWatchEvent(
      R"({"type":"ADDED","object":{"kind":"Endpoints","apiVersion":"v1","metadata":{"name":"web","namespace":"shop"},
          "subsets":[{"addresses":[{"ip":"10.0.0.1","hostname":"w0"}],"notReadyAddresses":[{"ip":"10.0.0.2"}],
                      "ports":[{"name":"http","port":80}]}]}})",
      Resource::kEndpoints);
  REQUIRE(e.has_value());
  CHECK(kube::applyObject(model, eps, Resource::kEndpoints, e->object, false, true) == Strings{"shop/web"});
  auto snap = cluster::Snapshot::build(model, {});
  CHECK(addresses(*snap, "web.shop.svc.cluster.local") == Strings{"10.0.0.1"});
  CHECK(addresses(*snap, "w0.web.shop.svc.cluster.local") == Strings{"10.0.0.1"});
  kube::ApiObject del;
  del.key = "shop/web";
  CHECK(kube::applyObject(model, eps, Resource::kEndpoints, del, true, true) == Strings{"shop/web"});
  CHECK(model.slices().empty());
}

TEST_CASE("decodeListPage: an item that does not decode is skipped, the rest of the page kept") {
  auto page = kube::decodeListPage(
      R"({"kind":"ServiceList","metadata":{"resourceVersion":"7"},"items":[
          {"metadata":{"namespace":"shop","name":"bad","resourceVersion":"5"},"spec":{"clusterIP":["not","a","string"]}},
          {"metadata":{"namespace":"shop","name":"good","resourceVersion":"6"},"spec":{"clusterIP":"10.96.0.7"}}]})",
      Resource::kServices);
  REQUIRE(page.has_value());
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].key == "shop/good");
  REQUIRE(page->skippedItems.size() == 1);
  CHECK(page->skippedItems[0].key == "shop/bad");
  CHECK(page->skipped[0].find("items[0]") != std::string::npos);
}
