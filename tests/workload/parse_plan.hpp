#pragma once
// Test support: a scenario text that must parse, as its plan (a parse error
// fails the calling test and gives the default plan).
#include <gtest/gtest.h>

#include <string_view>
#include <variant>

#include "nudge/sim/run_plan.hpp"
#include "nudge/sim/scenario.hpp"

namespace nudge::sim::test {

inline run_plan plan_of(std::string_view text) {
  auto r = parse_scenario(text, "test.toml");
  if (auto* e = std::get_if<scenario_error>(&r)) {
    ADD_FAILURE() << e->what();
    return {};
  }
  return std::get<run_plan>(r);
}

}  // namespace nudge::sim::test
