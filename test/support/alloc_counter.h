// Counts heap allocations made by this process while a test has counting switched on. The
// unit-test binary replaces the global operator new (alloc_counter.cc) to do it, so a test
// can show that a code path does not allocate, instead of claiming it.
#pragma once

#include <cstdint>

namespace hdnsd::test {

void startCountingAllocations() noexcept;
// Stops counting and returns how many allocations happened since start.
uint64_t stopCountingAllocations() noexcept;

}  // namespace hdnsd::test
