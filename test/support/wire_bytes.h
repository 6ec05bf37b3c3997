// Byte-vector helpers for tests that spell DNS messages out field by field.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace hdnsd::test {

using Bytes = std::vector<uint8_t>;

// Concatenates annotated pieces (header, name, type...) into one message.
inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  // push_back, not insert: GCC 12 -O2 reports a false -Warray-bounds on vector::insert.
  for (const auto& p : parts) {
    for (uint8_t b : p) out.push_back(b);
  }
  return out;
}

}  // namespace hdnsd::test
