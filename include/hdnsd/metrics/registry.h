// The metrics registry: counters, gauges and fixed-bucket histograms with labels, rendered as
// Prometheus text exposition format 0.0.4 for GET /metrics.
//
// Two ways to publish a number:
//  1. Owned metrics. `reg.counter(name, help, labels)` creates (or finds) one labelled series
//     up front, on the control path, and returns a reference that stays valid for the life of
//     the registry. The data path keeps that reference and calls `inc()`: one relaxed atomic
//     add, no lookup by string, no allocation, nothing thrown.
//       Counter& udpA = reg.counter("hdnsd_dns_queries_total", "DNS queries answered.",
//                                   {{"transport", "udp"}, {"type", "A"}, {"rcode", "NOERROR"}});
//       ...; udpA.inc();
//  2. Collectors. `reg.addCollector(fn)` runs fn at every scrape; fn appends families computed
//     then (view sizes read from the current snapshot, QueryStats arrays, /proc numbers).
//     A collector must use family names nobody registers as owned metrics: on a clash the
//     owned family wins and the collector's copy is dropped, so the exposition stays valid.
//
// Threads: registration, addCollector and render take an internal mutex (control path,
// normally the loop thread). inc/set/add/observe are lock-free atomics and may run on any
// thread; relaxed ordering is enough because a scrape only needs each number, not an order
// between them. Collectors run on the rendering thread, outside the mutex (so a collector may
// itself register metrics) and must not throw; one that does is skipped for that scrape and
// counted in collectorFailures().
//
// Programming errors (an invalid metric or label name, the same name registered with another
// type, other label names, or other histogram buckets) fail HDNSD_CHECK at registration,
// i.e. at startup, never on the data path.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hdnsd::metrics {

struct Label {
  std::string name;
  std::string value;
  bool operator==(const Label&) const = default;
};
// Rendered in the order given. All series of one family must use the same names in the same
// order (checked), so {a,b} and {b,a} can never become two series for one label set.
using Labels = std::vector<Label>;

enum class Type : uint8_t { kCounter, kGauge, kHistogram, kUntyped };
const char* typeName(Type t) noexcept;  // "counter", "gauge", "histogram", "untyped"

// Monotonic count. Only goes up (Prometheus detects resets by the process restarting).
class Counter {
 public:
  void inc(uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A value that goes up and down (connections open, entries cached).
class Gauge {
 public:
  void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
  void sub(double d) noexcept { v_.fetch_sub(d, std::memory_order_relaxed); }
  double value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0.0};
};

// Prometheus client libraries' default buckets (seconds), for when nothing better is known.
inline constexpr double kDefaultBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1.0,  2.5,   5.0,  10.0};

// Fixed buckets chosen at creation. observe() is a binary search over the bounds plus two
// relaxed atomic adds: no allocation, usable per query. Buckets are stored per bucket (not
// cumulative) and summed at render time; _count is that sum, so the +Inf bucket and _count
// always agree even while another thread observes during a scrape.
class Histogram {
 public:
  // Bounds: finite, strictly increasing, at least one (checked). +Inf is implicit.
  explicit Histogram(std::span<const double> upperBounds);

  // v lands in the first bucket whose upper bound is >= v (Prometheus "le" semantics).
  // NaN is counted in +Inf only and turns _sum into NaN, like the reference clients.
  void observe(double v) noexcept;

  std::span<const double> upperBounds() const noexcept { return bounds_; }
  // Observations in bucket i alone (not cumulative); i == upperBounds().size() is +Inf.
  uint64_t bucketCount(size_t i) const noexcept {
    return counts_[i].load(std::memory_order_relaxed);
  }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
  uint64_t count() const noexcept;  // sum over all buckets

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 slots
  std::atomic<double> sum_{0.0};
};

// A family computed at scrape time by a collector. Samples are name + suffix + labels + value;
// the suffix is "" for counters, gauges and untyped, "_bucket"/"_sum"/"_count" for histograms
// (a collector building a histogram writes the le label itself, cumulative, ending in +Inf).
struct Sample {
  std::string suffix;
  Labels labels;
  double value = 0;
};
struct FamilyData {
  std::string name;
  std::string help;
  Type type = Type::kUntyped;
  std::vector<Sample> samples;

  FamilyData& add(Labels labels, double value) {
    samples.push_back(Sample{{}, std::move(labels), value});
    return *this;
  }
};
using Collector = std::function<void(std::vector<FamilyData>& out)>;

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Get-or-create one series. The same name + labels returns the same object, so two modules
  // may share a series. The first registration's help text is kept.
  Counter& counter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::span<const double> upperBounds, Labels labels = {});

  void addCollector(Collector fn);

  // The whole exposition: families sorted by name (owned and collected together), each with
  // "# HELP" and "# TYPE", its series in creation order. Families without samples are left
  // out. Ends with a newline, as the format requires.
  std::string render() const;

  uint64_t collectorFailures() const noexcept {
    return collectorFailures_.load(std::memory_order_relaxed);
  }

 private:
  struct Family;
  Family& family(std::string_view name, std::string_view help, Type type, const Labels& labels);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;  // unique_ptr: references stay valid
  std::vector<Collector> collectors_;
  mutable std::atomic<uint64_t> collectorFailures_{0};
};

// A collector's histogram: the samples of one series of `f` (a kHistogram family) holding the
// sum of `parts` (one per worker, say; all with the same bounds, checked), exactly as an owned
// histogram renders: cumulative _bucket{...,le}, _sum, _count. Scrape time only.
void appendHistogram(FamilyData& f, const Labels& labels, std::span<const Histogram* const> parts);

// Text-format helpers, exposed for the tests and for collectors that pre-render.
// Label values escape \ " and newline; HELP text escapes \ and newline (format 0.0.4).
std::string escapeLabelValue(std::string_view v);
std::string escapeHelp(std::string_view v);
// Integers (|v| < 2^53) print without a fraction ("42"), others shortest round-trip ("0.25",
// "1.5e-07"); infinities and NaN as "+Inf", "-Inf", "NaN".
std::string formatValue(double v);
// [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; [a-zA-Z_][a-zA-Z0-9_]* (not "__"-prefixed) for labels.
bool validMetricName(std::string_view n) noexcept;
bool validLabelName(std::string_view n) noexcept;

}  // namespace hdnsd::metrics
