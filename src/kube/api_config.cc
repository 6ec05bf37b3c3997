#include "hdnsd/kube/api_config.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "hdnsd/util/log.h"

namespace hdnsd::kube {

Result<ApiTarget, std::string> resolveApiTarget(const std::string& flagServer, const std::string& flagToken,
                                                const std::string& flagCa,
                                                const std::function<const char*(const char*)>& getenv) {
  ApiTarget t;
  const std::string sa = kServiceAccountDir;
  if (!flagServer.empty()) {
    t.server = flagServer;
  } else {
    const char* host = getenv("KUBERNETES_SERVICE_HOST");
    const char* port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == nullptr || *host == '\0')
      return Unexpected{std::string("no Kubernetes API: --kube-api not given and KUBERNETES_SERVICE_HOST not set")};
    std::string h = host;
    if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6 service address
    t.server = "https://" + h + ":" + (port != nullptr && *port != '\0' ? port : "443");
  }
  while (!t.server.empty() && t.server.back() == '/') t.server.pop_back();
  if (t.server.rfind("https://", 0) != 0 && t.server.rfind("http://", 0) != 0)
    return Unexpected{"--kube-api: expected https://HOST:PORT, got \"" + t.server + "\""};
  // The in-cluster files are the defaults in a pod; outside one, only what the flags name.
  const bool inCluster = flagServer.empty();
  t.tokenFile = !flagToken.empty() ? flagToken : (inCluster ? sa + "/token" : "");
  t.caFile = !flagCa.empty() ? flagCa : (inCluster ? sa + "/ca.crt" : "");
  return t;
}

const std::string& TokenFile::get(double now_s, bool force) {
  if (path_.empty()) return token_;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    error_ = "cannot stat token file " + path_;
    return token_;
  }
  const int64_t mtime_ns = int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  const bool changed = st.st_ino != ino_ || st.st_size != size_ || mtime_ns != mtime_ns_;
  if (!force && !changed && now_s - readAt_s_ < kMaxAge_s) return token_;
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    error_ = "cannot read token file " + path_;
    return token_;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string tok = ss.str();
  while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r' || tok.back() == ' ')) tok.pop_back();
  if (tok != token_ && reads_ > 0) LOG_INFO("kube: token file %s changed; using the new token", path_.c_str());
  token_ = std::move(tok);
  error_.clear();
  ino_ = st.st_ino;
  size_ = st.st_size;
  mtime_ns_ = mtime_ns;
  readAt_s_ = now_s;
  ++reads_;
  return token_;
}

}  // namespace hdnsd::kube
