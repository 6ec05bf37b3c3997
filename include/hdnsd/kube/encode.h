// The slim model → Kubernetes JSON: the reverse of decode.h, for the --state-file's cluster part.
// The output is a kubectl `List` that decodeList() (and so --endpoints-file) reads back into an
// equal model: every field decode.h keeps is written, in the shape the API server uses; what the
// model drops (uids, resourceVersions, targetPorts, FQDN addresses) is not invented.
//
// Pure functions, no allocation beyond the output string: they run on the thread pool while the
// model is held still (ApiSource::holdModel). Text is appended directly, not built as a
// nlohmann::json tree: 100k endpoints as a tree cost ~10x the output's memory.
#pragma once

#include <string>
#include <string_view>

#include "hdnsd/cluster/model.h"

namespace hdnsd::kube {

// Appends `s` as a JSON string literal (quotes, backslash and control characters escaped; other
// bytes copied as they are: the model's strings came from JSON, so they are UTF-8).
void appendJsonString(std::string& out, std::string_view s);

// One object each, on one line, as the API server would return it.
void appendServiceJson(std::string& out, const cluster::Service& s);
void appendSliceJson(std::string& out, const cluster::EndpointSlice& s);

// Appends `[` + every Service, then every EndpointSlice, one per line + `]`.
void appendItemsJson(std::string& out, const cluster::ClusterModel& model);

// A whole kubectl List: {"apiVersion":"v1","kind":"List","metadata":{...},"items":[...]}.
std::string encodeList(const cluster::ClusterModel& model);

}  // namespace hdnsd::kube
