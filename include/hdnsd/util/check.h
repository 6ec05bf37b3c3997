// Invariant checks. HDNSD_CHECK always aborts with a message; HDNSD_DCHECK only in debug builds.
#pragma once

#include <cstdio>
#include <cstdlib>

#define HDNSD_CHECK(cond)                                                              \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "hdnsd: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

#ifdef NDEBUG
#define HDNSD_DCHECK(cond) ((void)0)
#else
#define HDNSD_DCHECK(cond) HDNSD_CHECK(cond)
#endif
