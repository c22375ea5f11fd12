// File: checkpoint/format/rank_group.h
// The little coordination a multi-rank save needs (Note [Commit protocol] in checkpoint_writer.h):
// rank 0 hands every rank the checkpoint id and wrapped data key, gathers every rank's shard
// record, and tells all of them whether the checkpoint committed. checkpoint/ only sees this
// interface; launch/ implements it over MPI (its own duplicated communicator, so a background
// save never interleaves with the trainer's collectives), and SingleProcessGroup is one process.
#pragma once

#include <string>
#include <vector>

namespace albion::checkpoint {

class RankGroup {
 public:
  virtual ~RankGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank 0's `value`, on every rank (collective).
  virtual std::string broadcast(const std::string& value) = 0;
  // Every rank's `value` in rank order on rank 0; empty on the others (collective).
  virtual std::vector<std::string> gather(const std::string& value) = 0;
};

class SingleProcessGroup final : public RankGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string broadcast(const std::string& value) override { return value; }
  std::vector<std::string> gather(const std::string& value) override { return {value}; }
};

}  // namespace albion::checkpoint
