// File: tests/runtime/data/permutation_test.cpp
#include <gtest/gtest.h>

#include <vector>

#include "runtime/data/permutation.h"

namespace albion::data {
namespace {

class PermutationSizes : public testing::TestWithParam<std::uint64_t> {};

TEST_P(PermutationSizes, IsABijection) {
  const std::uint64_t n = GetParam();
  Permutation permutation(n, 42);
  std::vector<bool> seen(n, false);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t value = permutation(i);
    ASSERT_LT(value, n);
    ASSERT_FALSE(seen[value]) << "value " << value << " produced twice";
    seen[value] = true;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, PermutationSizes,
                         testing::Values<std::uint64_t>(1, 2, 3, 4, 5, 17, 1000, 4096, 4097, 100003));

TEST(Permutation, DeterministicPerSeedAndShuffled) {
  Permutation a(1000, 7);
  Permutation b(1000, 7);
  Permutation c(1000, 8);
  int same_as_b = 0;
  int same_as_c = 0;
  int fixed_points = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    same_as_b += a(i) == b(i);
    same_as_c += a(i) == c(i);
    fixed_points += a(i) == i;
  }
  EXPECT_EQ(same_as_b, 1000);
  EXPECT_LT(same_as_c, 50);     // another seed gives another order
  EXPECT_LT(fixed_points, 50);  // and the order is actually shuffled
}

}  // namespace
}  // namespace albion::data
