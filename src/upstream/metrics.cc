// hdnsd_cache_* and the forwarder's scrape-time numbers. Control path (a scrape).
#include "hdnsd/upstream/forwarder.h"

namespace hdnsd::upstream {

void collectMetrics(std::vector<metrics::FamilyData>& out, std::span<const Forwarder* const> fs,
                    std::span<const cache::Cache* const> cs) {
  using metrics::FamilyData;
  using metrics::Type;
  auto scalar = [&out](const char* name, const char* help, Type type, double v) {
    out.push_back(FamilyData{name, help, type, {}}.add({}, v));
  };
  auto forwarders = [fs](auto number) {
    double n = 0;
    for (const Forwarder* f : fs)
      if (f) n += double(number(*f));
    return n;
  };
  if (!fs.empty()) {
    scalar("hdnsd_upstream_in_flight", "Upstream queries sent and not yet answered (one per distinct question).",
           Type::kGauge, forwarders([](const Forwarder& f) { return f.inFlight(); }));
    scalar("hdnsd_upstream_coalesced_total",
           "Client queries that joined an identical upstream query already in flight instead of sending another.",
           Type::kCounter, forwarders([](const Forwarder& f) { return f.coalesced(); }));
    scalar("hdnsd_upstream_prefetches_started_total",
           "Background upstream queries started to refresh a cached answer close to expiry.", Type::kCounter,
           forwarders([](const Forwarder& f) { return f.prefetchesStarted(); }));
  }
  if (cs.empty()) return;
  // Every cache's counters summed (relaxed loads: each number, not a consistent cut).
  cache::Stats s;
  auto add = [](auto& total, const auto& part) { total.fetch_add(part.load(std::memory_order_relaxed)); };
  for (const cache::Cache* c : cs) {
    if (!c) continue;
    const cache::Stats& p = c->stats();
    for (auto f : {&cache::Stats::hits, &cache::Stats::misses, &cache::Stats::staleServed, &cache::Stats::prefetches,
                    &cache::Stats::truncated, &cache::Stats::replaced})
      add(s.*f, p.*f);
    for (size_t i = 0; i < size_t(cache::InsertOutcome::kCount); ++i) add(s.inserts[i], p.inserts[i]);
    for (size_t i = 0; i < size_t(cache::EvictReason::kCount); ++i) add(s.evictions[i], p.evictions[i]);
    add(s.entries, p.entries);
    add(s.bytes, p.bytes);
  }
  scalar("hdnsd_cache_hits_total", "Queries answered from the cache with a fresh answer.", Type::kCounter,
         double(s.hits.load()));
  scalar("hdnsd_cache_misses_total", "Cache lookups that found nothing servable (the query went upstream).",
         Type::kCounter, double(s.misses.load()));
  scalar("hdnsd_cache_stale_served_total",
         "Expired answers served because every upstream failed or timed out (RFC 8767).", Type::kCounter,
         double(s.staleServed.load()));
  scalar("hdnsd_cache_prefetches_total", "Cache hits that found the answer close to expiry and asked for a refresh.",
         Type::kCounter, double(s.prefetches.load()));
  scalar("hdnsd_cache_truncated_total", "Cache hits too large for the client's UDP size: sent with TC=1.",
         Type::kCounter, double(s.truncated.load()));
  scalar("hdnsd_cache_replaced_total", "Inserts that replaced an entry for the same question.", Type::kCounter,
         double(s.replaced.load()));
  scalar("hdnsd_cache_entries", "Answers in the cache now.", Type::kGauge, double(s.entries.load()));
  scalar("hdnsd_cache_bytes", "Memory charged to the cached answers now.", Type::kGauge, double(s.bytes.load()));
  FamilyData ins{"hdnsd_cache_inserts_total",
                 "Upstream answers offered to the cache, by outcome (positive, negative, servfail are stored).",
                 Type::kCounter, {}};
  for (size_t i = 0; i < size_t(cache::InsertOutcome::kCount); ++i)
    ins.add({{"outcome", cache::insertOutcomeName(cache::InsertOutcome(i))}}, double(s.inserts[i].load()));
  out.push_back(std::move(ins));
  FamilyData ev{"hdnsd_cache_evictions_total", "Entries removed, by reason (entries, bytes, expired).",
                Type::kCounter, {}};
  for (size_t i = 0; i < size_t(cache::EvictReason::kCount); ++i)
    ev.add({{"reason", cache::evictReasonName(cache::EvictReason(i))}}, double(s.evictions[i].load()));
  out.push_back(std::move(ev));
}

}  // namespace hdnsd::upstream
