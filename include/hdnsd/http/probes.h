// The operator endpoints served by http::Server for `--metrics ADDR:PORT`:
//   GET /health  200 "ok\n". Answered by the loop itself, so a reply proves the loop turns
//                (a wedged loop times the probe out, which is what the liveness probe wants).
//   GET /ready   200 "ready\n" once every registered source has loaded, else 503 with one
//                line: "not ready: endpoints file examples/x.json not loaded yet\n".
//   GET /metrics Prometheus text format 0.0.4 from the Registry.
// HEAD works on all three (Server drops the body); other methods get 405 with
// "Allow: GET, HEAD"; other paths 404.
//
// Threads: loop thread only (Readiness is plain state read by the handler on the loop).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "hdnsd/http/server.h"
#include "hdnsd/metrics/registry.h"

namespace hdnsd::http {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The sources the daemon must load before it may take traffic. Once ready, stays ready: after
// the first sync a source keeps serving its last good data through errors.
class Readiness {
 public:
  // `what` names the source in the 503 line, e.g. "endpoints file examples/x.json". `problem`,
  // if given, says why it is not loaded yet (the last load error, "" if none). Returns the id
  // for markLoaded.
  size_t addSource(std::string what, std::function<std::string()> problem = {});
  void markLoaded(size_t id);
  // Lame duck (SIGTERM with --lameduck): not ready from now on, saying `why`, whatever loaded.
  void setStopping(std::string why) { stopping_ = std::move(why); }

  bool ready() const noexcept;
  // "" when ready; else "<first missing> not loaded yet" (or "not loaded: <problem>"), plus
  // " (and N more)" if several.
  std::string reason() const;

 private:
  struct Source {
    std::string what;
    std::function<std::string()> problem;
    bool loaded = false;
  };
  std::vector<Source> sources_;
  std::string stopping_;
};

// Both must outlive the Server that uses the handler.
Handler makeProbeHandler(const metrics::Registry& registry, const Readiness& readiness);

}  // namespace hdnsd::http
