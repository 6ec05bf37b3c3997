// A main() for fuzz targets built without libFuzzer (g++ -DHDNSD_FUZZ_STANDALONE): replays every
// file given, or every file in the directories given, through LLVMFuzzerTestOneInput. `make test`
// uses it to replay each corpus, so every crash once found stays a regression test.
#pragma once

#ifdef HDNSD_FUZZ_STANDALONE
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  size_t runs = 0;
  auto runFile = [&](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++runs;
  };
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) runFile(e.path());
    } else {
      runFile(p);
    }
  }
  std::printf("%s: %zu inputs replayed\n", argv[0], runs);
  return 0;
}
#endif
