// File: runtime/models/tensor_parallel.h
// Tensor parallelism (Megatron-LM's, Shoeybi et al. 2019) for the Llama family and GPT-2: each rank
// of a tensor-parallel group holds 1/N of every attention layer's heads and of every MLP's hidden
// features, so those weights, their gradients, their optimizer state and the activations between
// them are split N ways.
//
//   Llama attention:  x -enter-> q, k, v (their rows: this rank's heads) -> SDPA -> o_proj (its columns) -leave-> y
//   Llama MLP:        x -enter-> gate, up (rows) -> SwiGLU -> down_proj (columns) -leave-> y
//   GPT-2 attention:  x -enter-> c_attn (this rank's heads of q, of k and of v) -> SDPA -> c_proj -leave-> + bias
//   GPT-2 MLP:        x -enter-> c_fc (this rank's features, with their biases) -> GELU -> c_proj -leave-> + bias
//
// enter: identity forward; backward sums x's gradient over the group (every rank's heads add to
// it). leave: sums the ranks' partial outputs forward; identity backward. Two all-reduces per layer
// forward and two backward. A layer cut by its inputs adds its bias once, after the sum.
//
// GPT-2's c_attn holds q, k and v side by side in one matrix [H, 3H] (Conv1D layout: inputs x
// outputs): a rank's part is its heads of each, three ranges of the columns, so that cut has 3
// groups (TensorParallelCut). Its Conv1D weights are cut along their outputs (dim 1, c_attn and
// c_fc) or inputs (dim 0, the c_proj layers): the same cuts as Llama's in the transposed layout.
//
// The vocabulary is cut too: each rank holds rows [r V / n, (r + 1) V / n) of the token embedding
// (its lookup gives zeros for other ids, and leave sums the ranks' rows) and of the LM head, whose
// logits never leave their rank in training: vocab_parallel_linear_cross_entropy_sum takes the
// softmax over the whole vocabulary with two all-reduces per token (its maximum; its sum of
// exponentials with the target's logit), in chunks of tokens. The norms (and GPT-2's positions and
// its c_proj biases) are replicated. Without sequence parallelism their gradients come out equal on
// every rank because their inputs and output gradients are, so nothing synchronises them; with it
// (runtime/models/sequence_parallel.h, the default) each rank's covers its own tokens.
//
// A sharded model keeps its parameter names; their whole ("global") shapes are the unsharded
// model's, and checkpoints hold whole tensors, cut as tensor_parallel_split says, so a run resumes,
// exports and generates on any tensor-parallel degree. A tensor cut by columns is stored transposed
// (stored_transposed), so every rank's part of a cut tensor is one range of the stored elements
// (three for GPT-2's q, k and v): each rank saves and reads its own part, and no rank gathers or
// decrypts a whole cut tensor.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collectives/communicator.h"
#include "runtime/models/model_config.h"

namespace albion::models {

// How a parameter is cut over a tensor-parallel group.
struct TensorParallelCut {
  int dim = -1;             // the dimension cut, -1 for none (replicated)
  std::int64_t groups = 1;  // that dimension holds `groups` equal blocks, each cut (GPT-2's q, k, v)

  bool cut() const { return dim >= 0; }
  // Whether a rank's part is one range of the whole tensor's elements (a block of rows).
  bool one_range() const { return dim == 0 && groups == 1; }
};

// Whether parameter `name` has a row per vocabulary entry: the token embedding, or the LM head.
bool holds_vocabulary_rows(const std::string& name);

// How parameter `name` is cut. Llama family: by rows (dim 0) the q, k, v, gate and up projections,
// the q, k, v biases, the token embedding and the LM head (by vocabulary); by columns (dim 1)
// o_proj and down_proj. GPT-2 (Conv1D layout [in, out]): c_attn by columns in 3 groups, its bias
// likewise, c_fc by columns with its bias, the c_proj layers by rows, wte and lm_head by rows.
// Anything else is replicated. LoRA adapters (nn.Linear layout) follow their layer: lora_B of a
// layer cut by outputs by rows (c_attn's in 3 groups), lora_A of a layer cut by inputs by columns.
TensorParallelCut tensor_parallel_split(const std::string& name);

// True for the replicated parameters whose gradient each rank computes only in part, to be summed
// over the group: lora_A of a layer cut by outputs (its input is whole, but each rank
// back-propagates its own output rows), lora_B of a layer cut by inputs (each rank's output is a
// partial sum) and, with `sequence_parallel`, whatever acts on each rank's own tokens: the norms,
// GPT-2's position embedding and its c_proj biases.
bool tensor_parallel_partial_gradient(const std::string& name, bool sequence_parallel);

// UsageError naming `setting` unless a model of `config` can be cut `degree` ways: degree dividing
// the query heads, key/value heads, MLP width and vocabulary (not checked while vocab_size is 0, to
// be taken from the tokenizer).
void check_tensor_parallel_degree(const ModelConfig& config, std::int64_t degree,
                                  std::string_view setting = "recipe key 'parallel.tensor'");

// Whether checkpoints store a tensor cut as `cut` transposed: one cut by columns (2-D, dim 1).
inline bool stored_transposed(const TensorParallelCut& cut) { return cut.dim == 1; }

// `part` as a checkpoint stores it: transposed when stored_transposed(cut), then flattened (a copy
// if it had to be transposed).
at::Tensor in_stored_order(const at::Tensor& part, const TensorParallelCut& cut);

// A range of a tensor's flattened elements.
struct ElementRange {
  std::int64_t offset = 0;
  std::int64_t numel = 0;
};

// Where part `index` of `count` (shaped `part_shape`) of a tensor cut as `cut` lies in the whole
// tensor's stored elements: one range per group of the cut, which back to back are the part's
// elements in_stored_order. Only for the cuts a checkpoint stores that way (by rows, or by columns
// and transposed).
std::vector<ElementRange> tensor_parallel_stored_ranges(const TensorParallelCut& cut, at::IntArrayRef part_shape,
                                                        std::int64_t index, std::int64_t count);

// Part `index` of `count` equal parts of `whole` along `dim`; with `groups` > 1, the parts of each
// of that many equal blocks of `dim`, side by side (a copy; a view for one group).
at::Tensor tensor_parallel_part(const at::Tensor& whole, int dim, std::int64_t index, std::int64_t count,
                                std::int64_t groups = 1);
// The global shape of a tensor whose part along `dim` (-1: none) is `part_shape`, over `count` ranks.
std::vector<std::int64_t> tensor_parallel_global_shape(at::IntArrayRef part_shape, int dim, std::int64_t count);

// Part `index` of `count` (shaped `part_shape`) of a whole tensor stored elsewhere, cut as `cut`;
// `read(offset, numel)` returns that range of its stored elements, which are `transposed` or not.
// A part that is rows of the stored tensor is read as its ranges; one cut by the stored tensor's
// columns (a column cut in a format 1 checkpoint) is cut from the whole tensor, read once.
at::Tensor read_tensor_parallel_part(const std::function<at::Tensor(std::int64_t, std::int64_t)>& read,
                                     const TensorParallelCut& cut, at::IntArrayRef part_shape, std::int64_t index,
                                     std::int64_t count, bool transposed);

// Note [A checkpoint's vocabulary on another number of ranks]
// A model's vocabulary rows (holds_vocabulary_rows) are its vocabulary in use, then masked padding
// rows, as many as the tensor-parallel degree needs (ModelConfig::pad_vocabulary_for): GPT-2's
// 50,257 on one rank, 50,258 on two. A checkpoint of such a tensor and its moments, read for a model
// cut another number of ways, has other rows past the vocabulary in use; those are masked padding,
// zero in the weights and in both moments (their gradient is exactly 0), so the reads past the
// stored elements are zeros, and the stored rows past the model's are not read: the model, its
// scores and its training continue as stored. `read(offset, numel)` reads a stored tensor of
// `stored_numel` elements; the reader returned reads it as one with rows of zeros added, in `dtype`.
std::function<at::Tensor(std::int64_t, std::int64_t)> read_with_zeros_past(
    std::function<at::Tensor(std::int64_t, std::int64_t)> read, std::int64_t stored_numel, at::ScalarType dtype);

// Collective over `group`: every rank's part (cut along `dim`, in `groups`) put back together, on
// every rank.
at::Tensor gather_tensor_parallel(const at::Tensor& part, int dim, collectives::Communicator& group,
                                  std::int64_t groups = 1);

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
// the group) and weight. With `vocabulary` > 0, the ids from it on are masked padding: out of the
// softmax, with a zero gradient (Note [Masked vocabulary padding] in causal_lm.cpp); 0: every id
// counts. A target outside the vocabulary is a UsageError on the CPU. `use_kernels`: each rank's
// rows padded to a multiple of 64 for the products and the softmax in kernels::softmax_logsumexp
// and softmax_gradient_ (their CPU references on a CPU tensor), or torch's ops on the rows as they
// are; by default where the kernels run (Note [A softmax over every rank's columns] in the .cpp).
at::Tensor vocab_parallel_linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight,
                                                  const at::Tensor& targets, std::int64_t ignore_index,
                                                  collectives::Communicator& group, std::int64_t chunk_rows = 0,
                                                  std::int64_t vocabulary = 0,
                                                  std::optional<bool> use_kernels = std::nullopt);

}  // namespace albion::models
