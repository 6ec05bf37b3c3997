#include "hdnsd/kube/api_url.h"

namespace hdnsd::kube {

const char* resourceName(Resource r) noexcept {
  switch (r) {
    case Resource::kEndpointSlices: return "endpointslices";
    case Resource::kServices: return "services";
    case Resource::kEndpoints: return "endpoints";
    case Resource::kPods: return "pods";
  }
  return "?";
}

std::string rbacHint(Resource r) {
  const char* group = r == Resource::kEndpointSlices ? "\"discovery.k8s.io\"" : "\"\" (core)";
  return std::string("list and watch \"") + resourceName(r) + "\" in API group " + group;
}

std::string collectionPath(Resource r, std::string_view ns) {
  std::string p = r == Resource::kEndpointSlices ? "/apis/discovery.k8s.io/v1" : "/api/v1";
  if (!ns.empty()) {
    p += "/namespaces/";
    p += queryEscape(ns);
  }
  p += "/";
  p += resourceName(r);
  return p;
}

std::string queryEscape(std::string_view v) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(v.size());
  for (unsigned char c : v) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

std::string start(std::string_view base, Resource r, const Scope& s) {
  std::string u(base);
  while (!u.empty() && u.back() == '/') u.pop_back();
  u += collectionPath(r, s.ns);
  return u;
}

void addSelectors(std::string& u, const Scope& s) {
  if (!s.labelSelector.empty()) u += "&labelSelector=" + queryEscape(s.labelSelector);
  if (!s.fieldSelector.empty()) u += "&fieldSelector=" + queryEscape(s.fieldSelector);
}

}  // namespace

std::string listUrl(std::string_view base, Resource r, const Scope& s, uint32_t limit,
                    std::string_view continueToken) {
  std::string u = start(base, r, s) + "?limit=" + std::to_string(limit);
  if (!continueToken.empty()) u += "&continue=" + queryEscape(continueToken);
  addSelectors(u, s);
  return u;
}

std::string watchUrl(std::string_view base, Resource r, const Scope& s, const WatchParams& p) {
  std::string u = start(base, r, s) + "?watch=1&allowWatchBookmarks=true&timeoutSeconds=" +
                  std::to_string(p.timeout_s);
  if (p.sendInitialEvents) u += "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan";
  if (!p.resourceVersion.empty()) u += "&resourceVersion=" + queryEscape(p.resourceVersion);
  addSelectors(u, s);
  return u;
}

}  // namespace hdnsd::kube
