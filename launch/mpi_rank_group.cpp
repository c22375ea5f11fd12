// File: launch/mpi_rank_group.cpp
#include "launch/mpi_rank_group.h"

#include <numeric>

#include "collectives/mpi_check.h"

namespace albion::launch {

MpiRankGroup::MpiRankGroup(MPI_Comm comm) {
  ALBION_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  ALBION_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  ALBION_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiRankGroup::~MpiRankGroup() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::string MpiRankGroup::broadcast(const std::string& value) {
  unsigned long long length = rank_ == 0 ? value.size() : 0;
  ALBION_MPI_CHECK(MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, 0, comm_));
  std::string out = rank_ == 0 ? value : std::string(length, '\0');
  if (length > 0) ALBION_MPI_CHECK(MPI_Bcast(out.data(), static_cast<int>(length), MPI_CHAR, 0, comm_));
  return out;
}

std::vector<std::string> MpiRankGroup::gather(const std::string& value) {
  int length = static_cast<int>(value.size());
  std::vector<int> lengths(rank_ == 0 ? size_ : 0);
  ALBION_MPI_CHECK(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, comm_));
  std::vector<int> displacements(lengths.size());
  std::exclusive_scan(lengths.begin(), lengths.end(), displacements.begin(), 0);
  std::string all(rank_ == 0 ? static_cast<std::size_t>(std::accumulate(lengths.begin(), lengths.end(), 0)) : 0, '\0');
  ALBION_MPI_CHECK(MPI_Gatherv(value.data(), length, MPI_CHAR, all.data(), lengths.data(), displacements.data(),
                               MPI_CHAR, 0, comm_));
  std::vector<std::string> out;
  for (std::size_t r = 0; r < lengths.size(); ++r) out.push_back(all.substr(displacements[r], lengths[r]));
  return out;
}

}  // namespace albion::launch
