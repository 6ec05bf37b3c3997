// The --state-file format and I/O; see include/hdnsd/ops/state_format.h.
#include "hdnsd/ops/state_format.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "hdnsd/dns/name.h"
#include "hdnsd/kube/decode.h"
#include "hdnsd/kube/encode.h"

namespace hdnsd::ops {
namespace {

using nlohmann::json;

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr size_t kMinMessage = 12 + 1 + 4;  // header, root name, type, class

std::string isoTime(uint64_t unixMs) {
  const time_t t = time_t(unixMs / 1000);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

void appendField(std::string& out, const char* key, uint64_t v) {
  out += key;
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

std::string sysError(const std::string& what, const std::string& path, int err) {
  return what + " " + path + ": " + std::strerror(err);
}

// Members with the wrong type name themselves; nlohmann's get<> would throw a less useful line.
const json& member(const json& obj, const char* key, bool (json::*is)() const noexcept, const char* expected,
                   const std::string& at) {
  auto it = obj.find(key);
  if (it == obj.end() || !((*it).*is)()) throw std::runtime_error(at + "." + key + ": expected " + expected);
  return *it;
}

uint64_t unsignedMember(const json& obj, const char* key, const std::string& at, uint64_t max) {
  const json& v = member(obj, key, &json::is_number_unsigned, "a whole number", at);
  const auto n = v.get<uint64_t>();
  if (n > max) throw std::runtime_error(at + "." + key + ": out of range");
  return n;
}

}  // namespace

std::string base64Encode(const uint8_t* data, size_t n) {
  std::string out;
  appendBase64(out, data, n);
  return out;
}

void appendBase64(std::string& out, const uint8_t* data, size_t n) {
  const size_t at = out.size();
  out.resize(at + (n + 2) / 3 * 4);
  char* p = out.data() + at;
  for (size_t i = 0; i < n; i += 3, p += 4) {
    const uint32_t v = uint32_t(data[i]) << 16 | (i + 1 < n ? uint32_t(data[i + 1]) << 8 : 0) |
                       (i + 2 < n ? uint32_t(data[i + 2]) : 0);
    p[0] = kB64[v >> 18];
    p[1] = kB64[(v >> 12) & 63];
    p[2] = i + 1 < n ? kB64[(v >> 6) & 63] : '=';
    p[3] = i + 2 < n ? kB64[v & 63] : '=';
  }
}

std::optional<std::vector<uint8_t>> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const size_t pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int d = k >= 4 - pad ? 0 : value(text[i + k]);
      if (d < 0) return std::nullopt;
      v = v << 6 | uint32_t(d);
    }
    out.push_back(uint8_t(v >> 16));
    if (pad < 2) out.push_back(uint8_t(v >> 8));
    if (pad < 1) out.push_back(uint8_t(v));
  }
  return out;
}

std::string encodeState(const StateHeader& h, const cluster::ClusterModel* model,
                        const std::vector<SavedAnswer>& cache) {
  // Sized up front from what a typical object takes (~180 bytes an endpoint, ~250 a service or
  // slice, ~170 an answer): growing a 24 MB string by doubling copies it ~twice more.
  size_t estimate = 4096 + cache.size() * 170;
  if (model && h.cluster) {
    estimate += (model->services.size() + model->slices().size()) * 250;
    for (const auto& [key, sl] : model->slices()) estimate += sl.endpoints.size() * 180;
  }
  std::string out;
  out.reserve(estimate);
  out += "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},\n";
  out += "\"hdnsdState\":{\"format\":" + std::to_string(h.format) + ",\"version\":";
  kube::appendJsonString(out, h.version);
  out += ",\"writtenAt\":\"" + isoTime(h.writtenAtUnixMs) + "\",\"writtenAtUnixMs\":" +
         std::to_string(h.writtenAtUnixMs) + ",\"zone\":";
  kube::appendJsonString(out, h.zone);
  out += ",\"source\":";
  kube::appendJsonString(out, h.source);
  out += h.cluster && model ? ",\"cluster\":true" : ",\"cluster\":false";
  out += ",\"services\":" + std::to_string(model ? model->services.size() : 0) +
         ",\"slices\":" + std::to_string(model ? model->slices().size() : 0) +
         ",\"cacheEntries\":" + std::to_string(cache.size()) + "},\n\"hdnsdCache\":[";
  for (size_t i = 0; i < cache.size(); ++i) {
    const SavedAnswer& a = cache[i];
    out += i ? ",\n{\"name\":" : "\n{\"name\":";
    uint16_t type = 0, cls = 0;
    dns::NameKey name;
    if (auto end = dns::readName(a.message, 12, &name); end && a.message.size() - *end >= 4) {
      type = uint16_t(a.message[*end] << 8 | a.message[*end + 1]);
      cls = uint16_t(a.message[*end + 2] << 8 | a.message[*end + 3]);
    }
    kube::appendJsonString(out, name.text());
    appendField(out, ",\"type\":", type);
    appendField(out, ",\"class\":", cls);
    out += a.dnssecOk ? ",\"do\":true" : ",\"do\":false";
    appendField(out, ",\"ttl\":", a.ttl_s);
    appendField(out, ",\"expiresAtUnixMs\":", a.expiresAtUnixMs);
    out += ",\"wire\":\"";
    appendBase64(out, a.message.data(), a.message.size());
    out += "\"}";
  }
  out += cache.empty() ? "],\n\"items\":" : "\n],\n\"items\":";
  if (model && h.cluster) kube::appendItemsJson(out, *model);
  else out += "[]";
  out += "}\n";
  return out;
}

Result<DecodedState, std::string> decodeState(std::string_view text, std::string_view zone, bool wantCluster) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return Unexpected{std::string("not valid JSON (truncated or corrupt): ") + e.what()};
  }
  DecodedState st;
  try {
    if (!root.is_object() || !root.contains("hdnsdState"))
      return Unexpected{std::string("not an hdnsd state file (no hdnsdState member)")};
    const json& h = member(root, "hdnsdState", &json::is_object, "an object", "");
    const uint64_t format = unsignedMember(h, "format", "hdnsdState", UINT32_MAX);
    if (format != kStateFormat)
      return Unexpected{"format " + std::to_string(format) + ", this hdnsd reads format " +
                        std::to_string(kStateFormat)};
    st.header.format = int(format);
    st.header.version = member(h, "version", &json::is_string, "a string", "hdnsdState").get<std::string>();
    st.header.writtenAtUnixMs = unsignedMember(h, "writtenAtUnixMs", "hdnsdState", UINT64_MAX);
    st.header.zone = member(h, "zone", &json::is_string, "a string", "hdnsdState").get<std::string>();
    st.header.source = member(h, "source", &json::is_string, "a string", "hdnsdState").get<std::string>();
    st.header.cluster = member(h, "cluster", &json::is_boolean, "true or false", "hdnsdState").get<bool>();
    if (st.header.zone != zone)
      return Unexpected{"written for zone " + st.header.zone + ", this hdnsd serves " + std::string(zone)};

    const json& cache = member(root, "hdnsdCache", &json::is_array, "an array", "");
    st.cache.reserve(cache.size());
    for (size_t i = 0; i < cache.size(); ++i) {
      const std::string at = "hdnsdCache[" + std::to_string(i) + "]";
      const json& e = cache[i];
      if (!e.is_object()) throw std::runtime_error(at + ": expected an object");
      SavedAnswer a;
      auto wire = base64Decode(member(e, "wire", &json::is_string, "a string", at).get<std::string>());
      if (!wire) throw std::runtime_error(at + ".wire: not base64");
      if (wire->size() < kMinMessage || wire->size() > 65535)
        throw std::runtime_error(at + ".wire: " + std::to_string(wire->size()) + " bytes is no DNS answer");
      a.message = std::move(*wire);
      a.dnssecOk = member(e, "do", &json::is_boolean, "true or false", at).get<bool>();
      a.ttl_s = uint32_t(unsignedMember(e, "ttl", at, UINT32_MAX));
      a.expiresAtUnixMs = unsignedMember(e, "expiresAtUnixMs", at, UINT64_MAX);
      st.cache.push_back(std::move(a));
    }
    if (st.header.cluster && wantCluster) {
      auto model = kube::decodeListJson(root, nullptr);
      if (!model) return Unexpected{"cluster part: " + model.error()};
      st.model = std::move(*model);
    }
  } catch (const std::exception& e) {
    return Unexpected{std::string(e.what())};
  }
  return st;
}

size_t restoreAnswers(cache::Cache& cache, const std::vector<SavedAnswer>& answers, uint64_t nowUnixMs,
                      uint64_t nowMs) noexcept {
  size_t restored = 0;
  for (auto it = answers.rbegin(); it != answers.rend(); ++it) {
    const uint64_t ttlMs = uint64_t(it->ttl_s) * 1000;
    const uint64_t inserted = it->expiresAtUnixMs > ttlMs ? it->expiresAtUnixMs - ttlMs : 0;
    const uint64_t age = nowUnixMs > inserted ? nowUnixMs - inserted : 0;
    if (age > nowMs) continue;
    if (cache::stored(cache.restore(it->message, it->dnssecOk, nowMs - age, nowMs))) ++restored;
  }
  return restored;
}

Result<std::optional<std::string>, std::string> readStateFile(const std::string& path, size_t maxBytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Unexpected{sysError("cannot open", path, errno)};
  }
  struct stat sb{};
  std::string out;
  std::string err;
  if (fstat(fd, &sb) != 0) {
    err = sysError("cannot stat", path, errno);
  } else if (!S_ISREG(sb.st_mode)) {
    err = path + ": not a regular file";
  } else if (size_t(sb.st_size) > maxBytes) {
    err = path + ": " + std::to_string(sb.st_size) + " bytes, more than the " + std::to_string(maxBytes) +
          " a state file may have";
  } else {
    out.resize(size_t(sb.st_size));
    size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = sysError("cannot read", path, errno);
        break;
      }
      if (n == 0) break;  // shrank while we read: the JSON check will say so
      got += size_t(n);
    }
    out.resize(got);
  }
  ::close(fd);
  if (!err.empty()) return Unexpected{err};
  return std::optional<std::string>(std::move(out));
}

Result<void, std::string> writeFileAtomically(const std::string& path, std::string_view bytes, unsigned mode) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Unexpected{sysError("cannot create", tmp, errno)};
  std::string err;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = sysError("cannot write", tmp, errno);  // ENOSPC: a full tmpfs
      break;
    }
    done += size_t(n);
  }
  if (err.empty() && ::fsync(fd) != 0) err = sysError("cannot fsync", tmp, errno);
  if (::close(fd) != 0 && err.empty()) err = sysError("cannot close", tmp, errno);
  if (err.empty() && ::rename(tmp.c_str(), path.c_str()) != 0) err = sysError("cannot rename over", path, errno);
  if (!err.empty()) {
    ::unlink(tmp.c_str());
    return Unexpected{err};
  }
  // The rename itself is durable only once the directory is (a crash could otherwise bring back
  // the old file, which is still a whole file: not worth failing the write over).
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

}  // namespace hdnsd::ops
