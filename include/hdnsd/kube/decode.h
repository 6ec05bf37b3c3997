// Kubernetes JSON (nlohmann_json) → the slim model. Control path: may allocate and throw inside,
// but every function here catches and reports a one-line reason instead.
#pragma once

#include <string>
#include <string_view>

#include "hdnsd/cluster/model.h"
#include "hdnsd/util/result.h"

namespace hdnsd::kube {

// Decodes a `List` (what `kubectl get svc,endpointslices -A -o json` prints), a ServiceList or
// an EndpointSliceList. Items of other kinds are skipped. An item that is malformed fails the
// whole load with a message naming it ("items[3] (EndpointSlice demo/web-abc): endpoints[0]
// .addresses: expected an array"), so a bad file keeps the last good view.
Result<cluster::ClusterModel, std::string> decodeList(std::string_view json);

}  // namespace hdnsd::kube
