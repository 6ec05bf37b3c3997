// libFuzzer target for the --state-file reader (ops/state_format.h): the file is bytes from disk
// that another process (or a half-finished write, or an operator with an editor) produced, so any
// input must give one clear error line or a state whose cache part goes through Cache::restore and
// whose cluster part compiles, and which encodes and decodes again to the same counts. Build and
// run with `make fuzz`; `make test` replays test/fuzz/corpus/state_file/ with g++.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "hdnsd/cache/cache.h"
#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/ops/state_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto st = hdnsd::ops::decodeState(text, "cluster.local", true);
  if (!st) {
    if (st.error().empty() || st.error().find('\n') != std::string::npos) std::abort();  // one clear line
    return 0;
  }
  hdnsd::cache::Config cc;
  cc.maxEntries = 64;
  hdnsd::cache::Cache cache(cc);
  hdnsd::ops::restoreAnswers(cache, st->cache, 1'800'000'000'000, 1'000'000'000);
  if (st->model) (void)hdnsd::cluster::Snapshot::build(*st->model, {});
  // What was read writes back to a file that reads back the same.
  const std::string again = hdnsd::ops::encodeState(st->header, st->model ? &*st->model : nullptr, st->cache);
  auto st2 = hdnsd::ops::decodeState(again, "cluster.local", true);
  if (!st2 || st2->cache.size() != st->cache.size() || st2->model.has_value() != st->model.has_value()) std::abort();
  if (st->model && (st2->model->services.size() != st->model->services.size() ||
                    st2->model->slices().size() != st->model->slices().size()))
    std::abort();
  return 0;
}

#include "standalone_main.h"
