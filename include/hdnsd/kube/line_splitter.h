// Splits a Kubernetes watch stream (newline-delimited JSON, one event per line, delivered by
// curl in chunks whose boundaries fall anywhere) into lines. The partial line is kept between
// chunks in a buffer bounded by `maxLine` bytes: a longer line is an error (the watch restarts
// from its last good resourceVersion) rather than unbounded memory. Pure, loop-agnostic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hdnsd::kube {

class LineSplitter {
 public:
  enum class Status { kOk, kTooLong, kStopped };

  // skipOverlong: a line over maxLine is dropped (its bytes discarded up to its '\n', counted in
  // skipped()) and the lines after it still come, instead of kTooLong. A watch needs this: an
  // object too big to take, once in the server's history, would otherwise be met again at every
  // restart and stop the watch from ever getting past it.
  explicit LineSplitter(size_t maxLine, bool skipOverlong = false)
      : maxLine_(maxLine), skipOverlong_(skipOverlong) {}

  // Calls onLine(std::string_view line) -> bool for every complete line in `chunk` (the '\n'
  // and a '\r' before it removed; empty lines skipped). onLine returning false stops at once
  // (kStopped). A line (complete or still partial) over maxLine bytes gives kTooLong; the
  // splitter must then be reset() before reuse.
  template <class F>
  Status feed(std::string_view chunk, F&& onLine) {
    while (!chunk.empty()) {
      const size_t nl = chunk.find('\n');
      if (skipping_) {  // inside an overlong line: drop it up to its end
        if (nl == std::string_view::npos) return Status::kOk;
        chunk.remove_prefix(nl + 1);
        skipping_ = false;
        continue;
      }
      if (nl == std::string_view::npos) {
        if (buf_.size() + chunk.size() > maxLine_) return tooLong(false);
        buf_.append(chunk);
        return Status::kOk;
      }
      std::string_view line;
      if (buf_.empty()) {
        line = chunk.substr(0, nl);  // whole line inside this chunk: no copy
      } else if (buf_.size() + nl > maxLine_) {
        if (tooLong(true) == Status::kTooLong) return Status::kTooLong;
        chunk.remove_prefix(nl + 1);
        continue;
      } else {
        buf_.append(chunk.substr(0, nl));
        line = buf_;
      }
      chunk.remove_prefix(nl + 1);
      if (line.size() > maxLine_) {
        if (tooLong(true) == Status::kTooLong) return Status::kTooLong;
        continue;
      }
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      bool keep = line.empty() ? true : onLine(line);
      buf_.clear();
      if (!keep) return Status::kStopped;
    }
    return Status::kOk;
  }

  void reset() {
    buf_.clear();
    skipping_ = false;
  }
  size_t buffered() const noexcept { return buf_.size(); }
  size_t maxLine() const noexcept { return maxLine_; }
  uint64_t skipped() const noexcept { return skipped_; }  // overlong lines dropped (skipOverlong)

 private:
  // ended: the overlong line's '\n' was seen already (nothing more of it to drop).
  Status tooLong(bool ended) {
    if (!skipOverlong_) return Status::kTooLong;
    buf_.clear();
    buf_.shrink_to_fit();  // the partial line may have been big: give it back
    ++skipped_;
    skipping_ = !ended;
    return Status::kOk;
  }

  size_t maxLine_;
  bool skipOverlong_ = false;
  bool skipping_ = false;
  uint64_t skipped_ = 0;
  std::string buf_;
};

}  // namespace hdnsd::kube
