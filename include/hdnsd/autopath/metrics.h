// /metrics families of --autopath, rendered at scrape time from the Responder's counters and the
// PodIndex it serves with (either may be absent: families with zero values).
#pragma once

#include <vector>

#include "hdnsd/autopath/autopath.h"
#include "hdnsd/metrics/registry.h"

namespace hdnsd::autopath {

// hdnsd_autopath_hits_total{result=view|upstream|nxdomain}, hdnsd_autopath_pods (pods of this
// node with an address in the index), hdnsd_autopath_addresses, hdnsd_autopath_ambiguous_addresses.
void collectMetrics(std::vector<metrics::FamilyData>& out, const Stats& stats, const PodIndex* pods);

}  // namespace hdnsd::autopath
