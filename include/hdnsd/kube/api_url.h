// Kubernetes API request URLs for the list+watch of one resource (in one namespace or
// cluster-wide). Pure string building, unit-tested against the documented query parameters
// (kubernetes.io/docs/reference/using-api/api-concepts: "Efficient detection of changes",
// "Retrieving large results sets in chunks", "Streaming lists").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hdnsd::kube {

// kPods: only with --autopath, only this node's (fieldSelector=spec.nodeName=NODE).
enum class Resource : uint8_t { kEndpointSlices, kServices, kEndpoints, kPods };

// "endpointslices", "services", "endpoints", "pods" (metric labels, log lines).
const char* resourceName(Resource r) noexcept;
// The RBAC wording for a 401/403 line: `list and watch "endpointslices" in API group "discovery.k8s.io"`.
std::string rbacHint(Resource r);

struct Scope {
  std::string ns;             // "" = all namespaces
  std::string labelSelector;  // "" = none
  std::string fieldSelector;  // "" = none
};

// The collection path: /apis/discovery.k8s.io/v1/endpointslices, /api/v1/namespaces/NS/services, ...
std::string collectionPath(Resource r, std::string_view ns);

// RFC 3986 percent-encoding of a query value (unreserved characters kept).
std::string queryEscape(std::string_view v);

// base: "https://10.96.0.1:443" (no trailing slash needed).
// A list page: ?limit=N[&continue=TOKEN] plus the selectors. resourceVersion is left unset: a
// consistent (quorum) read, which is what pagination with continue tokens is defined on.
std::string listUrl(std::string_view base, Resource r, const Scope& s, uint32_t limit,
                    std::string_view continueToken);

struct WatchParams {
  std::string resourceVersion;  // resume point; "" with sendInitialEvents
  uint32_t timeout_s = 300;     // the server ends the stream after this (timeoutSeconds)
  bool sendInitialEvents = false;  // streaming list: resourceVersionMatch=NotOlderThan
};
// ?watch=1&allowWatchBookmarks=true&timeoutSeconds=T&resourceVersion=RV plus the selectors
// (with sendInitialEvents: &sendInitialEvents=true&resourceVersionMatch=NotOlderThan, and a
// resourceVersion only when one is known).
std::string watchUrl(std::string_view base, Resource r, const Scope& s, const WatchParams& p);

}  // namespace hdnsd::kube
