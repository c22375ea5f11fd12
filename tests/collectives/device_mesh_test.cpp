// File: tests/collectives/device_mesh_test.cpp
#include <gtest/gtest.h>

#include <set>

#include "collectives/device_mesh.h"
#include "runtime/base/error.h"

namespace albion::collectives {
namespace {

TEST(DeviceMesh, TensorIsInnermostAndGroupsPartitionTheWorld) {
  const DeviceMesh mesh(16, /*tensor=*/4, /*pipeline=*/2);
  EXPECT_EQ(mesh.data(), 2);
  // Consecutive ranks share a tensor-parallel group (one node of 4 GPUs).
  EXPECT_EQ(mesh.group(MeshDimension::kTensor, 5), (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(mesh.group(MeshDimension::kPipeline, 5), (std::vector<int>{1, 5}));
  EXPECT_EQ(mesh.group(MeshDimension::kData, 5), (std::vector<int>{5, 13}));
  for (int rank = 0; rank < 16; ++rank) {
    EXPECT_EQ(mesh.rank_of(mesh.coordinates(rank)), rank);
    for (MeshDimension d : {MeshDimension::kData, MeshDimension::kPipeline, MeshDimension::kTensor}) {
      for (int peer : mesh.group(d, rank)) EXPECT_EQ(mesh.color(d, peer), mesh.color(d, rank));
      EXPECT_EQ(mesh.group(d, rank)[mesh.index(d, rank)], rank);
    }
  }
  std::set<int> colors;
  for (int rank = 0; rank < 16; ++rank) colors.insert(mesh.color(MeshDimension::kTensor, rank));
  EXPECT_EQ(colors.size(), 4u);  // 16 ranks / tensor 4
}

TEST(DeviceMesh, PureDataParallelByDefault) {
  const DeviceMesh mesh(4, 1, 1);
  EXPECT_EQ(mesh.data(), 4);
  EXPECT_EQ(mesh.group(MeshDimension::kData, 2), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(mesh.group(MeshDimension::kTensor, 2), (std::vector<int>{2}));
}

TEST(DeviceMesh, RefusesAWorldThatDoesNotFactor) {
  try {
    DeviceMesh(6, 4, 1);
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.tensor"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("6 ranks"), std::string::npos) << e.what();
  }
  EXPECT_THROW(DeviceMesh(4, 0, 1), UsageError);
  EXPECT_THROW(DeviceMesh(4, 1, 3), UsageError);
}

}  // namespace
}  // namespace albion::collectives
