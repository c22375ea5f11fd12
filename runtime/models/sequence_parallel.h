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
// same. In the backward pass the layer's input is gathered once more (Megatron-LM's way) rather
// than kept whole from the forward: a layer keeps 1/n of it (project), except in blocks whose
// activations are recomputed anyway. The tokens are cut in the flattened batch-major order (rank
// r holds rows [r B T / n, (r + 1) B T / n) of x.view({B T, H})): each part is one contiguous
// range, and norms work per token, so no layout changes anywhere. The norms' weights are
// replicated but each rank now sees only its tokens, so their gradients are partial sums
// (tensor_parallel_partial_gradient).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "collectives/communicator.h"
#include "runtime/models/layers.h"

namespace albion::models {

// How one forward pass holds the residual stream between the cut parts of a model's layers.
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
  // `layers` (cut by output features) applied to to_layer(x), each output [B, T, out], with their
  // biases unless `bias` is kNone (for a kernel that adds them). When the tokens are cut and
  // gradients computed, the whole input is not kept for the backward pass but gathered again there
  // (gathered_products), unless this stream is `recomputed()` or an adapter's dropout needs the
  // whole input itself.
  std::vector<at::Tensor> project(const at::Tensor& x, const std::vector<const AdaptableLinear*>& layers,
                                  Bias bias = Bias::kWith) const;
  // This rank's tokens of `ids` ([B, T], or [T] alike in every sequence) as the stream holds
  // them: its range of the B T ids when the tokens are cut, else `ids` itself.
  at::Tensor own_tokens(const at::Tensor& ids) const;
  // Whether to_layer is x itself (the model is not cut), so a layer reads the stream's tensor.
  bool passes_through() const { return group_ == nullptr; }
  // This stream in a block whose activations are recomputed in the backward pass: the recomputation
  // keeps them only while the block's backward runs, so gathering the input a third time would buy
  // nothing.
  ResidualStream recomputed() const;
  // The stream from a cut part's partial outputs [B, T, H], summed over the group; backward passes
  // (gathers) the gradient back.
  at::Tensor from_layer(const at::Tensor& partial) const;

 private:
  std::shared_ptr<collectives::Communicator> group_;
  bool cut_by_tokens_ = false;
  bool gather_again_ = true;  // project's whole input, in the backward pass
  std::int64_t batch_ = 0;
  std::int64_t length_ = 0;
};

}  // namespace albion::models
