// kube::listUrl / watchUrl / collectionPath: the documented query parameters.
#include "hdnsd/kube/api_url.h"

#include <doctest/doctest.h>

using namespace hdnsd::kube;

TEST_CASE("collectionPath: groups, versions, namespaces") {
  CHECK(collectionPath(Resource::kEndpointSlices, "") == "/apis/discovery.k8s.io/v1/endpointslices");
  CHECK(collectionPath(Resource::kEndpointSlices, "shop") == "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices");
  CHECK(collectionPath(Resource::kServices, "") == "/api/v1/services");
  CHECK(collectionPath(Resource::kEndpoints, "kube-system") == "/api/v1/namespaces/kube-system/endpoints");
}

TEST_CASE("listUrl: limit, continue, selectors percent-encoded") {
  Scope s;
  CHECK(listUrl("https://10.96.0.1:443/", Resource::kServices, s, 500, "") ==
        "https://10.96.0.1:443/api/v1/services?limit=500");
  s.labelSelector = "service.kubernetes.io/headless,app in (a,b)";
  s.fieldSelector = "metadata.namespace!=kube-system";
  s.ns = "shop";
  CHECK(listUrl("https://h:6443", Resource::kEndpointSlices, s, 2, "tok/en=") ==
        "https://h:6443/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?limit=2&continue=tok%2Fen%3D"
        "&labelSelector=service.kubernetes.io%2Fheadless%2Capp%20in%20%28a%2Cb%29"
        "&fieldSelector=metadata.namespace%21%3Dkube-system");
}

TEST_CASE("watchUrl: resume from a resourceVersion with bookmarks and a timeout") {
  Scope s;
  WatchParams p;
  p.resourceVersion = "12345";
  p.timeout_s = 417;
  CHECK(watchUrl("https://h", Resource::kEndpointSlices, s, p) ==
        "https://h/apis/discovery.k8s.io/v1/endpointslices?watch=1&allowWatchBookmarks=true&timeoutSeconds=417"
        "&resourceVersion=12345");
}

TEST_CASE("watchUrl: streaming list asks for initial events with resourceVersionMatch=NotOlderThan") {
  Scope s;
  s.labelSelector = "!service.kubernetes.io/headless";
  WatchParams p;
  p.sendInitialEvents = true;
  p.timeout_s = 300;
  CHECK(watchUrl("https://h", Resource::kServices, s, p) ==
        "https://h/api/v1/services?watch=1&allowWatchBookmarks=true&timeoutSeconds=300"
        "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&labelSelector=%21service.kubernetes.io%2Fheadless");
}

TEST_CASE("rbacHint names the verb, the resource and the API group") {
  CHECK(rbacHint(Resource::kEndpointSlices) == "list and watch \"endpointslices\" in API group \"discovery.k8s.io\"");
  CHECK(rbacHint(Resource::kServices) == "list and watch \"services\" in API group \"\" (core)");
}
