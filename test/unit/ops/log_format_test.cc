// --log-format json: one object per line with ts, level, component (when the message has one) and msg.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "hdnsd/util/log.h"

using namespace hdnsd;

namespace {
// Runs fn with fd 2 redirected into a pipe; returns what was written.
template <class F>
std::string captureStderr(F fn) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  int saved = dup(2);
  dup2(p[1], 2);
  fn();
  dup2(saved, 2);
  close(saved);
  close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  close(p[0]);
  return out;
}
}  // namespace

TEST_CASE("log: json format is one parseable object per line") {
  log::setFormat(log::Format::kJson);
  std::string out = captureStderr([] {
    LOG_WARN("endpoints: cannot read %s: \"quoted\" \\ and\nnewline", "/x.json");
    LOG_INFO("no component here, just text");
  });
  log::setFormat(log::Format::kText);
  auto nl = out.find('\n');
  REQUIRE(nl != std::string::npos);
  auto first = nlohmann::json::parse(out.substr(0, nl));
  CHECK(first["level"] == "warn");
  CHECK(first["component"] == "endpoints");
  CHECK(first["msg"] == "cannot read /x.json: \"quoted\" \\ and\nnewline");
  CHECK(first["ts"].get<std::string>().size() == 24);
  auto second = nlohmann::json::parse(out.substr(nl + 1, out.size() - nl - 2));
  CHECK(second["msg"] == "no component here, just text");
  CHECK_FALSE(second.contains("component"));
  CHECK(out.back() == '\n');
  CHECK(std::count(out.begin(), out.end(), '\n') == 2);
}

TEST_CASE("log: text format stays one line, newlines flattened") {
  std::string out = captureStderr([] { LOG_ERROR("a\nb"); });
  CHECK(out.find(" error a b\n") != std::string::npos);
  CHECK(log::parseFormat("json") == log::Format::kJson);
  CHECK_FALSE(log::parseFormat("yaml"));
}
