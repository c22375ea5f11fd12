// File: runtime/models/sequence_parallel.h
// Sequence parallelism (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
// Transformer Models"), the companion of tensor parallelism: between the cut parts of the layers,
// each rank of the tensor-parallel group holds 1/n of the tokens of the residual stream (the
// embeddings, every block's input, the norms and their outputs) instead of all of them, so what
// activation checkpointing keeps per block shrinks n ways too.
//
//   tensor parallelism:    x [B, T, H] -enter (identity)-> layer -leave (all-reduce)-> [B, T, H]
//   sequence parallelism:  x [B T / n, H] -all-gather-> layer -reduce-scatter-> [B T / n, H]
//
// A reduce-scatter and an all-gather move what one all-reduce moves, so the communication is the
// same. The tokens are cut in the flattened batch-major order (rank r holds rows [r B T / n,
// (r + 1) B T / n) of x.view({B T, H})): each part is one contiguous range, and norms work per
// token, so no layout changes anywhere. The norms' weights are replicated but each rank now sees
// only its tokens, so their gradients are partial sums (tensor_parallel_partial_gradient).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>

#include "collectives/communicator.h"

namespace albion::models {

// How one forward pass holds the residual stream between the cut parts of a Llama model's layers.
class ResidualStream {
 public:
  // Whole on every rank: the model is not cut (`group` null) or is cut with sequence parallelism
  // off; token parts when `sequence_parallel` is asked for and the batch's B x T tokens divide
  // evenly, which a pass that computes gradients must have (UsageError otherwise: its norm
  // gradients would be counted n times). `input_ids`: [B, T].
  ResidualStream(std::shared_ptr<collectives::Communicator> group, bool sequence_parallel,
                 const at::Tensor& input_ids);

  // The whole input of a layer's cut part, [B, T, H] on every rank, from the stream; backward sums
  // the ranks' gradients (and keeps this rank's tokens of the sum).
  at::Tensor to_layer(const at::Tensor& x) const;
  // The stream from a cut part's partial outputs [B, T, H], summed over the group; backward passes
  // (gathers) the gradient back.
  at::Tensor from_layer(const at::Tensor& partial) const;

 private:
  std::shared_ptr<collectives::Communicator> group_;
  bool cut_by_tokens_ = false;
  std::int64_t batch_ = 0;
  std::int64_t length_ = 0;
};

}  // namespace albion::models
