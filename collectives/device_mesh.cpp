// File: collectives/device_mesh.cpp
#include "collectives/device_mesh.h"

#include "runtime/base/check.h"

namespace albion::collectives {

const char* mesh_dimension_name(MeshDimension dimension) {
  switch (dimension) {
    case MeshDimension::kData: return "data";
    case MeshDimension::kPipeline: return "pipeline";
    case MeshDimension::kTensor: return "tensor";
  }
  return "?";
}

DeviceMesh::DeviceMesh(int world_size, int tensor, int pipeline) : pipeline_(pipeline), tensor_(tensor) {
  ALBION_CHECK_AS(UsageError, tensor > 0, "recipe key 'parallel.tensor' must be positive, got ", tensor);
  ALBION_CHECK_AS(UsageError, pipeline > 0, "recipe key 'parallel.pipeline' must be positive, got ", pipeline);
  ALBION_CHECK_AS(UsageError, world_size > 0 && world_size % (tensor * pipeline) == 0,
                  "recipe keys 'parallel.tensor' = ", tensor, " x 'parallel.pipeline' = ", pipeline, " = ",
                  tensor * pipeline, " does not divide the ", world_size, " ranks of this job");
  data_ = world_size / (tensor * pipeline);
}

int DeviceMesh::extent(MeshDimension dimension) const {
  switch (dimension) {
    case MeshDimension::kData: return data_;
    case MeshDimension::kPipeline: return pipeline_;
    case MeshDimension::kTensor: return tensor_;
  }
  return 1;
}

MeshCoordinates DeviceMesh::coordinates(int rank) const {
  ALBION_CHECK(rank >= 0 && rank < world_size(), "rank ", rank, " outside a mesh of ", world_size());
  return {rank / (tensor_ * pipeline_), (rank / tensor_) % pipeline_, rank % tensor_};
}

int DeviceMesh::rank_of(const MeshCoordinates& c) const {
  ALBION_CHECK(c.data >= 0 && c.data < data_ && c.pipeline >= 0 && c.pipeline < pipeline_ && c.tensor >= 0 &&
                   c.tensor < tensor_,
               "mesh coordinates (", c.data, ", ", c.pipeline, ", ", c.tensor, ") outside the mesh");
  return (c.data * pipeline_ + c.pipeline) * tensor_ + c.tensor;
}

int DeviceMesh::index(MeshDimension dimension, int rank) const {
  const MeshCoordinates c = coordinates(rank);
  switch (dimension) {
    case MeshDimension::kData: return c.data;
    case MeshDimension::kPipeline: return c.pipeline;
    case MeshDimension::kTensor: return c.tensor;
  }
  return 0;
}

std::vector<int> DeviceMesh::group(MeshDimension dimension, int rank) const {
  MeshCoordinates c = coordinates(rank);
  std::vector<int> ranks;
  for (int i = 0; i < extent(dimension); ++i) {
    if (dimension == MeshDimension::kData) c.data = i;
    if (dimension == MeshDimension::kPipeline) c.pipeline = i;
    if (dimension == MeshDimension::kTensor) c.tensor = i;
    ranks.push_back(rank_of(c));
  }
  return ranks;
}

int DeviceMesh::color(MeshDimension dimension, int rank) const {
  // The group's lowest rank identifies it.
  return group(dimension, rank).front();
}

}  // namespace albion::collectives
