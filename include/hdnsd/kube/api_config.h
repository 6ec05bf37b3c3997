// Where the Kubernetes API is and how to authenticate: the in-cluster config (environment
// KUBERNETES_SERVICE_HOST/PORT, the service account token and CA under
// /var/run/secrets/kubernetes.io/serviceaccount/), each part overridden by a flag
// (--kube-api, --kube-token-file, --kube-ca-file). Control path, loop thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "hdnsd/util/result.h"

namespace hdnsd::kube {

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct ApiTarget {
  std::string server;     // "https://10.96.0.1:443"
  std::string tokenFile;  // "" = no Authorization header
  std::string caFile;     // "" = the system CA store (only when --kube-api names one explicitly)
};

// getenv is injected for the tests. Errors: no server anywhere ("--kube-api not given and
// KUBERNETES_SERVICE_HOST not set"), a server that is not https:// or http://.
Result<ApiTarget, std::string> resolveApiTarget(const std::string& flagServer, const std::string& flagToken,
                                                const std::string& flagCa,
                                                const std::function<const char*(const char*)>& getenv);

// The bearer token, read from its file. Bound service account tokens rotate (kubelet rewrites
// the projected file about hourly), so get() re-reads when the file changed (inode, size or
// mtime differ: one stat per request), when the last read is kMaxAge_s old, and when forced
// (after a 401). A read error keeps the last token and reports the error.
class TokenFile {
 public:
  static constexpr double kMaxAge_s = 60;
  explicit TokenFile(std::string path) : path_(std::move(path)) {}

  const std::string& get(double now_s, bool force = false);
  const std::string& path() const noexcept { return path_; }
  const std::string& error() const noexcept { return error_; }
  uint64_t reads() const noexcept { return reads_; }

 private:
  std::string path_, token_, error_;
  ino_t ino_ = 0;
  off_t size_ = -1;
  int64_t mtime_ns_ = -1;
  double readAt_s_ = -1e18;
  uint64_t reads_ = 0;
};

}  // namespace hdnsd::kube
