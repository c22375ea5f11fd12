// File: runtime/models/tensor_parallel.h
// Tensor parallelism (Megatron-LM's, Shoeybi et al. 2019) for the Llama family: each rank of a
// tensor-parallel group holds 1/N of every attention layer's heads and of every MLP's hidden
// features, so those weights, their gradients, their optimizer state and the activations between
// them are split N ways.
//
//   attention:  x -enter-> q, k, v (their rows: this rank's heads) -> SDPA -> o_proj (its columns) -leave-> y
//   MLP:        x -enter-> gate, up (rows) -> SwiGLU -> down_proj (columns) -leave-> y
//
// enter: identity forward; backward sums x's gradient over the group (every rank's heads add to
// it). leave: sums the ranks' partial outputs forward; identity backward. Two all-reduces per layer
// forward and two backward.
//
// The vocabulary is cut too: each rank holds rows [r V / n, (r + 1) V / n) of the token embedding
// (its lookup gives zeros for other ids, and leave sums the ranks' rows) and of the LM head, whose
// logits never leave their rank in training: vocab_parallel_linear_cross_entropy_sum takes the
// softmax over the whole vocabulary with two all-reduces per token (its maximum; its sum of
// exponentials with the target's logit), in chunks of tokens. The norms are replicated. Without
// sequence parallelism their gradients come out equal on every rank because their inputs and
// output gradients are, so nothing synchronises them; with it (runtime/models/sequence_parallel.h,
// the default) each rank's covers its own tokens.
//
// A sharded model keeps its parameter names; their whole ("global") shapes are the unsharded
// model's, and checkpoints hold whole tensors, cut as tensor_parallel_split says, so a run resumes,
// exports and generates on any tensor-parallel degree.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "runtime/models/model_config.h"

namespace albion::models {

// How the Llama-family parameter `name` is cut over a tensor-parallel group: 0 by rows (the q, k,
// v, gate and up projections, q, k, v biases, the token embedding and LM head: by vocabulary), 1 by
// columns (o_proj and down_proj), -1 not at all (replicated). LoRA adapters follow their layer:
// lora_B of a row-cut layer by rows, lora_A of a column-cut layer by columns.
int tensor_parallel_split(const std::string& name);

// True for the replicated parameters whose gradient each rank computes only in part, to be summed
// over the group: lora_A of a row-cut layer (its input is whole, but each rank back-propagates its
// own output rows), lora_B of a column-cut layer (each rank's output is a partial sum) and, with
// `sequence_parallel`, the norms' weights (each rank normalises its own tokens).
bool tensor_parallel_partial_gradient(const std::string& name, bool sequence_parallel);

// UsageError naming recipe key parallel.tensor unless a model of `config` can be cut `degree` ways:
// the Llama family, with degree dividing the query heads, key/value heads, MLP width and
// vocabulary (not checked while vocab_size is 0, to be taken from the tokenizer).
void check_tensor_parallel_degree(const ModelConfig& config, std::int64_t degree);

// Part `index` of `count` equal parts of `whole` along `dim` (a view).
at::Tensor tensor_parallel_part(const at::Tensor& whole, int dim, std::int64_t index, std::int64_t count);
// The global shape of a tensor whose part along `dim` (-1: none) is `part_shape`, over `count` ranks.
std::vector<std::int64_t> tensor_parallel_global_shape(at::IntArrayRef part_shape, int dim, std::int64_t count);

// Collective over `group`: every rank's part (cut along `dim`) put back together, on every rank.
at::Tensor gather_tensor_parallel(const at::Tensor& part, int dim, collectives::Communicator& group);

// The two halves of a layer's communication (see above); both differentiable.
at::Tensor enter_tensor_parallel(const at::Tensor& x, const std::shared_ptr<collectives::Communicator>& group);
at::Tensor leave_tensor_parallel(const at::Tensor& partial, const std::shared_ptr<collectives::Communicator>& group);

// Sequence parallelism's two halves (runtime/models/sequence_parallel.h): collectives over `group`
// along the first dimension of [N, ...] tensors, N divisible by the group's size; both
// differentiable. gather_tokens: every rank's rows, rank by rank (backward: this rank's rows of the
// gradient summed over the group). scatter_tokens: this rank's rows of the sum over the group
// (backward: the gradient's rows gathered).
at::Tensor gather_tokens(const at::Tensor& part, const std::shared_ptr<collectives::Communicator>& group);
at::Tensor scatter_tokens(const at::Tensor& whole, const std::shared_ptr<collectives::Communicator>& group);

// Products of one gathered input, x W_i^T (+ b_i) for x = gather_tokens(part) [N, in] and each
// weight W_i [out_i, in] (nn.Linear layout; `biases[i]` [out_i], or undefined for none), keeping
// only `part` for the backward pass, which gathers x again (Megatron-LM's sequence parallelism): a
// layer keeps 1/n of its input instead of all of it, for one more all-gather (overlapped with the
// input gradient's product). Under autocast the products run in its dtype, as at::linear's, and the
// input is cast before it is gathered (half the bytes moved and kept). Backward: the weights' and
// biases' gradients (those that require one) and this rank's rows of the input's gradient summed
// over the group.
std::vector<at::Tensor> gathered_products(const at::Tensor& part, const std::vector<at::Tensor>& weights,
                                          const std::vector<at::Tensor>& biases,
                                          const std::shared_ptr<collectives::Communicator>& group);

// The summed cross-entropy of the logits hidden [N, H] x weight^T, the LM head cut by vocabulary
// over `group` (`weight` [V / n, H]: this rank's rows, ids from rank x V / n on); targets [N] are
// global ids, rows whose target is `ignore_index` count nothing. Chunked like
// kernels::linear_cross_entropy_sum (`chunk_rows`, 0 for its default), whose products and
// gradients it shares: no rank holds more than a chunk of its columns' logits, fp32 (fp64 for
// fp64 inputs). Differentiable in hidden (this rank's columns' share of its gradient: sum it over
// the group) and weight. A target outside the vocabulary is a UsageError on the CPU.
at::Tensor vocab_parallel_linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight,
                                                  const at::Tensor& targets, std::int64_t ignore_index,
                                                  collectives::Communicator& group, std::int64_t chunk_rows = 0);

}  // namespace albion::models
