// File: launch/mpi_rank_group.h
// checkpoint::RankGroup over MPI: the control messages of a multi-rank save (checkpoint id and
// wrapped key out, shard records in, the outcome out). It works on its own duplicate of the
// communicator it is given, so a save running on a background thread never matches messages with
// the trainer's collectives; that needs MPI_THREAD_MULTIPLE (MpiSession asks for it).
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "checkpoint/format/rank_group.h"

namespace albion::launch {

class MpiRankGroup final : public checkpoint::RankGroup {
 public:
  explicit MpiRankGroup(MPI_Comm comm);  // collective over `comm`
  ~MpiRankGroup() override;
  MpiRankGroup(const MpiRankGroup&) = delete;
  MpiRankGroup& operator=(const MpiRankGroup&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string broadcast(const std::string& value) override;
  std::vector<std::string> gather(const std::string& value) override;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace albion::launch
