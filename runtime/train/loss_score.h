// File: runtime/train/loss_score.h
// The mean next-token loss over many batches, weighted by scored token (a chat batch scores only
// the assistant's tokens, so batches weigh differently), summed on the device and read back once:
// what `albion eval` reports and the trainer's validation logs as val_loss, so the two agree.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "collectives/communicator.h"
#include "runtime/data/token_loader.h"
#include "runtime/models/causal_lm.h"

namespace albion::train {

class Parallelism;

class LossScore {
 public:
  explicit LossScore(const at::Device& device);

  // Scores `batch` with `model` (the caller holds NoGradGuard and eval mode).
  void add(models::CausalLm& model, const data::TokenBatch& batch);

  struct Totals {
    double loss = 0;          // token-weighted mean over the scored targets (0 when none)
    std::int64_t scored = 0;  // targets scored
    std::int64_t windows = 0;
  };
  // This process's batches.
  Totals totals() const;
  // Collective over the data-parallel ranks of `parallel`: the mean over every rank's scored
  // targets, so N ranks scoring 1/N of the windows each give one rank's loss over all of them.
  double mean_over_data_ranks(Parallelism& parallel) const;
  // Collective over `data_group`, whose ranks scored different batches: the totals of them all.
  Totals totals_over(collectives::Communicator& data_group) const;

 private:
  at::Tensor loss_sum_;
  at::Tensor scored_;
  std::int64_t windows_ = 0;
};

}  // namespace albion::train
