// Splits a Kubernetes watch stream (newline-delimited JSON, one event per line, delivered by
// curl in chunks whose boundaries fall anywhere) into lines. The partial line is kept between
// chunks in a buffer bounded by `maxLine` bytes: a longer line is an error (the watch restarts
// from its last good resourceVersion) rather than unbounded memory. Pure, loop-agnostic.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hdnsd::kube {

class LineSplitter {
 public:
  enum class Status { kOk, kTooLong, kStopped };

  explicit LineSplitter(size_t maxLine) : maxLine_(maxLine) {}

  // Calls onLine(std::string_view line) -> bool for every complete line in `chunk` (the '\n'
  // and a '\r' before it removed; empty lines skipped). onLine returning false stops at once
  // (kStopped). A line (complete or still partial) over maxLine bytes gives kTooLong; the
  // splitter must then be reset() before reuse.
  template <class F>
  Status feed(std::string_view chunk, F&& onLine) {
    while (!chunk.empty()) {
      const size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        if (buf_.size() + chunk.size() > maxLine_) return Status::kTooLong;
        buf_.append(chunk);
        return Status::kOk;
      }
      std::string_view line;
      if (buf_.empty()) {
        line = chunk.substr(0, nl);  // whole line inside this chunk: no copy
      } else {
        if (buf_.size() + nl > maxLine_) return Status::kTooLong;
        buf_.append(chunk.substr(0, nl));
        line = buf_;
      }
      chunk.remove_prefix(nl + 1);
      if (line.size() > maxLine_) return Status::kTooLong;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      bool keep = line.empty() ? true : onLine(line);
      buf_.clear();
      if (!keep) return Status::kStopped;
    }
    return Status::kOk;
  }

  void reset() { buf_.clear(); }
  size_t buffered() const noexcept { return buf_.size(); }
  size_t maxLine() const noexcept { return maxLine_; }

 private:
  size_t maxLine_;
  std::string buf_;
};

}  // namespace hdnsd::kube
