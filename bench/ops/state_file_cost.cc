// What --state-file costs for a big cluster (10,000 services, 100,000 endpoints) and a full cache
// part (10,000 answers out of 100,000): the part on the loop (copying the cache entries), the
// parts on the thread pool (encode, write, read back, decode, compile), and what the loop would
// pay if it copied the model instead of holding it still. Median of 5 runs each, in ms.
//   g++ -std=c++20 -O2 -Iinclude bench/ops/state_file_cost.cc build/libhdnsd.a \
//       $(pkg-config --libs libuv libcares libcurl) -lhttp_parser -o /tmp/state_cost && /tmp/state_cost [dir]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "hdnsd/cache/cache.h"
#include "hdnsd/cluster/snapshot.h"
#include "hdnsd/dns/query.h"
#include "hdnsd/kube/encode.h"
#include "hdnsd/ops/state_format.h"

using namespace hdnsd;

namespace {

double medianMs(int runs, const std::function<void()>& fn) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Like test/fakeapi/kubeobjects.big_cluster: headless services of 10 ready endpoints in 50
// namespaces, each endpoint with the fields the API gives (node, zone, pod, conditions).
cluster::ClusterModel bigModel(size_t services, size_t perService) {
  cluster::ClusterModel m;
  uint32_t ip = 0;
  for (size_t i = 0; i < services; ++i) {
    const std::string ns = "ns" + std::to_string(i % 50), name = "svc" + std::to_string(i);
    cluster::Service s;
    s.ns = ns;
    s.name = name;
    s.headless = true;
    s.ports = {{"http", 80, cluster::Protocol::kTcp}};
    m.services[ns + "/" + name] = s;
    cluster::EndpointSlice sl;
    sl.ns = ns;
    sl.name = name + "-x1";
    sl.serviceName = name;
    sl.ports = {{"http", 8080, cluster::Protocol::kTcp}};
    for (size_t e = 0; e < perService; ++e, ++ip) {
      cluster::Endpoint ep;
      ep.addresses = {*cluster::IpAddr::parse("10." + std::to_string(64 + ip / 65536) + "." +
                                              std::to_string((ip / 256) % 256) + "." + std::to_string(ip % 256))};
      ep.ready = ep.serving = true;
      ep.terminating = false;
      ep.nodeName = "node-" + std::to_string(ip % 100);
      ep.zone = "zone-" + std::to_string(ip % 3);
      ep.podName = name + "-" + std::to_string(e);
      sl.endpoints.push_back(ep);
    }
    m.upsertSlice(ns + "/" + sl.name, sl);
  }
  return m;
}

// h<i>.bench.example A, TTL 3600: what a forwarded answer looks like in the cache.
std::vector<uint8_t> answerFor(size_t i, std::vector<uint8_t>* query) {
  const std::string label = "h" + std::to_string(i);
  std::vector<uint8_t> name = {uint8_t(label.size())};
  name.insert(name.end(), label.begin(), label.end());
  for (const char* l : {"bench", "example"}) {
    name.push_back(uint8_t(std::strlen(l)));
    name.insert(name.end(), l, l + std::strlen(l));
  }
  name.push_back(0);
  *query = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  query->insert(query->end(), name.begin(), name.end());
  query->insert(query->end(), {0, 1, 0, 1});
  std::vector<uint8_t> a = {0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0};
  a.insert(a.end(), name.begin(), name.end());
  a.insert(a.end(), {0, 1, 0, 1, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, uint8_t(i)});
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/dev/shm";
  const cluster::ClusterModel model = bigModel(10000, 10);

  cache::Config cc;
  cc.maxEntries = 100000;
  cache::Cache cache(cc);
  for (size_t i = 0; i < 100000; ++i) {
    std::vector<uint8_t> q;
    const auto a = answerFor(i, &q);
    dns::Query pq;
    if (!dns::parseQuery(q, &pq)) return 1;
    cache.insert(cache.makeKey(pq), a, 1000);
  }
  std::vector<ops::SavedAnswer> answers;
  const double collect = medianMs(5, [&] {
    answers.clear();
    answers.reserve(10000);
    cache.forEachHottest(10000, 2000, [&](const cache::EntryView& e) {
      answers.push_back({{e.message.begin(), e.message.end()}, e.dnssecOk, e.ttl_s, 1});
    });
  });
  const double copyModel = medianMs(5, [&] { cluster::ClusterModel copy = model; (void)copy; });

  ops::StateHeader h;
  h.version = "bench";
  h.zone = "cluster.local";
  h.cluster = true;
  std::string text, itemsOnly;
  const double encodeItems = medianMs(5, [&] {
    itemsOnly.clear();
    kube::appendItemsJson(itemsOnly, model);
  });
  const double encodeAll = medianMs(5, [&] { text = ops::encodeState(h, &model, answers); });
  const std::string path = dir + "/hdnsd-state-bench.json";
  const double write = medianMs(5, [&] {
    if (!ops::writeFileAtomically(path, text)) std::fprintf(stderr, "write failed\n");
  });
  std::string back;
  const double read = medianMs(5, [&] { back = **ops::readStateFile(path); });
  ops::DecodedState st;
  const double decode = medianMs(3, [&] { st = std::move(*ops::decodeState(back, "cluster.local", true)); });
  const double decodeCacheOnly = medianMs(3, [&] { (void)ops::decodeState(back, "cluster.local", false); });
  cluster::ViewOptions vo;
  const double build = medianMs(3, [&] { (void)cluster::Snapshot::build(*st.model, vo); });
  cache::Cache fresh(cc);
  const double restore = medianMs(1, [&] { ops::restoreAnswers(fresh, st.cache, 1'000'000, 5'000'000); });
  std::remove(path.c_str());

  std::printf("state file for %zu services, %zu slices (100,000 endpoints), %zu of %zu cache answers: %.1f MB "
              "(cluster part %.1f MB)\n",
              model.services.size(), model.slices().size(), answers.size(), cache.entries(), text.size() / 1e6,
              itemsOnly.size() / 1e6);
  std::printf("on the loop:      copy 10,000 cache answers   %7.1f ms\n", collect);
  std::printf("                  (copying the model instead  %7.1f ms: why the model is held still, not copied)\n",
              copyModel);
  std::printf("thread pool:      encode items only           %7.1f ms\n", encodeItems);
  std::printf("                  encode the whole file       %7.1f ms  (the model is held still this long)\n", encodeAll);
  std::printf("                  write+fsync+rename (%s) %7.1f ms\n", dir.c_str(), write);
  std::printf("start:            read                        %7.1f ms\n", read);
  std::printf("                  parse+decode (all)          %7.1f ms\n", decode);
  std::printf("                  parse+decode (cache only)   %7.1f ms\n", decodeCacheOnly);
  std::printf("                  compile the saved view      %7.1f ms\n", build);
  std::printf("on the loop:      restore 10,000 answers      %7.1f ms\n", restore);
  return 0;
}
