// File: tests/runtime/parallel/all_ranks_slices.h
// Every rank's captured training-state slices, on every rank of MPI_COMM_WORLD: what reading a
// checkpoint's shard files gives, for resharding tests that keep state in memory.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "runtime/train/training_state.h"

namespace albion::testing_support {

inline std::vector<train::StateSlice> all_ranks_slices(const std::vector<train::StateSlice>& mine) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<train::StateSlice> all;
  for (int root = 0; root < size; ++root) {
    std::int64_t count = root == rank ? static_cast<std::int64_t>(mine.size()) : 0;
    MPI_Bcast(&count, 1, MPI_INT64_T, root, MPI_COMM_WORLD);
    for (std::int64_t i = 0; i < count; ++i) {
      train::StateSlice s = root == rank ? mine[i] : train::StateSlice{};
      const std::int64_t elements = s.data.defined() ? s.data.numel() : 0;
      std::int64_t header[4] = {static_cast<std::int64_t>(s.name.size()),
                                static_cast<std::int64_t>(s.global_shape.size()), elements, s.transposed ? 1 : 0};
      MPI_Bcast(header, 4, MPI_INT64_T, root, MPI_COMM_WORLD);
      s.transposed = header[3] != 0;
      s.name.resize(static_cast<std::size_t>(header[0]));
      s.global_shape.resize(static_cast<std::size_t>(header[1]));
      if (root != rank) s.data = at::empty({header[2]});
      MPI_Bcast(s.name.data(), static_cast<int>(header[0]), MPI_CHAR, root, MPI_COMM_WORLD);
      MPI_Bcast(s.global_shape.data(), static_cast<int>(header[1]), MPI_INT64_T, root, MPI_COMM_WORLD);
      MPI_Bcast(&s.offset, 1, MPI_INT64_T, root, MPI_COMM_WORLD);
      MPI_Bcast(s.data.data_ptr<float>(), static_cast<int>(header[2]), MPI_FLOAT, root, MPI_COMM_WORLD);
      all.push_back(std::move(s));
    }
  }
  return all;
}

}  // namespace albion::testing_support
