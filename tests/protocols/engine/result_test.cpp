// nudge::result<T>: a value or an error with its message and exit code.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "nudge/protocol/result.hpp"

namespace {

nudge::result<int> half_of(int n) {
  if (n % 2 != 0) return nudge::fail(std::to_string(n) + " is odd", 2);
  return n / 2;
}

nudge::result<void> check_positive(int n) {
  if (n <= 0) return nudge::fail("not positive");
  return {};
}

}  // namespace

TEST(result, holds_the_value_or_the_error) {
  const auto good = half_of(10);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 5);
  const auto bad = half_of(7);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "7 is odd");
  EXPECT_EQ(bad.error().exit_code, 2);
}

TEST(result, void_results_carry_only_the_error) {
  EXPECT_TRUE(check_positive(3).ok());
  const auto r = check_positive(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "not positive");
  EXPECT_EQ(r.error().exit_code, 1);
}

TEST(result, move_only_values_move_out) {
  nudge::result<std::unique_ptr<int>> r = std::make_unique<int>(4);
  ASSERT_TRUE(r);
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 4);
}
