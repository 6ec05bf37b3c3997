// Decoding what the API server sends for one resource: a watch event line
// ({"type":"ADDED","object":{...}}) or a list page ({"kind":"EndpointSliceList","metadata":
// {"resourceVersion":"..","continue":".."},"items":[...]}) into model objects. Pure functions
// (control path: may allocate; never throw, errors are one line).
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <string_view>
#include <vector>

#include "hdnsd/cluster/model.h"
#include "hdnsd/kube/api_url.h"
#include "hdnsd/util/result.h"

namespace hdnsd::kube {

// The bookmark annotation that ends the initial events of a streaming list (sendInitialEvents).
inline constexpr const char* kInitialEventsEndAnnotation = "k8s.io/initial-events-end";
// Set by the EndpointSlice controller: when the change that led to this slice happened (the
// start of the DNS programming latency SLI).
inline constexpr const char* kTriggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time";

// A pod of this node (--autopath): what maps a client IP to its namespace.
struct PodInfo {
  std::string ns;
  std::vector<std::string> ips;  // status.podIPs[].ip, else status.podIP
  bool hostNetwork = false;      // spec.hostNetwork: its IP is the node's, shared by many pods
  bool terminal = false;         // status.phase Succeeded/Failed: its IP may already be reused
};

// One API object of the watched resource, decoded.
struct ApiObject {
  std::string key;              // "ns/name" of the object itself
  std::string resourceVersion;  // metadata.resourceVersion
  double triggerTime_s = 0;     // kTriggerTimeAnnotation as Unix seconds, 0 if absent
  std::optional<cluster::Service> service;         // Resource::kServices
  std::optional<cluster::EndpointSlice> slice;     // kEndpointSlices; nullopt: no service label
  std::vector<cluster::EndpointSlice> endpoints;   // kEndpoints, converted (decodeEndpointsObject)
  std::optional<PodInfo> pod;                      // kPods
};

enum class EventType : uint8_t { kAdded, kModified, kDeleted, kBookmark, kError };
const char* eventTypeName(EventType t) noexcept;  // "ADDED", ...

struct WatchEvent {
  EventType type = EventType::kAdded;
  ApiObject object;               // ADDED/MODIFIED/DELETED; BOOKMARK: only resourceVersion
  bool initialEventsEnd = false;  // BOOKMARK carrying k8s.io/initial-events-end: "true"
  // ERROR: the Status object (code 410 reason "Expired"/"Gone" means: relist).
  int errorCode = 0;
  std::string errorReason, errorMessage;
  // ADDED/MODIFIED/DELETED whose object does not decode (a wrong type, a bad IP): the line is a
  // valid event, so the stream is fine and only this object is skipped (object.key and
  // resourceVersion are filled when its metadata has them). Restarting the watch instead would
  // meet the same object again at every restart and never get past it.
  std::string skipped;
};

Result<WatchEvent, std::string> decodeWatchEvent(std::string_view line, Resource r);

struct ListPage {
  std::string resourceVersion;  // of the list (where the watch starts)
  std::string continueToken;    // "" on the last page
  std::vector<ApiObject> items;
  std::vector<ApiObject> skippedItems;  // items that do not decode: key + resourceVersion only
  std::vector<std::string> skipped;     // one line per skipped item, for the log
};
Result<ListPage, std::string> decodeListPage(std::string_view body, Resource r);

// Applies one object of resource `r` (kPods: nothing, the ApiSource keeps pods apart) (an event, a list item; `deleted` for DELETED and for
// objects a relist no longer has) to the model, and returns the keys ("ns/name") of the
// services whose answers may have changed: a Service its own; a slice the service it belongs
// to, before and after (the label can change); v1 Endpoints the same-named service. Empty:
// nothing changed. headlessOnly keeps only headless services (a service turning ClusterIP is
// removed). endpointsSlices remembers which slice keys each v1 Endpoints object became.
// Cost: that object (map operations), never the cluster.
std::vector<std::string> applyObject(cluster::ClusterModel& model,
                                     std::unordered_map<std::string, std::vector<std::string>>& endpointsSlices,
                                     Resource r, ApiObject& obj, bool deleted, bool headlessOnly);

// A Status body (the error response of a failed request): "reason: message", or "" if the
// body is not a Status.
std::string statusMessage(std::string_view body);

// RFC 3339 ("2024-05-01T10:00:00Z", "...T10:00:00.123456789+02:00") → Unix seconds.
std::optional<double> parseRfc3339(std::string_view text);

}  // namespace hdnsd::kube
