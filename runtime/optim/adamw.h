// File: runtime/optim/adamw.h
// AdamW with decoupled weight decay (Loshchilov & Hutter), fp32 state, over named parameters:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr * ( m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)  +  wd * p )      (wd only if decayed)
// Parameters whose `decayed` flag is false (norms, biases, embeddings unless the recipe says so)
// get no weight decay. State (step count, m, v per parameter) is exposed by name so checkpoints
// can save and restore it exactly. Master weights: the parameters themselves (fp32).
//
// Parameters marked `orthogonalized` (the hidden layers' matrices, with optim.name = muon) take
// Muon's update instead (runtime/optim/muon.h), with the same learning rate and weight decay;
// their one state tensor, the momentum, is held as exp_avg, and exp_avg_sq stays undefined.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/optim/muon.h"

namespace albion::optim {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  // CUDA parameters: one multi-tensor launch (kernels/adamw) instead of torch ops per tensor,
  // and the gradient norm by kernels/grad_norm.
  bool fused = false;
  MuonOptions muon = {};  // for the parameters marked orthogonalized
};

struct OptimizedParameter {
  std::string name;
  at::Tensor parameter;  // updated in place
  bool decayed = true;
  bool orthogonalized = false;  // updated by Muon (2-D and whole, or a piece of one: see WholeMatrices)
  at::Tensor exp_avg;     // m, fp32, created on first step (Muon's momentum buffer)
  at::Tensor exp_avg_sq;  // v (undefined for Muon)
  // First element of this piece inside the parameter `name`, flattened: 0 for a whole parameter;
  // ZeRO's pieces (views of a flat buffer) start anywhere. Checkpoints key the state by both.
  std::int64_t offset = 0;
  // When defined, the gradient to use instead of parameter.grad(): ZeRO optimizes shards of a
  // flat buffer, whose gradients are shards of the reduce-scattered gradient buffer.
  at::Tensor shard_gradient;

  const at::Tensor& gradient() const { return shard_gradient.defined() ? shard_gradient : parameter.grad(); }
};

// How Muon sees whole matrices when each rank holds pieces of them (ZeRO's pieces, tensor-parallel
// parts), or shares the work of orthogonalizing them (runtime/parallel/data_parallel.h). Called once
// a step, after the momentum of every piece in `due` was updated; it must call apply() once for each
// of them, with the piece's part of orthogonalize(its whole U) and that matrix's muon_scale. U is
// computed when asked for, and each direction applied as it comes, so neither is held for every
// matrix at once. A collective: every rank calls it once per step.
struct MuonPieces {
  std::vector<bool> due;  // by index into parameters(): orthogonalized, with a gradient
  std::function<at::Tensor(std::size_t)> nesterov;  // piece i's Nesterov momentum U, fp32
  std::function<void(std::size_t, const at::Tensor&, double)> apply;  // (i, orthogonal, scale)
};
using WholeMatrices = std::function<void(const MuonPieces&)>;

class AdamW {
 public:
  AdamW(std::vector<OptimizedParameter> parameters, AdamWOptions options);

  // One update with learning rate `lr` from the parameters' .grad(); parameters without a gradient
  // are skipped. Runs under no-grad. `gradient_scale` (optional, clip_factor's 0-dim tensor)
  // multiplies every gradient first, read on the device: the host never waits for it.
  void step(double lr, const at::Tensor& gradient_scale = {});
  // Zeroes gradients in place (gradients that are views into communication buffers stay views).
  void zero_grad();
  // For parameters that are pieces of matrices (ZeRO, tensor parallelism): how Muon sees them whole.
  void set_whole_matrices(WholeMatrices whole) { whole_matrices_ = std::move(whole); }

  std::int64_t step_count() const { return step_count_; }
  // Steps taken by the one-launch path: options.fused, and every parameter fit the kernel.
  std::int64_t fused_steps() const { return fused_steps_; }
  // For resuming: the step count the restored moments belong to.
  void set_step_count(std::int64_t steps) { step_count_ = steps; }
  const AdamWOptions& options() const { return options_; }
  std::vector<OptimizedParameter>& parameters() { return parameters_; }
  const std::vector<OptimizedParameter>& parameters() const { return parameters_; }
  // Bytes of optimizer state (m and v; Muon's momentum) held by this process.
  std::int64_t state_bytes() const;

 private:
  // One multi-tensor launch; false (nothing done) when a parameter is not fp32 CUDA. A parameter
  // on the GPU that does not fit the kernel (another dtype, not contiguous) is named in a warning,
  // once: the run goes on with torch's ops, slower, and a user who asked for fused should know.
  bool fused_step(double lr, double bias1, double bias2, const at::Tensor& gradient_scale);
  // Muon's update of the parameters marked orthogonalized, their gradients scaled by
  // `gradient_scale` where it is defined.
  void orthogonalized_step(double lr, const at::Tensor& gradient_scale);

  std::vector<OptimizedParameter> parameters_;
  AdamWOptions options_;
  std::int64_t step_count_ = 0;
  std::int64_t fused_steps_ = 0;
  bool warned_unfused_ = false;
  WholeMatrices whole_matrices_;  // empty: every orthogonalized parameter is whole
};

// Scales all gradients in place so their global L2 norm is at most `max_norm` (0: no clipping).
// Returns the norm before clipping, computed in fp32/fp64 on the gradients' device; `fused`: by
// the multi-tensor kernel (kernels/grad_norm) when every gradient is CUDA fp32 or bf16. Reads the
// norm on the host (tests, tools); the trainer clips inside AdamW::step with clip_factor instead.
double clip_grad_norm(std::vector<OptimizedParameter>& parameters, double max_norm, bool fused);

// The sum of squares of the gradients (to be summed over ranks when each holds a shard, as ZeRO's
// do): a 0-dim fp64 tensor on the gradients' device, CPU if there are none; nothing waits for it.
at::Tensor squared_gradient_norm(const std::vector<OptimizedParameter>& parameters, bool fused);
// What scales gradients of global norm `norm` (0-dim) to at most `max_norm`: max_norm / (norm +
// 1e-6) where `norm` is finite and above it, else exactly 1; a 0-dim fp32 tensor on norm's device,
// computed there, so nothing waits for the norm. Undefined when max_norm <= 0 (no clipping).
at::Tensor clip_factor(const at::Tensor& norm, double max_norm);

}  // namespace albion::optim
