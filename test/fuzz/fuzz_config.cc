// libFuzzer target for the configuration parser: the command line (arguments separated by NUL
// bytes) and the --config JSON file. Nothing may throw out of parseCommandLine, an error is one
// line naming the flag, and a configuration that parses survives its own toJson: written back as
// a --config file, it parses again to the same JSON (what reload and the startup log rely on).
// Input: byte 0 even → the rest is the JSON file; odd → the rest is NUL-separated arguments.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "hdnsd/config/config.h"

using namespace hdnsd;

namespace {

// A file only this process sees (no disk, no clean-up): /proc/self/fd/N.
std::string memFile(std::string_view text, int* fd) {
  *fd = memfd_create("hdnsd-fuzz-config", 0);
  if (*fd < 0) std::abort();
  if (!text.empty() && write(*fd, text.data(), text.size()) != ssize_t(text.size())) std::abort();
  return "/proc/self/fd/" + std::to_string(*fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string> args;
  int fd = -1;
  if (data[0] % 2 == 0) {
    args = {"--config", memFile(rest, &fd)};
  } else {
    size_t start = 0;
    for (size_t i = 0; i <= rest.size() && args.size() < 64; ++i)
      if (i == rest.size() || rest[i] == '\0') {
        args.emplace_back(rest.substr(start, i - start));
        start = i + 1;
      }
    for (auto& a : args)  // never read a real file named by the input
      if (a.rfind("--config", 0) == 0) a = "--log-level=info";
  }
  Result<config::CommandLine, std::string> parsed = Unexpected{std::string()};
  try {
    parsed = config::parseCommandLine(args);
  } catch (...) {
    std::abort();  // the parser must report, never throw
  }
  if (fd >= 0) close(fd);
  if (!parsed) {
    if (parsed.error().empty() || parsed.error().find('\n') != std::string::npos) std::abort();
    return 0;
  }
  if (parsed->action != config::Action::kRun) return 0;
  // The file name differs ("config" key, which a config file may not hold); compare the rest.
  auto strip = [](std::string j) {
    auto p = j.find("\"config\":");
    if (p == std::string::npos) return j;
    auto e = j.find(',', p);
    return j.erase(p, e == std::string::npos ? std::string::npos : e - p + 1);
  };
  const std::string json = strip(config::toJson(parsed->config));
  int fd2 = -1;
  auto again = config::parseCommandLine({"--config", memFile(json, &fd2)});
  close(fd2);
  if (!again) {
    std::fprintf(stderr, "toJson output does not parse: %s\n%s\n", again.error().c_str(), json.c_str());
    std::abort();
  }
  auto json2 = strip(config::toJson(again->config));
  if (json != json2) {
    std::fprintf(stderr, "toJson round trip differs:\n%s\n%s\n", json.c_str(), json2.c_str());
    std::abort();
  }
  return 0;
}

#include "standalone_main.h"
