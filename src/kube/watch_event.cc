#include "hdnsd/kube/watch_event.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>

#include "hdnsd/kube/decode.h"

namespace hdnsd::kube {
namespace {

using nlohmann::json;

std::string str(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json* child(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

// The object's identity, resourceVersion and annotations we use, then the typed decoding.
Result<ApiObject, std::string> decodeObject(const json& obj, Resource r) {
  if (!obj.is_object()) return Unexpected{std::string("object: expected an object")};
  ApiObject o;
  if (const json* md = child(obj, "metadata")) {
    std::string ns = str(*md, "namespace");
    o.key = cluster::objectKey(ns.empty() ? "default" : ns, str(*md, "name"));
    o.resourceVersion = str(*md, "resourceVersion");
    if (const json* ann = child(*md, "annotations")) {
      std::string t = str(*ann, kTriggerTimeAnnotation);
      if (!t.empty())
        if (auto s = parseRfc3339(t)) o.triggerTime_s = *s;
    }
  }
  switch (r) {
    case Resource::kServices: {
      auto s = decodeServiceObject(obj);
      if (!s) return Unexpected{s.error()};
      o.service = std::move(*s);
      break;
    }
    case Resource::kEndpointSlices: {
      auto s = decodeSliceObject(obj);
      if (!s) return Unexpected{s.error()};
      o.slice = std::move(*s);
      break;
    }
    case Resource::kEndpoints: {
      auto s = decodeEndpointsObject(obj);
      if (!s) return Unexpected{s.error()};
      o.endpoints = std::move(*s);
      break;
    }
    case Resource::kPods: {
      PodInfo p;
      p.ns = o.key.substr(0, o.key.find('/'));
      if (const json* spec = child(obj, "spec")) {
        auto hn = spec->find("hostNetwork");
        p.hostNetwork = hn != spec->end() && hn->is_boolean() && hn->get<bool>();
      }
      if (const json* st = child(obj, "status")) {
        const std::string phase = str(*st, "phase");
        p.terminal = phase == "Succeeded" || phase == "Failed";
        auto ips = st->find("podIPs");
        if (ips != st->end() && ips->is_array())
          for (const auto& e : *ips)
            if (e.is_object() && !str(e, "ip").empty()) p.ips.push_back(str(e, "ip"));
        if (p.ips.empty() && !str(*st, "podIP").empty()) p.ips.push_back(str(*st, "podIP"));
      }
      o.pod = std::move(p);
      break;
    }
  }
  return o;
}

// Only the identity of an object that does not decode (what a skip needs to keep its old version).
ApiObject identity(const json& obj) {
  ApiObject o;
  if (!obj.is_object()) return o;
  if (const json* md = child(obj, "metadata")) {
    std::string ns = str(*md, "namespace"), name = str(*md, "name");
    if (!name.empty()) o.key = cluster::objectKey(ns.empty() ? "default" : ns, name);
    o.resourceVersion = str(*md, "resourceVersion");
  }
  return o;
}

}  // namespace

const char* eventTypeName(EventType t) noexcept {
  switch (t) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
    case EventType::kBookmark: return "BOOKMARK";
    case EventType::kError: return "ERROR";
  }
  return "?";
}

Result<WatchEvent, std::string> decodeWatchEvent(std::string_view line, Resource r) {
  try {
    json j = json::parse(line);
    if (!j.is_object()) return Unexpected{std::string("event: expected an object")};
    const std::string type = str(j, "type");
    auto objIt = j.find("object");
    if (objIt == j.end() || !objIt->is_object())
      return Unexpected{"event " + type + ": no object"};
    const json& obj = *objIt;
    WatchEvent ev;
    if (type == "ADDED") ev.type = EventType::kAdded;
    else if (type == "MODIFIED") ev.type = EventType::kModified;
    else if (type == "DELETED") ev.type = EventType::kDeleted;
    else if (type == "BOOKMARK") ev.type = EventType::kBookmark;
    else if (type == "ERROR") ev.type = EventType::kError;
    else return Unexpected{"event: unknown type \"" + type + "\""};

    if (ev.type == EventType::kError) {
      if (auto c = obj.find("code"); c != obj.end() && c->is_number_integer()) ev.errorCode = c->get<int>();
      ev.errorReason = str(obj, "reason");
      ev.errorMessage = str(obj, "message");
      return ev;
    }
    if (ev.type == EventType::kBookmark) {
      // Only metadata.resourceVersion (and annotations) are meaningful in a bookmark.
      if (const json* md = child(obj, "metadata")) {
        ev.object.resourceVersion = str(*md, "resourceVersion");
        if (const json* ann = child(*md, "annotations"))
          ev.initialEventsEnd = str(*ann, kInitialEventsEndAnnotation) == "true";
      }
      if (ev.object.resourceVersion.empty()) return Unexpected{std::string("BOOKMARK without resourceVersion")};
      return ev;
    }
    auto o = decodeObject(obj, r);
    if (!o) {
      ev.skipped = std::string(eventTypeName(ev.type)) + " " + o.error();
      ev.object = identity(obj);
      return ev;
    }
    ev.object = std::move(*o);
    return ev;
  } catch (const std::exception& e) {
    return Unexpected{std::string("invalid JSON: ") + e.what()};
  }
}

Result<ListPage, std::string> decodeListPage(std::string_view body, Resource r) {
  try {
    json j = json::parse(body);
    if (!j.is_object()) return Unexpected{std::string("list: expected an object")};
    ListPage page;
    if (const json* md = child(j, "metadata")) {
      page.resourceVersion = str(*md, "resourceVersion");
      page.continueToken = str(*md, "continue");
    }
    auto items = j.find("items");
    if (items != j.end() && !items->is_null()) {
      if (!items->is_array()) return Unexpected{std::string("list: items: expected an array")};
      page.items.reserve(items->size());
      for (size_t i = 0; i < items->size(); ++i) {
        auto o = decodeObject((*items)[i], r);
        if (!o) {  // skip it, keep the rest of the page (a relist would meet it again)
          page.skipped.push_back("items[" + std::to_string(i) + "] " + o.error());
          page.skippedItems.push_back(identity((*items)[i]));
          continue;
        }
        page.items.push_back(std::move(*o));
      }
    }
    if (page.resourceVersion.empty()) return Unexpected{std::string("list: no metadata.resourceVersion")};
    return page;
  } catch (const std::exception& e) {
    return Unexpected{std::string("invalid JSON: ") + e.what()};
  }
}

std::vector<std::string> applyObject(cluster::ClusterModel& model,
                                     std::unordered_map<std::string, std::vector<std::string>>& endpointsSlices,
                                     Resource r, ApiObject& obj, bool deleted, bool headlessOnly) {
  std::vector<std::string> affected;
  const std::string ns = obj.key.substr(0, obj.key.find('/'));
  switch (r) {
    case Resource::kServices: {
      const bool keep = !deleted && obj.service && (!headlessOnly || obj.service->headless);
      auto it = model.services.find(obj.key);
      if (keep) {
        model.services[obj.key] = std::move(*obj.service);
      } else {
        if (it == model.services.end()) return affected;
        model.services.erase(it);
      }
      affected.push_back(obj.key);
      break;
    }
    case Resource::kEndpointSlices: {
      auto it = model.slices().find(obj.key);
      if (it != model.slices().end()) {
        affected.push_back(cluster::objectKey(ns, it->second.serviceName));
        if (deleted || !obj.slice) model.eraseSlice(obj.key);
      }
      if (!deleted && obj.slice) {
        std::string svc = cluster::objectKey(ns, obj.slice->serviceName);
        model.upsertSlice(obj.key, std::move(*obj.slice));
        if (affected.empty() || affected[0] != svc) affected.push_back(std::move(svc));
      }
      break;
    }
    case Resource::kPods:
      return affected;  // not part of the cluster model (ApiSource::applyPod)
    case Resource::kEndpoints: {
      auto it = endpointsSlices.find(obj.key);
      if (it != endpointsSlices.end()) {
        for (const auto& k : it->second) model.eraseSlice(k);
        endpointsSlices.erase(it);
        affected.push_back(obj.key);
      }
      if (!deleted) {
        auto& keys = endpointsSlices[obj.key];
        for (auto& sl : obj.endpoints) {
          std::string k = cluster::objectKey(sl.ns, sl.name);
          keys.push_back(k);
          model.upsertSlice(k, std::move(sl));
        }
        if (affected.empty()) affected.push_back(obj.key);
      }
      break;
    }
  }
  return affected;
}

std::string statusMessage(std::string_view body) {
  try {
    json j = json::parse(body);
    if (!j.is_object() || str(j, "kind") != "Status") return {};
    std::string reason = str(j, "reason"), msg = str(j, "message");
    if (reason.empty()) return msg;
    return msg.empty() ? reason : reason + ": " + msg;
  } catch (const std::exception&) {
    return {};
  }
}

std::optional<double> parseRfc3339(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  if (t.size() < 20) return std::nullopt;
  auto digits = [&t](size_t pos, size_t n, int* out) {
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
      char c = t[pos + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
  };
  int Y, M, D, h, m, s;
  if (!digits(0, 4, &Y) || t[4] != '-' || !digits(5, 2, &M) || t[7] != '-' || !digits(8, 2, &D) ||
      (t[10] != 'T' && t[10] != 't') || !digits(11, 2, &h) || t[13] != ':' || !digits(14, 2, &m) ||
      t[16] != ':' || !digits(17, 2, &s))
    return std::nullopt;
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60) return std::nullopt;
  size_t pos = 19;
  double frac = 0, scale = 0.1;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    size_t start = pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
      frac += (t[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  if (pos >= t.size()) return std::nullopt;
  int offset_s = 0;
  if (t[pos] == 'Z' || t[pos] == 'z') {
    ++pos;
  } else if (t[pos] == '+' || t[pos] == '-') {
    int oh, om;
    if (pos + 6 != t.size() || !digits(pos + 1, 2, &oh) || t[pos + 3] != ':' || !digits(pos + 4, 2, &om))
      return std::nullopt;
    offset_s = (oh * 3600 + om * 60) * (t[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != t.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  return double(timegm(&tm)) - offset_s + frac;
}

}  // namespace hdnsd::kube
