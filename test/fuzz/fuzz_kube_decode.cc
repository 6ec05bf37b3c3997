// libFuzzer target for the Kubernetes JSON decoder and the view compiler: arbitrary bytes as a
// kubectl List must give either a clear error or a model that compiles into a Snapshot whose
// lookups answer without crashing. Build and run with `make fuzz`; `make test` replays the
// corpus (test/fuzz/corpus/kube_decode/) through a g++ build with -DHDNSD_FUZZ_STANDALONE.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/kube/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  auto model = hdnsd::kube::decodeList(json);
  if (!model) {
    if (model.error().empty() || model.error().find('\n') != std::string::npos) std::abort();  // one clear line
    return 0;
  }
  auto snap = hdnsd::cluster::Snapshot::build(*model, {});
  // Ask every name the model could produce, with a few types.
  for (const auto& [key, svc] : model->services) {
    std::string wire;
    if (!hdnsd::dns::textToWire(svc.name + "." + svc.ns + ".svc.cluster.local", &wire)) continue;
    hdnsd::dns::NameKey k;
    if (!k.assignWire(wire)) continue;
    for (uint16_t t : {1, 28, 33, 12, 16, 5, 255}) (void)snap->lookup(k, t);
  }
  return 0;
}

#include "standalone_main.h"
