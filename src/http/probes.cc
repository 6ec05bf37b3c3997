#include "hdnsd/http/probes.h"

#include "hdnsd/util/check.h"

namespace hdnsd::http {

size_t Readiness::addSource(std::string what, std::function<std::string()> problem) {
  sources_.push_back({std::move(what), std::move(problem), false});
  return sources_.size() - 1;
}


void Readiness::markLoaded(size_t id) {
  HDNSD_CHECK(id < sources_.size());
  sources_[id].loaded = true;
}

bool Readiness::ready() const noexcept {
  if (!stopping_.empty()) return false;
  for (const auto& s : sources_)
    if (!s.loaded) return false;
  return true;
}

std::string Readiness::reason() const {
  if (!stopping_.empty()) return stopping_;
  const Source* first = nullptr;
  size_t missing = 0;
  for (const auto& s : sources_) {
    if (s.loaded) continue;
    if (!first) first = &s;
    ++missing;
  }
  if (!first) return {};
  std::string why = first->problem ? first->problem() : std::string();
  std::string out = first->what + (why.empty() ? " not loaded yet" : " not loaded: " + why);
  if (missing > 1) out += " (and " + std::to_string(missing - 1) + " more)";
  return out;
}

Handler makeProbeHandler(const metrics::Registry& registry, const Readiness& readiness) {
  return [&registry, &readiness](std::string_view method, std::string_view path) -> Response {
    const bool known = path == "/health" || path == "/ready" || path == "/metrics";
    if (!known) return {404, "text/plain; charset=utf-8", "not found\n", {}};
    if (method != "GET" && method != "HEAD") {
      return {405, "text/plain; charset=utf-8", "method not allowed\n", "GET, HEAD"};
    }
    if (path == "/health") return {200, "text/plain; charset=utf-8", "ok\n", {}};
    if (path == "/ready") {
      if (readiness.ready()) return {200, "text/plain; charset=utf-8", "ready\n", {}};
      return {503, "text/plain; charset=utf-8", "not ready: " + readiness.reason() + "\n", {}};
    }
    return {200, kMetricsContentType, registry.render(), {}};
  };
}

}  // namespace hdnsd::http
