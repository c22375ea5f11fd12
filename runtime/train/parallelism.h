// File: runtime/train/parallelism.h
// How the ranks of a job share one training step. The trainer calls these at fixed points; it
// never talks to a communicator itself. The base class is one process alone; runtime/parallel/
// has data parallelism (DDP), ZeRO-1 and ZeRO-2, each also over tensor-parallel groups.
//
//   attach(trainer)                         once, before the first step
//   for each micro-batch: before_backward(is_last); backward
//   grad_norm = step(trainer, lr)           gradients made global, clipped, parameters updated
//   loss = mean(local_loss)                 the global batch's loss, the same on every rank
//
// Step results are 0-dim tensors on the trainer's device, not host numbers: a step queues its
// work without waiting for the device, and the trainer reads them later (train/trainer.h).
//
// With tensor parallelism the trainer builds its model cut over tensor_parallel_group().
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "collectives/communicator.h"
#include "runtime/optim/adamw.h"

namespace albion::train {

class Trainer;

class Parallelism {
 public:
  virtual ~Parallelism() = default;
  // Ranks that split each global batch (the trainer shards data over them).
  virtual int data_parallel_rank() const { return 0; }
  virtual int data_parallel_size() const { return 1; }
  // The ranks this rank's model is cut over (runtime/models/tensor_parallel.h); null: none.
  virtual std::shared_ptr<collectives::Communicator> tensor_parallel_group() const { return nullptr; }
  // Once, after the model and optimizer exist and before the first step (and before resume).
  virtual void attach(Trainer&) {}
  // Before each micro-batch's backward; `last` marks the step's final micro-batch.
  virtual void before_backward(bool /*last*/) {}
  // After the final backward: make gradients global, clip them to the recipe's norm, update the
  // parameters, zero the gradients. Returns the global gradient norm before clipping (0-dim fp64).
  virtual at::Tensor step(Trainer& trainer, double lr);
  // The L2 norm of the whole model's gradient, from this rank's (global) gradients (0-dim fp64).
  virtual at::Tensor gradient_norm(std::vector<optim::OptimizedParameter>& parameters, bool fused);
  // The mean over data-parallel ranks of a per-rank scalar tensor (a loss), on every rank.
  virtual at::Tensor mean(const at::Tensor& local) { return local; }
  // In place on data-parallel rank `root`: the sum over the data-parallel ranks (of state each
  // holds a piece of, zeros elsewhere); the others' values are left unspecified.
  virtual void sum_to_data_rank(at::Tensor& /*values*/, int /*root*/) {}
  // Whether `local` was true on any rank of the job, the same answer on every rank: ranks stop at
  // the same step boundary. With several ranks on a CUDA device, the answer is the call before's
  // (false at the first call), read without waiting for the device (Note [Steps read one late]).
  virtual bool any_rank(bool local) { return local; }
  // The optimizer whose state this rank holds: the trainer's, or ZeRO's over this rank's shard.
  virtual optim::AdamW& optimizer(Trainer& trainer);
  // Bytes of optimizer state this rank holds (metrics, and the ZeRO benchmark).
  virtual std::int64_t optimizer_state_bytes(Trainer& trainer) const;
};

}  // namespace albion::train
