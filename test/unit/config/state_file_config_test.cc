// --state-file and --state-file-interval (warm restart): parsing, defaults, JSON keys, errors.
#include <doctest/doctest.h>

#include <string>

#include "hdnsd/config/config.h"

using hdnsd::config::parseCommandLine;

TEST_CASE("config: --state-file is off by default and written every 60 s when on") {
  auto off = parseCommandLine({});
  REQUIRE(off);
  CHECK(off->config.stateFile.empty());
  CHECK(off->config.stateFileInterval_s == 60);
  CHECK(hdnsd::config::toJson(off->config).find("\"state-file\"") == std::string::npos);

  auto on = parseCommandLine({"--state-file", "/run/hdnsd/state.json", "--state-file-interval=0"});
  REQUIRE(on);
  CHECK(on->config.stateFile == "/run/hdnsd/state.json");
  CHECK(on->config.stateFileInterval_s == 0);
  const std::string json = hdnsd::config::toJson(on->config);
  CHECK(json.find("\"state-file\":\"/run/hdnsd/state.json\"") != std::string::npos);
  CHECK(json.find("\"state-file-interval\":0") != std::string::npos);
}

TEST_CASE("config: a bad --state-file or --state-file-interval is one line naming it") {
  for (const auto& [args, want] : std::initializer_list<std::pair<std::vector<std::string>, std::string>>{
           {{"--state-file", ""}, "--state-file: expected a file path, got \"\""},
           {{"--state-file", "/run/hdnsd/"}, "--state-file: expected a file path, got \"/run/hdnsd/\""},
           {{"--state-file-interval", "-1"}, "--state-file-interval: expected a whole number 0..86400, got \"-1\""},
           {{"--state-file-interval", "1.5"}, "--state-file-interval: expected a whole number 0..86400, got \"1.5\""},
           {{"--state-file-interval", "86401"}, "--state-file-interval: expected a whole number 0..86400, got \"86401\""}}) {
    auto r = parseCommandLine(args);
    REQUIRE_FALSE(r);
    CHECK(r.error() == want);
  }
}
