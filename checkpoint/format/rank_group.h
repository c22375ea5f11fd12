// File: checkpoint/format/rank_group.h
// The little coordination a multi-rank save needs (Note [Commit protocol] in checkpoint_writer.h):
// rank 0 hands every rank the checkpoint id and wrapped data key, gathers every rank's shard
// record, and tells all of them whether the checkpoint committed. checkpoint/ only sees this
// interface; launch/ implements it over MPI (its own duplicated communicator, so a background
// save never interleaves with the trainer's collectives), and SingleProcessGroup is one process.
#pragma once

#include <exception>
#include <string>
#include <vector>

#include "runtime/base/error.h"

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

// What a job's ranks agree happened to something each of them did (a load): nothing, or the
// first failing rank's error, named "rank K: ..." for K > 0, and its exit code.
struct JobOutcome {
  std::string error;  // empty: every rank succeeded
  ExitCode code = ExitCode::kOk;
  bool failed() const { return !error.empty(); }
};

// Collective: every rank's `failure` (null where it succeeded) made the job's outcome, the same on
// every rank. Call it where each rank has caught its own error, so none is left waiting.
JobOutcome agree_on_outcome(RankGroup& ranks, const std::exception_ptr& failure);

// After agree_on_outcome: rethrows `failure` where the rank is alone (its own type and message);
// in a job, throws the agreed error as a JobError, reported by rank 0 only. Nothing on success.
void throw_agreed_failure(const RankGroup& ranks, const JobOutcome& outcome, const std::exception_ptr& failure);

class SingleProcessGroup final : public RankGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string broadcast(const std::string& value) override { return value; }
  std::vector<std::string> gather(const std::string& value) override { return {value}; }
};

}  // namespace albion::checkpoint
