#pragma once
// What a test needs from outside the code under test (a program such as
// tshark or chromium, root, a network namespace, capture permission, the shared
// reference files): NUDGE_REQUIRE(have, what) skips the test when it is
// missing, so a developer without the tool still gets a useful run; with
// NUDGE_REQUIRE_TOOLS=1 in the environment (.ci/run sets it) it fails the test
// instead, because ctest counts a skip as a pass and CI would go green with the
// fidelity checks not run.
//
// Use it in a test body or a fixture's SetUp() (it returns from the function,
// like GTEST_SKIP and FAIL).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace nudge::test_support {

/// NUDGE_REQUIRE_TOOLS is set to anything but "" or "0".
inline bool tools_required() {
  const char* v = std::getenv("NUDGE_REQUIRE_TOOLS");
  return v != nullptr && *v != '\0' && std::string_view(v) != "0";
}

}  // namespace nudge::test_support

#define NUDGE_REQUIRE(have, what)                                                                      \
  do {                                                                                                 \
    if (!(have)) {                                                                                     \
      if (::nudge::test_support::tools_required())                                                     \
        GTEST_FAIL() << "missing, and NUDGE_REQUIRE_TOOLS=1 makes that a failure: " << what;           \
      else                                                                                             \
        GTEST_SKIP() << what << " (skipped; NUDGE_REQUIRE_TOOLS=1 makes this a failure)";              \
    }                                                                                                  \
  } while (0)
