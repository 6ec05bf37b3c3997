// libFuzzer target for the watch stream decoder: arbitrary bytes cut into arbitrary chunks (as
// curl delivers them) → LineSplitter (bounded line, overlong lines skipped) → decodeWatchEvent →
// applyObject → Snapshot. Checks that chunking never changes the lines (the same lines, skips
// and leftover whatever the cut), that no line is over the bound, and that whatever decodes can
// be applied, compiled and looked up. Layout of an input: byte 0 the resource, byte 1 the line
// bound (64..16384 bytes), bytes 2..9 chunk sizes (cycled), the rest the stream.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/kube/line_splitter.h"
#include "hdnsd/kube/watch_event.h"

using namespace hdnsd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 10) return 0;
  const auto resource = static_cast<kube::Resource>(data[0] % 3);
  const size_t maxLine = 64 + (size_t(data[1]) << 6);
  const uint8_t* cuts = data + 2;
  std::string_view stream(reinterpret_cast<const char*>(data + 10), size - 10);

  auto collect = [&](kube::LineSplitter& sp, std::vector<std::string>& out, bool chunked) {
    auto onLine = [&](std::string_view line) {
      if (line.size() > maxLine || line.find('\n') != std::string_view::npos) std::abort();
      out.emplace_back(line);
      return true;
    };
    if (!chunked) return sp.feed(stream, onLine);
    size_t pos = 0, i = 0;
    while (pos < stream.size()) {
      size_t n = 1 + cuts[i++ % 8] % 97;
      if (n > stream.size() - pos) n = stream.size() - pos;
      if (sp.feed(stream.substr(pos, n), onLine) != kube::LineSplitter::Status::kOk) std::abort();
      pos += n;
    }
    return kube::LineSplitter::Status::kOk;
  };
  kube::LineSplitter whole(maxLine, true), cut(maxLine, true);
  std::vector<std::string> a, b;
  if (collect(whole, a, false) != kube::LineSplitter::Status::kOk) std::abort();  // skipOverlong never fails
  collect(cut, b, true);
  if (a != b || whole.skipped() != cut.skipped() || whole.buffered() != cut.buffered()) std::abort();
  if (whole.buffered() > maxLine) std::abort();

  cluster::ClusterModel model;
  std::unordered_map<std::string, std::vector<std::string>> endpointsSlices;
  for (const auto& line : a) {
    auto ev = kube::decodeWatchEvent(line, resource);
    if (!ev) {
      if (ev.error().empty()) std::abort();
      continue;
    }
    if (ev->type == kube::EventType::kBookmark || ev->type == kube::EventType::kError || !ev->skipped.empty())
      continue;
    kube::applyObject(model, endpointsSlices, resource, ev->object, ev->type == kube::EventType::kDeleted, false);
  }
  auto snap = cluster::Snapshot::build(model, {});
  for (const auto& [key, svc] : model.services) {
    std::string wire;
    if (!dns::textToWire(svc.name + "." + svc.ns + ".svc.cluster.local", &wire)) continue;
    dns::NameKey k;
    if (!k.assignWire(wire)) continue;
    for (uint16_t t : {1, 28, 33, 12}) (void)snap->lookup(k, t);
  }
  return 0;
}

#include "standalone_main.h"
