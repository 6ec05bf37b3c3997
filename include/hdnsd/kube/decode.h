// Kubernetes JSON (nlohmann_json) → the slim model. Control path: may allocate and throw inside,
// but every function here catches and reports a one-line reason instead.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hdnsd/cluster/model.h"
#include "hdnsd/util/result.h"

namespace hdnsd::kube {

// Decodes a `List` (what `kubectl get svc,endpointslices -A -o json` prints), a ServiceList or
// an EndpointSliceList. Items of other kinds are skipped. An item that is malformed fails the
// whole load with a message naming it ("items[3] (EndpointSlice demo/web-abc): endpoints[0]
// .addresses: expected an array"), so a bad file keeps the last good view.
Result<cluster::ClusterModel, std::string> decodeList(std::string_view json);

// What a successful decode kept and skipped (for the log line and metrics).
struct DecodeStats {
  size_t services = 0;
  size_t slices = 0;
  size_t skippedKinds = 0;      // items of other kinds (v1 Endpoints, Pods, ...)
  size_t skippedUnlabeled = 0;  // EndpointSlices without the kubernetes.io/service-name label
};
Result<cluster::ClusterModel, std::string> decodeList(std::string_view json, DecodeStats* stats);
// The same from a parsed document (the --state-file reader parses once and reads its other
// members from the same tree).
Result<cluster::ClusterModel, std::string> decodeListJson(const nlohmann::json& root, DecodeStats* stats);

// The label that ties an EndpointSlice to its Service (discovery.k8s.io/v1).
inline constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";

// One object, as in a list page's items[] or a watch event's "object" (the API watch). Same
// field decoding as decodeList (one code path); errors are one line naming the field
// ("Service demo/web: spec.ports[0].port: out of range 1..65535"). Namespace "" → "default".
Result<cluster::Service, std::string> decodeServiceObject(const nlohmann::json& obj);
// nullopt (not an error): a slice without the kubernetes.io/service-name label (no Service to
// serve it).
Result<std::optional<cluster::EndpointSlice>, std::string> decodeSliceObject(const nlohmann::json& obj);
// A v1 Endpoints object (the fallback where discovery.k8s.io/v1 is absent), as EndpointSlices:
// one per subset and address family, named "<name>#<subset>v4|v6" so that they sort under the
// "<ns>/" key range of the service's namespace. addresses are ready, notReadyAddresses not.
Result<std::vector<cluster::EndpointSlice>, std::string> decodeEndpointsObject(const nlohmann::json& obj);

}  // namespace hdnsd::kube
