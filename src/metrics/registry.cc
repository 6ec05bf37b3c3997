#include "hdnsd/metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>

#include "hdnsd/util/check.h"

namespace hdnsd::metrics {

const char* typeName(Type t) noexcept {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
    case Type::kUntyped: return "untyped";
  }
  return "untyped";
}

// ---- Histogram ----

Histogram::Histogram(std::span<const double> upperBounds)
    : bounds_(upperBounds.begin(), upperBounds.end()),
      counts_(new std::atomic<uint64_t>[upperBounds.size() + 1]) {
  HDNSD_CHECK(!bounds_.empty());
  for (size_t i = 0; i < bounds_.size(); ++i) {
    HDNSD_CHECK(std::isfinite(bounds_[i]));
    HDNSD_CHECK(i == 0 || bounds_[i - 1] < bounds_[i]);
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) noexcept {
  // lower_bound: first bound >= v, i.e. the smallest "le" bucket that holds v. NaN compares
  // false with everything, so it is routed to +Inf explicitly instead of landing in bucket 0.
  size_t i = std::isnan(v) ? bounds_.size()
                           : size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                    bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

uint64_t Histogram::count() const noexcept {
  uint64_t n = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) n += bucketCount(i);
  return n;
}

void appendHistogram(FamilyData& f, const Labels& labels, std::span<const Histogram* const> parts) {
  if (parts.empty()) return;
  auto bounds = parts[0]->upperBounds();
  std::vector<uint64_t> counts(bounds.size() + 1, 0);
  double sum = 0;
  for (const Histogram* h : parts) {
    HDNSD_CHECK(std::equal(bounds.begin(), bounds.end(), h->upperBounds().begin(), h->upperBounds().end()));
    for (size_t i = 0; i < counts.size(); ++i) counts[i] += h->bucketCount(i);
    sum += h->sum();
  }
  auto with = [&labels](std::string le) {
    Labels l = labels;
    l.push_back({"le", std::move(le)});
    return l;
  };
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    f.samples.push_back({"_bucket", with(i < bounds.size() ? formatValue(bounds[i]) : "+Inf"), double(cumulative)});
  }
  f.samples.push_back({"_sum", labels, sum});
  f.samples.push_back({"_count", labels, double(cumulative)});
}

// ---- text helpers ----

std::string escapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string formatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::to_chars_result r;
  // Counters are whole numbers; print them as such rather than to_chars' shortest form,
  // which would turn 1000000 into "1e+06" (valid, but hard to read in a terminal).
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, v);
  }
  return std::string(buf, r.ptr);
}

static bool isAlpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }

bool validMetricName(std::string_view n) noexcept {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = isAlpha(c) || c == '_' || c == ':' || (i > 0 && isDigit(c));
    if (!ok) return false;
  }
  return true;
}

bool validLabelName(std::string_view n) noexcept {
  if (n.empty() || n.starts_with("__")) return false;  // "__" is reserved for Prometheus
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = isAlpha(c) || c == '_' || (i > 0 && isDigit(c));
    if (!ok) return false;
  }
  return true;
}

// ---- Registry ----

struct Registry::Family {
  std::string name;
  std::string help;
  Type type = Type::kUntyped;
  std::vector<std::string> labelNames;  // fixed by the first series
  std::vector<double> bounds;           // histograms: fixed by the first series
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  std::vector<Series> series;

  // Linear: series are created at startup or on control-path changes, never per query.
  Series* find(const Labels& labels) {
    for (auto& s : series)
      if (s.labels == labels) return &s;
    return nullptr;
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Family& Registry::family(std::string_view name, std::string_view help, Type type,
                                   const Labels& labels) {
  HDNSD_CHECK(validMetricName(name));
  for (const auto& l : labels) {
    HDNSD_CHECK(validLabelName(l.name));
    HDNSD_CHECK(!(type == Type::kHistogram && l.name == "le"));  // le is the bucket label
  }
  for (auto& f : families_) {
    if (f->name != name) continue;
    HDNSD_CHECK(f->type == type);
    HDNSD_CHECK(f->labelNames.size() == labels.size());
    for (size_t i = 0; i < labels.size(); ++i) HDNSD_CHECK(f->labelNames[i] == labels[i].name);
    return *f;
  }
  auto f = std::make_unique<Family>();
  f->name = std::string(name);
  f->help = std::string(help);
  f->type = type;
  for (const auto& l : labels) f->labelNames.push_back(l.name);
  families_.push_back(std::move(f));
  return *families_.back();
}

Counter& Registry::counter(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, Type::kCounter, labels);
  if (auto* s = f.find(labels)) return *s->counter;
  f.series.push_back({std::move(labels), std::make_unique<Counter>(), nullptr, nullptr});
  return *f.series.back().counter;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, Type::kGauge, labels);
  if (auto* s = f.find(labels)) return *s->gauge;
  f.series.push_back({std::move(labels), nullptr, std::make_unique<Gauge>(), nullptr});
  return *f.series.back().gauge;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::span<const double> upperBounds, Labels labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, Type::kHistogram, labels);
  if (f.series.empty()) {
    f.bounds.assign(upperBounds.begin(), upperBounds.end());
  } else {
    // One family, one bucket layout: otherwise histogram_quantile over series would mix them.
    HDNSD_CHECK(std::equal(f.bounds.begin(), f.bounds.end(), upperBounds.begin(),
                           upperBounds.end()));
  }
  if (auto* s = f.find(labels)) return *s->histogram;
  f.series.push_back(
      {std::move(labels), nullptr, nullptr, std::make_unique<Histogram>(upperBounds)});
  return *f.series.back().histogram;
}

void Registry::addCollector(Collector fn) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(fn));
}

namespace {

// One sample line: name{l1="v1",...,extraName="extraValue"} value
void appendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const Labels& labels, std::string_view extraName, std::string_view extraValue,
                  std::string_view valueText) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extraName.empty()) {
    out += '{';
    bool first = true;
    for (const auto& l : labels) {
      if (!first) out += ',';
      first = false;
      out += l.name;
      out += "=\"";
      out += escapeLabelValue(l.value);
      out += '"';
    }
    if (!extraName.empty()) {
      if (!first) out += ',';
      out += extraName;
      out += "=\"";
      out += extraValue;  // only ever a formatted number or +Inf: nothing to escape
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += valueText;
  out += '\n';
}

void appendHeader(std::string& out, std::string_view name, std::string_view help, Type type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += escapeHelp(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += typeName(type);
  out += '\n';
}

}  // namespace

std::string Registry::render() const {
  // Collectors first and without the lock: they may be slow (read /proc) or register metrics.
  std::vector<Collector> collectors;
  {
    std::lock_guard lock(mu_);
    collectors = collectors_;
  }
  std::vector<FamilyData> collected;
  for (const auto& c : collectors) {
    std::vector<FamilyData> part;
    try {
      c(part);
    } catch (const std::exception&) {
      collectorFailures_.fetch_add(1, std::memory_order_relaxed);
      continue;  // a half-built part is dropped whole: better no family than a wrong one
    }
    for (auto& f : part) collected.push_back(std::move(f));
  }

  std::lock_guard lock(mu_);
  struct Entry {
    std::string_view name;
    const Family* owned;
    const FamilyData* data;
  };
  std::vector<Entry> entries;
  entries.reserve(families_.size() + collected.size());
  for (const auto& f : families_) entries.push_back({f->name, f.get(), nullptr});
  for (const auto& f : collected) {
    if (validMetricName(f.name)) entries.push_back({f.name, nullptr, &f});
  }
  // Stable: for equal names the owned family (pushed first) comes first and wins below.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.name < b.name; });

  std::string out;
  std::string_view last;
  bool haveLast = false;
  for (const Entry& e : entries) {
    if (haveLast && e.name == last) continue;  // duplicate family: keep the first
    if (e.owned) {
      const Family& f = *e.owned;
      if (f.series.empty()) continue;
      haveLast = true;
      last = e.name;
      appendHeader(out, f.name, f.help, f.type);
      for (const auto& s : f.series) {
        switch (f.type) {
          case Type::kCounter:
            appendSample(out, f.name, "", s.labels, "", "", std::to_string(s.counter->value()));
            break;
          case Type::kGauge:
            appendSample(out, f.name, "", s.labels, "", "", formatValue(s.gauge->value()));
            break;
          case Type::kHistogram: {
            const Histogram& h = *s.histogram;
            uint64_t cumulative = 0;
            auto bounds = h.upperBounds();
            for (size_t i = 0; i < bounds.size(); ++i) {
              cumulative += h.bucketCount(i);
              appendSample(out, f.name, "_bucket", s.labels, "le", formatValue(bounds[i]),
                           std::to_string(cumulative));
            }
            cumulative += h.bucketCount(bounds.size());
            appendSample(out, f.name, "_bucket", s.labels, "le", "+Inf", std::to_string(cumulative));
            appendSample(out, f.name, "_sum", s.labels, "", "", formatValue(h.sum()));
            appendSample(out, f.name, "_count", s.labels, "", "", std::to_string(cumulative));
            break;
          }
          case Type::kUntyped:
            break;  // never registered as owned
        }
      }
    } else {
      const FamilyData& f = *e.data;
      if (f.samples.empty()) continue;
      haveLast = true;
      last = e.name;
      appendHeader(out, f.name, f.help, f.type);
      for (const auto& s : f.samples)
        appendSample(out, f.name, s.suffix, s.labels, "", "", formatValue(s.value));
    }
  }
  return out;
}

}  // namespace hdnsd::metrics
