// File: tests/collectives/world_test.cpp
// Runs under mpirun -np 2 and -np 4 (one node): every rank sees the same world.
#include <gtest/gtest.h>
#include <mpi.h>

#include "collectives/world.h"

namespace albion::collectives {
namespace {

TEST(DescribeWorld, RanksAgreeOnOneNode) {
  WorldInfo info = describe_world(MPI_COMM_WORLD);
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(info.size, size);
  EXPECT_GE(info.rank, 0);
  EXPECT_LT(info.rank, size);
  // ctest runs every rank on this machine.
  EXPECT_EQ(info.node_count, 1);
  EXPECT_EQ(info.local_size, size);
  EXPECT_EQ(info.local_rank, info.rank);
  EXPECT_FALSE(info.hostname.empty());

  // Every rank reports a distinct rank: their sum is 0 + 1 + ... + (size - 1).
  int sum = 0;
  MPI_Allreduce(&info.rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(sum, size * (size - 1) / 2);
}

}  // namespace
}  // namespace albion::collectives
