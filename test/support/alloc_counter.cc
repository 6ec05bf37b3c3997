#include "alloc_counter.h"

#include <atomic>
#include <cstdlib>
#include <new>

// Counting happens in malloc itself (so C libraries such as libuv are counted too): this binary
// defines malloc/calloc/realloc on top of glibc's __libc_* entry points. Under AddressSanitizer,
// which owns malloc, only operator new is counted.
#if defined(__SANITIZE_ADDRESS__)
#define HDNSD_COUNT_IN_NEW 1
#else
#define HDNSD_COUNT_IN_NEW 0
#endif

namespace {
std::atomic<bool> gCounting{false};
std::atomic<uint64_t> gCount{0};

inline void countOne() noexcept {
  if (gCounting.load(std::memory_order_relaxed)) gCount.fetch_add(1, std::memory_order_relaxed);
}

void* newImpl(std::size_t n) {
  if (HDNSD_COUNT_IN_NEW) countOne();
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

void* newAlignedImpl(std::size_t n, std::align_val_t al) {
  if (HDNSD_COUNT_IN_NEW) countOne();
  std::size_t a = static_cast<std::size_t>(al);
  void* p = std::aligned_alloc(a, (n + a - 1) / a * a);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

#if !HDNSD_COUNT_IN_NEW
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* malloc(size_t n) {
  countOne();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t s) {
  countOne();
  return __libc_calloc(n, s);
}
void* realloc(void* p, size_t n) {
  countOne();
  return __libc_realloc(p, n);
}
}
#endif

namespace hdnsd::test {
void startCountingAllocations() noexcept {
  gCount.store(0);
  gCounting.store(true);
}
uint64_t stopCountingAllocations() noexcept {
  gCounting.store(false);
  return gCount.load();
}
}  // namespace hdnsd::test

void* operator new(std::size_t n) { return newImpl(n); }
void* operator new[](std::size_t n) { return newImpl(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try { return newImpl(n); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try { return newImpl(n); } catch (...) { return nullptr; }
}
void* operator new(std::size_t n, std::align_val_t a) { return newAlignedImpl(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return newAlignedImpl(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
