// The Daemon's --state-file hook (warm restart, issue 6 part 7; the logic is ops/state_file.h).
// With --workers N the hottest answers of worker 0's cache (on this loop) are saved: the others
// live on their own threads, and the names most asked for are in every worker's cache anyway.
// What is loaded goes into every worker's cache (the kernel spreads clients over them).
#include "hdnsd/server/daemon.h"
#include "hdnsd/util/log.h"

#ifndef HDNSD_VERSION
#define HDNSD_VERSION "dev"
#endif

namespace hdnsd::server {

void Daemon::startStateFile() {
  if (cfg_.stateFile.empty()) return;
  ops::StateFileOptions o;
  o.path = cfg_.stateFile;
  o.interval_s = cfg_.stateFileInterval_s;
  o.zone = cfg_.clusterDomain;
  o.version = HDNSD_VERSION;
  o.maxAge_s = cfg_.cache.maxStale_s;  // a saved view is stale data: the serve-stale window bounds it
  ops::StateSources s;
  s.api = api_.get();
  s.cache = workers_[0]->cache();
  s.restoreElsewhere = [this](std::shared_ptr<const std::vector<ops::SavedAnswer>> answers) {
    for (size_t i = 1; i < workers_.size(); ++i) workers_[i]->restoreCache(answers);
  };
  s.source = api_ ? "kubernetes-api" : endpoints_ ? "endpoints-file" : "none";
  s.currentView = [this] { return view_; };
  s.serveStale = [this](std::shared_ptr<const cluster::Snapshot> v) {
    publishSnapshot(std::move(v));  // not markLoaded: /ready and READY=1 wait for the API
    notifier_.status("serving the view saved in --state-file until the Kubernetes API syncs");
  };
  s.view = viewOptions();
  state_ = std::make_unique<ops::StateFile>(loop_, std::move(o), std::move(s), registry_);
  state_->start();
}

}  // namespace hdnsd::server
