// File: collectives/device_mesh.h
// The ranks of a job arranged as data x pipeline x tensor, tensor innermost: the ranks of one
// tensor-parallel group are consecutive, so with one rank per GPU and ranks packed by node they
// share a node's NVLink domain, where tensor parallelism's per-layer traffic belongs.
//
//   rank = (data_index * pipeline + pipeline_index) * tensor + tensor_index
//
// Every rank of the job builds the same mesh; group(dimension, rank) lists the ranks that differ
// from `rank` only along `dimension` (its data-parallel peers, say), and color() names that group
// for Communicator::split.
#pragma once

#include <vector>

namespace albion::collectives {

enum class MeshDimension { kData, kPipeline, kTensor };
const char* mesh_dimension_name(MeshDimension dimension);

struct MeshCoordinates {
  int data = 0;
  int pipeline = 0;
  int tensor = 0;
  bool operator==(const MeshCoordinates&) const = default;
};

class DeviceMesh {
 public:
  // UsageError (naming parallel.tensor / parallel.pipeline) unless tensor x pipeline divides
  // world_size; the data-parallel degree is what remains.
  DeviceMesh(int world_size, int tensor, int pipeline);

  int world_size() const { return data_ * pipeline_ * tensor_; }
  int data() const { return data_; }
  int pipeline() const { return pipeline_; }
  int tensor() const { return tensor_; }
  int extent(MeshDimension dimension) const;

  MeshCoordinates coordinates(int rank) const;
  int rank_of(const MeshCoordinates& coordinates) const;
  int index(MeshDimension dimension, int rank) const;  // rank's coordinate along `dimension`
  // The ranks that share every coordinate of `rank` but `dimension`'s, in increasing order.
  std::vector<int> group(MeshDimension dimension, int rank) const;
  // Equal for exactly the ranks of one group(dimension, ·): the color for Communicator::split.
  int color(MeshDimension dimension, int rank) const;

 private:
  int data_ = 1;
  int pipeline_ = 1;
  int tensor_ = 1;
};

}  // namespace albion::collectives
