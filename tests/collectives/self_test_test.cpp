// File: tests/collectives/self_test_test.cpp
#include <gtest/gtest.h>
#include <mpi.h>

#include "collectives/self_test.h"

namespace albion::collectives {
namespace {

class AllreduceSelfTest : public testing::TestWithParam<std::int64_t> {};

TEST_P(AllreduceSelfTest, SumIsExactOnEveryRank) {
  SelfTestResult result = run_allreduce_self_test(MPI_COMM_WORLD, GetParam());
  EXPECT_EQ(result.elements, GetParam());
  EXPECT_EQ(result.mismatches, 0);
  EXPECT_GE(result.seconds, 0.0);
}

// Zero, one, odd sizes not divisible by any world size, and a few MiB.
INSTANTIATE_TEST_SUITE_P(Sizes, AllreduceSelfTest,
                         testing::Values<std::int64_t>(0, 1, 1001, 65537, std::int64_t{1} << 20));

}  // namespace
}  // namespace albion::collectives
