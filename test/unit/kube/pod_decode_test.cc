// --autopath's pods: a Pod watch event (shape as the apiserver sends it) → PodInfo, and the URL of
// the node-scoped collection.
#include <doctest/doctest.h>

#include "hdnsd/kube/api_url.h"
#include "hdnsd/kube/watch_event.h"

using namespace hdnsd;

TEST_CASE("pods: a Pod event decodes to its namespace, IPs, host network and phase") {
  auto ev = kube::decodeWatchEvent(
      R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-0","namespace":"shop",)"
      R"("resourceVersion":"42"},"spec":{"nodeName":"node-a","containers":[]},"status":{"phase":"Running",)"
      R"("podIP":"10.244.1.5","podIPs":[{"ip":"10.244.1.5"},{"ip":"fd00::5"}]}}})",
      kube::Resource::kPods);
  REQUIRE(ev);
  REQUIRE(ev->skipped.empty());
  CHECK(ev->object.key == "shop/web-0");
  CHECK(ev->object.resourceVersion == "42");
  REQUIRE(ev->object.pod);
  CHECK(ev->object.pod->ns == "shop");
  CHECK(ev->object.pod->ips == std::vector<std::string>{"10.244.1.5", "fd00::5"});
  CHECK_FALSE(ev->object.pod->hostNetwork);
  CHECK_FALSE(ev->object.pod->terminal);

  auto hn = kube::decodeWatchEvent(
      R"({"type":"MODIFIED","object":{"metadata":{"name":"agent","namespace":"kube-system"},)"
      R"("spec":{"hostNetwork":true},"status":{"phase":"Succeeded","podIP":"192.168.0.10"}}})",
      kube::Resource::kPods);
  REQUIRE(hn);
  REQUIRE(hn->object.pod);
  CHECK(hn->object.pod->ips == std::vector<std::string>{"192.168.0.10"});  // podIP when no podIPs
  CHECK(hn->object.pod->hostNetwork);
  CHECK(hn->object.pod->terminal);

  auto pending = kube::decodeWatchEvent(R"({"type":"ADDED","object":{"metadata":{"name":"p","namespace":"x"},)"
                                        R"("status":{"phase":"Pending"}}})",
                                        kube::Resource::kPods);
  REQUIRE(pending);
  REQUIRE(pending->object.pod);
  CHECK(pending->object.pod->ips.empty());
}

TEST_CASE("pods: the node-scoped list and watch URLs") {
  kube::Scope s;
  s.fieldSelector = "spec.nodeName=node-a";
  CHECK(kube::listUrl("https://h:6443", kube::Resource::kPods, s, 500, "") ==
        "https://h:6443/api/v1/pods?limit=500&fieldSelector=spec.nodeName%3Dnode-a");
  CHECK(kube::rbacHint(kube::Resource::kPods) == "list and watch \"pods\" in API group \"\" (core)");
}
