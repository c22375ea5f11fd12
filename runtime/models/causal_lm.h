// File: runtime/models/causal_lm.h
// The decoder-only language model the trainer drives, whatever the architecture:
//
//   class CausalLm : public torch::nn::Module {
//     at::Tensor forward(const at::Tensor& input_ids);   // [B, T] int64 -> logits [B, T, V]
//     at::Tensor loss(input_ids, targets, loss_mask);     // mean CE over mask == 1; scalar
//     std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
//     std::vector<std::pair<std::string, at::Tensor>> trainable_parameters() const;  // LoRA: adapters
//     bool is_weight_decayed(const std::string& name) const;
//     const ModelConfig& config() const;
//     // and all of torch::nn::Module: to(device[, dtype]), parameters(), train(), zero_grad(), ...
//   };
//   std::shared_ptr<CausalLm> make_model(const ModelConfig&, at::Device = at::kCPU);
//
// Parameter names and shapes are exactly the Hugging Face transformers state-dict keys of
// GPT2LMHeadModel and LlamaForCausalLM (runtime/models/gpt2.h, llama.h), so a published
// safetensors file loads by name with no renaming table (tests/runtime/models/hf_reference_test.cpp
// loads transformers' own state dicts that way). Tied embeddings: the output projection reuses
// the token-embedding matrix and no "lm_head.weight" parameter exists; a state dict that carries
// one holds the same values (the test checks it), so a loader skips it. Two generic rules a
// loader still applies, as transformers does: files saved from the base model lack the
// "transformer." / "model." prefix, and old GPT-2 files also hold the attention-mask buffers
// "attn.bias" / "attn.masked_bias", which are not parameters (the mask here is SDPA's is_causal).
//
// Precision: parameters are fp32 master weights (or whatever to() made them); under CUDA bf16
// autocast the matrix products run in bf16 and the norms' statistics, softmax and loss in fp32.
// The loss is computed in fp32 (fp64 when the model is fp64, which the reference tests use).
//
// Note [Attention within documents]
// A training sequence is a window of a stream of documents laid end to end, so it may hold the end
// of one document and the start of the next. Pretraining lets attention cross that boundary
// (GPT-2's and llm.c's way). Fine-tuning on packed conversations should not: an answer would attend
// to an unrelated conversation before it. With `positions` (the loader's, data.document_masking) a
// forward numbers each document's tokens from 0 (GPT-2's learned positions and Llama's rotary
// angles restart) and masks attention to the token's own document, so each document is computed as
// if it began the sequence (the tests hold packed logits to each document's alone). The mask is an
// explicit [B, 1, T, T] one, added to the scores (document_attention_bias, made once per forward
// for every layer). SDPA then runs a kernel that takes a mask (on CUDA not flash attention), so the
// loader leaves `positions` undefined for a batch with no document starting inside it, which
// attends causally as before.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "collectives/communicator.h"
#include "runtime/models/kv_cache.h"
#include "runtime/models/model_config.h"

namespace albion::models {

// GPT-2's initialisation for every architecture: N(0, 0.02) matrices and embeddings, and the
// projections that write into the residual stream scaled by 1 / sqrt(2 * layers) so the stream's
// variance does not grow with depth.
inline constexpr double kInitStd = 0.02;

class CausalLm : public torch::nn::Module {
 public:
  // `tensor_group`: the ranks the model is cut over (see make_model), null when it is whole.
  explicit CausalLm(ModelConfig config, std::shared_ptr<collectives::Communicator> tensor_group = nullptr);

  // input_ids: [B, T] int64 with T <= context_length. Returns logits [B, T, vocab_size] in the
  // parameters' dtype (bf16 under autocast). Position t only sees positions <= t; with `positions`
  // ([B, T] int64, each token's position in its document), only those of its own document too
  // (Note [Attention within documents]).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& positions = {});
  // Incremental decoding (no autograd): input_ids continue the tokens `cache` holds, at positions
  // cache.length() onwards (the total at most context_length); returns their logits and adds
  // them to the cache.
  at::Tensor forward(const at::Tensor& input_ids, KvCache& cache);
  // The logits of the token after each row's last, [B, vocab_size], for drawing it (no autograd):
  // only the last position is projected onto the vocabulary. The other positions' logits were a
  // [T, vocab] product thrown away, gigabytes for a long prompt (8,192 tokens of Llama 3's 128,256
  // entries: 2.1 GB in bf16). With `cache`, input_ids continue and join its tokens as in
  // forward(input_ids, cache).
  at::Tensor next_token_logits(const at::Tensor& input_ids, KvCache* cache = nullptr);
  // For each row of input_ids [B, T], the natural-log probability of its targets [B, T] summed over
  // the positions where `scored` [B, T] is nonzero: [B] fp64 (no autograd; multiple-choice
  // scoring). Only the scored positions are projected onto the vocabulary, in chunks, so a batch of
  // many short continuations after long contexts never holds its [B, T, vocab] logits.
  // `chunk_positions`: positions per projection; 0 for about 2^26 logits (256 MB in fp32).
  at::Tensor target_log_likelihoods(const at::Tensor& input_ids, const at::Tensor& targets, const at::Tensor& scored,
                                    std::int64_t chunk_positions = 0);

  // The final hidden states [B, T, hidden] (after the last norm), and the output projection
  // [vocab, hidden] they are multiplied by: the LM head, or the token embedding when tied. With a
  // cache, positions start at cache->length() and every layer appends its keys and values (the
  // caller advances the cache); with `positions` (no cache) they are those, and attention stays
  // within documents. A model cut over a tensor-parallel group gives them whole on every rank, for
  // the rank's part of the projection, and sums their gradient over the group.
  virtual at::Tensor hidden_states(const at::Tensor& input_ids, KvCache* cache, const at::Tensor& positions = {}) = 0;
  virtual at::Tensor output_weight() const = 0;

  // Mean next-token cross-entropy over the positions where loss_mask == 1 (every position when
  // loss_mask is undefined); targets and loss_mask are [B, T] like input_ids (targets at masked-out
  // positions are ignored, whatever their value). An all-zero mask gives 0, not NaN. With
  // fused_kernels on CUDA, and always for a model cut over a tensor-parallel group, the projection
  // and the loss run in chunks (kernels/cross_entropy) so the [B x T, vocab] logits are never held
  // whole.
  // `positions`: as forward's.
  at::Tensor loss(const at::Tensor& input_ids, const at::Tensor& targets, const at::Tensor& loss_mask = {},
                  const at::Tensor& positions = {});

  // Every parameter by its Hugging Face name, in registration order. Hides
  // torch::nn::Module's OrderedDict version (same names, same order) to give a plain vector.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  // Those that require a gradient: all of them, except under LoRA (runtime/models/lora.h), where
  // only the adapters train. The optimizer and checkpoints hold these.
  std::vector<std::pair<std::string, at::Tensor>> trainable_parameters() const;

  // True for 2-D weight matrices of linear / conv1d layers (an untied lm_head included); false
  // for norms, biases, the embedding tables and a tied "lm_head.weight" (which is the token
  // embedding). albion::Error for any other name the model does not have.
  bool is_weight_decayed(const std::string& name) const;

  // The tensor-parallel group this model is cut over (runtime/models/tensor_parallel.h), null when
  // it is whole. A cut model's forward() runs collectives over it: every rank of the group must run
  // the same forwards, and its logits are gathered for inference only (under no_grad; training
  // goes through loss(), whose logits stay cut). config() stays the whole model's.
  const std::shared_ptr<collectives::Communicator>& tensor_parallel_group() const { return tensor_group_; }

  const ModelConfig& config() const { return config_; }

 protected:
  // Residual-projection init std for this depth.
  double residual_init_std() const;
  // Checks input_ids is [B, T] int64 with T >= 1 and T plus the cache's length (if any) at most
  // context_length, and that `positions` is undefined, or of input_ids' shape and without a cache.
  void check_input(const at::Tensor& input_ids, const KvCache* cache, const at::Tensor& positions) const;
  // The attention mask of packed documents at `positions` (undefined without), made once per forward
  // in the dtype attention's queries come in: autocast's, else the weights' (document_attention_bias).
  at::Tensor document_mask(const at::Tensor& positions) const;
  // The names of this architecture's embedding tables (never weight-decayed).
  virtual bool is_embedding_table(const std::string& name) const = 0;

 private:
  at::Tensor chunked_loss(const at::Tensor& input_ids, const at::Tensor& targets, const at::Tensor& loss_mask,
                          const at::Tensor& positions);
  // The logits of hidden states [..., hidden], over the whole vocabulary: on a rank of a
  // tensor-parallel group, its part [..., V / n] put back together.
  at::Tensor logits_of(const at::Tensor& hidden) const;

  ModelConfig config_;
  std::shared_ptr<collectives::Communicator> tensor_group_;
};

// Eval mode (no LoRA dropout) for a scope, then the module's mode before, however it is left.
class EvalModeScope {
 public:
  explicit EvalModeScope(torch::nn::Module& module) : module_(module), was_training_(module.is_training()) {
    module_.eval();
  }
  ~EvalModeScope() { module_.train(was_training_); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  torch::nn::Module& module_;
  bool was_training_;
};

// Builds and initialises the model for a validated copy of `config`, parameters in fp32 on
// `device`. Values come from that device's default generator (seed it with at::manual_seed); build
// on CPU and move for values that do not depend on the device. at::kMeta builds shapes only.
//
// With a `tensor_group` of more than one rank the model is cut over it as it is built: each layer
// is drawn whole, from the same random stream as a whole model's, and only this rank's part of it
// kept, so a seed gives the same model on any degree while a rank never holds more than its part
// and one whole layer. UsageError for a model that cannot be cut that way (check_tensor_parallel_degree).
//
// InitialValues::kNone allocates the matrices without drawing them, for a caller that loads every
// parameter next (model.init, a checkpoint): drawing a whole model's values it would overwrite is
// most of a large model's start-up (70 B normal draws per rank for Llama 3.1 70B, cut or not).
enum class InitialValues { kRandom, kNone };
std::shared_ptr<CausalLm> make_model(const ModelConfig& config, at::Device device = at::kCPU,
                                     std::shared_ptr<collectives::Communicator> tensor_group = nullptr,
                                     InitialValues values = InitialValues::kRandom);

}  // namespace albion::models
