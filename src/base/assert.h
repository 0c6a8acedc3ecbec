// Assertions for programmer errors: a broken invariant, never bad input. Bad input is an
// Error value (see error.h). ATRIUM_ASSERT is on in dev and test builds and compiled out
// under NDEBUG; ATRIUM_CHECK stays on everywhere, for the few invariants whose breach must
// stop the process even in production (a ledger that no longer sums to zero).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace atrium::internal {
[[noreturn]] inline void AssertFail(const char* expr, const char* msg, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: assertion failed: %s (%s)\n", file, line, expr, msg);
  std::abort();
}
}  // namespace atrium::internal

#define ATRIUM_CHECK(cond, msg)                                         \
  do {                                                                  \
    if (!(cond)) [[unlikely]]                                           \
      ::atrium::internal::AssertFail(#cond, (msg), __FILE__, __LINE__); \
  } while (false)

#ifdef NDEBUG
#define ATRIUM_ASSERT(cond, msg) \
  do {                           \
  } while (false)
#else
#define ATRIUM_ASSERT(cond, msg) ATRIUM_CHECK(cond, msg)
#endif
