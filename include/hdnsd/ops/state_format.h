// The --state-file format and its I/O (warm restart, issue 6 part 7). Pure functions: no loop,
// no clock of their own; ops/state_file.h runs them on the thread pool.
//
// The file is one JSON document that is also a kubectl List, so an operator can read it with jq
// and feed it to --endpoints-file as it is (decodeList reads only `kind` and `items`):
//   {"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":""},
//    "hdnsdState":{"format":1,"version":"0.1.0","writtenAt":"2024-05-01T12:00:00Z",
//                  "writtenAtUnixMs":1714564800000,"zone":"cluster.local","source":"kubernetes-api",
//                  "cluster":true,"services":2,"slices":2,"cacheEntries":1},
//    "hdnsdCache":[
//     {"name":"www.example.test.","type":1,"class":1,"do":false,"ttl":300,
//      "expiresAtUnixMs":1714564900000,"wire":"<base64 of the stored answer>"}],
//    "items":[
//     {"apiVersion":"v1","kind":"Service",...},   one object per line (kube/encode.h)
//     ...]}
// `cluster` says whether items[] is a synced view of the API (false: --endpoints-file or no
// source; the items are then empty and a restart serves no saved view). The cache part stays
// JSON too, one entry per line with the answer's wire bytes in base64: 10,000 entries are ~2 MB
// and parse in ~25 ms off the loop, a binary layout would save little and lose jq, one parser
// and one fuzz target. `name`, `type` and `class` are for people; the reader takes the key
// from the wire answer's own question (and `do`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hdnsd/cache/cache.h"
#include "hdnsd/cluster/model.h"
#include "hdnsd/util/result.h"

namespace hdnsd::ops {

inline constexpr int kStateFormat = 1;                 // bump on any incompatible change
inline constexpr size_t kMaxStateFileBytes = 1u << 30;  // a larger file is refused, not read

struct StateHeader {
  int format = kStateFormat;
  std::string version;           // the hdnsd that wrote it
  uint64_t writtenAtUnixMs = 0;  // wall clock
  std::string zone;              // --cluster-domain
  std::string source;            // "kubernetes-api", "endpoints-file" or "none" (informational)
  bool cluster = false;          // items[] holds a synced cluster view
};

// One cache entry (cache::EntryView with the time on the wall clock).
struct SavedAnswer {
  std::vector<uint8_t> message;  // the stored wire answer (base TTLs, lower-cased question)
  bool dnssecOk = false;
  uint32_t ttl_s = 0;
  uint64_t expiresAtUnixMs = 0;  // insertion + ttl_s
};

// The whole file. `model` may be null (no cluster part: header.cluster should be false).
// Answers are written in the order given (the writer gives the hottest first).
std::string encodeState(const StateHeader& header, const cluster::ClusterModel* model,
                        const std::vector<SavedAnswer>& cache);

struct DecodedState {
  StateHeader header;
  std::optional<cluster::ClusterModel> model;  // header.cluster && wantCluster
  std::vector<SavedAnswer> cache;              // in file order
};

// Checks and decodes a file's bytes. One-line errors: not JSON, not a state file, another
// format, another zone ("written for zone a.local, this hdnsd serves b.local"), a malformed
// cluster item (decodeList's message) or cache entry ("hdnsdCache[3].wire: not base64").
// wantCluster = false skips decoding items[] (only --kube-api serves a saved view).
Result<DecodedState, std::string> decodeState(std::string_view text, std::string_view zone, bool wantCluster);

// The file's bytes; nullopt if it does not exist (a first start). Refuses files over maxBytes.
Result<std::optional<std::string>, std::string> readStateFile(const std::string& path,
                                                              size_t maxBytes = kMaxStateFileBytes);

// Writes `bytes` to path atomically: a temporary "<path>.tmp.<pid>" in the same directory (the
// pid keeps an old and a new hdnsd that overlap in a rolling restart off each other's file),
// written, fsync'ed, renamed over path, then the directory fsync'ed. Readers see the old file or
// the new one, never a part. On any failure the temporary is removed and path is untouched.
Result<void, std::string> writeFileAtomically(const std::string& path, std::string_view bytes, unsigned mode = 0600);

// Puts loaded answers into `cache` (its loop's thread), coldest first so the hottest end up
// newest, each with the age it has on the wall clock (the only clock that spans processes)
// carried over to the cache's clock `nowMs`. An answer older than nowMs itself (a monotonic
// clock since boot: the file is from before a reboot) is dropped, as is one past serving
// (Cache::restore). Returns how many were stored.
size_t restoreAnswers(cache::Cache& cache, const std::vector<SavedAnswer>& answers, uint64_t nowUnixMs,
                      uint64_t nowMs) noexcept;

// RFC 4648 base64 with padding (the cache part's wire answers).
std::string base64Encode(const uint8_t* data, size_t n);
void appendBase64(std::string& out, const uint8_t* data, size_t n);
std::optional<std::vector<uint8_t>> base64Decode(std::string_view text);

}  // namespace hdnsd::ops
