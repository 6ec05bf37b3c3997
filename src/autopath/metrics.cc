#include "hdnsd/autopath/metrics.h"

namespace hdnsd::autopath {

void collectMetrics(std::vector<metrics::FamilyData>& out, const Stats& stats, const PodIndex* pods) {
  using metrics::FamilyData;
  using metrics::Type;
  FamilyData hits{"hdnsd_autopath_hits_total",
                  "Search walks answered by --autopath, by where they ended: view (a later search name), upstream "
                  "(the bare name, CNAME + its answer), nxdomain (nothing: the first name's own NXDOMAIN).",
                  Type::kCounter, {}};
  for (size_t r = 0; r < size_t(Result::kCount); ++r)
    hits.add({{"result", resultName(Result(r))}}, double(stats.hits[r].load(std::memory_order_relaxed)));
  out.push_back(std::move(hits));
  auto gauge = [&out](const char* name, const char* help, double v) {
    out.push_back(FamilyData{name, help, Type::kGauge, {}}.add({}, v));
  };
  gauge("hdnsd_autopath_pods", "Pods of this node known to --autopath (with an IP, not host-network, not finished).",
        pods ? double(pods->pods()) : 0);
  gauge("hdnsd_autopath_addresses", "Client addresses --autopath maps to a namespace.",
        pods ? double(pods->addresses()) : 0);
  gauge("hdnsd_autopath_ambiguous_addresses",
        "Addresses claimed by pods of two namespaces at once: left out (no autopath for them).",
        pods ? double(pods->conflicts()) : 0);
}

}  // namespace hdnsd::autopath
