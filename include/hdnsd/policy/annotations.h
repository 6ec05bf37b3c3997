// Per-service spreading settings from Service annotations, and the per-endpoint facts the
// compiler turns into SetSpread data (weights, topology tiers). Control path: may allocate;
// never throws (a bad annotation is reported in `errors` and ignored, the service is served).
//
//   metadata:
//     annotations:
//       hdnsd.io/policy: weighted          # none|round-robin|random|weighted|topology|consistent
//       hdnsd.io/max-answers: "8"          # at most 8 records per answer ("0": no cap)
//       hdnsd.io/weights: '{"pod/web-0": 3, "10.0.0.5": 2, "node/node-a": 2,
//                           "zone/us-east-1a": 5, "default": 1}'
//
// An endpoint's weight is the first rule that matches, most specific first: its IP address,
// "pod/<targetRef name>", "hostname/<hostname>", "node/<nodeName>", "zone/<zone>" (the
// zone-level default), "default"; otherwise 1. Weights are whole numbers 0..65535 (the SRV
// weight field is 16 bits); 0 drains an endpoint: it stays in answers but comes last.
// examples/weights-manifest.yaml shows a whole Service.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hdnsd/policy/spread.h"

namespace hdnsd::policy {

inline constexpr const char* kPolicyAnnotation = "hdnsd.io/policy";
inline constexpr const char* kMaxAnswersAnnotation = "hdnsd.io/max-answers";
inline constexpr const char* kWeightsAnnotation = "hdnsd.io/weights";
inline constexpr uint32_t kMaxWeight = 65535;

// What a weight rule and a topology tier are decided from.
struct EndpointFacts {
  std::string_view ipText;  // canonical text (inet_ntop form)
  std::string_view podName, hostname, nodeName, zone;
  const std::vector<std::string>* forZones = nullptr;  // hints.forZones[].name
  const std::vector<std::string>* forNodes = nullptr;  // hints.forNodes[].name
};

struct ServiceSpread {
  std::optional<Kind> kind;
  uint32_t maxAnswers = 0;
  bool hasWeights = false;
  std::map<std::string, uint32_t, std::less<>> weights;  // rule key -> weight
  std::vector<std::string> errors;                       // one line each, for the log

  uint32_t weightOf(const EndpointFacts& ep) const;
};

ServiceSpread parseServiceAnnotations(const std::map<std::string, std::string>& annotations);

// Where this daemon runs (--node-name, --zone or the learned zone).
struct Locality {
  std::string_view nodeName, zone;
  bool known() const noexcept { return !nodeName.empty() || !zone.empty(); }
};

// kTierNode: on our node (nodeName, or hints.forNodes names it); kTierZone: meant for our zone
// (hints.forZones names it; without zone hints, its own zone is ours); kTierOther: the rest.
uint8_t tierOf(const EndpointFacts& ep, const Locality& here) noexcept;

}  // namespace hdnsd::policy
