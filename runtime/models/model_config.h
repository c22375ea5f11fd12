// File: runtime/models/model_config.h
// The hyper-parameters of a decoder-only transformer (GPT-2 or Llama), the named presets with
// their published values, and the counts derived from them (parameters, training FLOPs).
//
// Invariants after validate(): every size is positive, heads divides hidden_size, kv_heads divides
// heads, the head dimension is even for Llama (RoPE rotates pairs), and the rope fields are sane.
// Presets are returned unvalidated because `tiny` leaves vocab_size = 0, meaning "take it from the
// tokenizer": the trainer fills it in from the dataset before it validates and builds the model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace albion::models {

enum class Architecture { kGpt2, kLlama };

// Llama 3 "llama3" rope_type: long wavelengths are slowed by `factor`, short ones kept, and the
// band between interpolated (runtime/models/rope.h).
struct RopeScaling {
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position = 8192;
};

struct ModelConfig {
  Architecture architecture = Architecture::kGpt2;
  std::int64_t vocab_size = 0;  // 0 in a preset: the trainer takes it from the tokenizer
  // A vocabulary taken from the tokenizer is padded up to a multiple of this, so tensor-parallel
  // degrees divide it (the extra rows are never a target, and samples skip them).
  std::int64_t vocab_multiple = 1;
  // The last rows of the token embedding and LM head that a published model (model.init) did not
  // have: added so that tensor-parallel degrees divide its vocabulary (GPT-2's 50,257 as 50,304).
  // They are zero, no token id reaches them, and their logits are -inf in every softmax, so the
  // model scores and samples exactly as published; an export drops them (Note [Masked vocabulary
  // padding] in causal_lm.cpp). A vocabulary padded for a new model (vocab_multiple, or a larger
  // model.vocab_size without model.init) is not masked: its rows train like the others.
  std::int64_t vocab_padding = 0;
  std::int64_t context_length = 0;
  std::int64_t hidden_size = 0;
  std::int64_t layers = 0;
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;                // == heads for GPT-2; fewer for grouped-query attention
  std::int64_t intermediate_size = 0;       // MLP width (4 * hidden for GPT-2)
  double norm_eps = 1e-5;                   // LayerNorm (GPT-2) or RMSNorm (Llama) epsilon
  double rope_theta = 10000.0;              // Llama only
  std::optional<RopeScaling> rope_scaling;  // Llama only
  bool tie_embeddings = true;               // lm_head shares the token embedding matrix
  bool attention_bias = false;              // Llama family: biases on q, k and v (Qwen2's architecture)
  bool fused_kernels = true;                // on CUDA, kernels/ where one exists; false: plain torch ops
  // Activation checkpointing: every Nth block's activations are recomputed in the backward pass
  // instead of kept (runtime/models/activation_checkpoint.h); 0: none, 1: every block.
  std::int64_t recompute_every = 0;
  // Under tensor parallelism, each rank holds 1/n of the tokens between the layers' cut parts
  // (runtime/models/sequence_parallel.h); false: every rank holds them all.
  bool sequence_parallel = true;

  std::int64_t head_dim() const { return heads > 0 ? hidden_size / heads : 0; }
  // The ids the model scores and samples: every row but the masked padding.
  std::int64_t vocab_in_use() const { return vocab_size - vocab_padding; }

  // Throws UsageError naming the first offending field.
  void validate() const;
  // A preset's vocab_size of 0 becomes the tokenizer's `vocabulary`, padded to vocab_multiple;
  // a preset's own vocabulary is kept.
  void take_tokenizer_vocabulary(std::uint64_t vocabulary);
  // Unless `degree` divides the rows already: as many masked padding rows as it takes for it to,
  // the vocabulary in use unchanged (a published model's, or a checkpoint's trained on another
  // number of ranks, cut `degree` ways). Returns whether the rows changed.
  bool pad_vocabulary_for(std::int64_t degree);
};

const char* architecture_name(Architecture architecture);
// The model_type of the transformers class with `config`'s layout: "gpt2", "llama", or "qwen2"
// (the Llama layout with attention biases).
const char* hugging_face_model_type(const ModelConfig& config);

// The preset called `name`; UsageError for an unknown name, suggesting the nearest one.
ModelConfig model_preset(const std::string& name);
std::vector<std::string> model_preset_names();

// Number of trainable parameters the model built from `config` has (ties counted once).
// include_embeddings = false drops the lookup tables (token and position embeddings) but keeps the
// output projection's vocab x hidden once, tied or not, because every token pays for that matmul;
// this is nanoGPT's convention (gpt2: 123,653,376 of 124,439,808) and what FLOP counts need.
std::int64_t parameter_count(const ModelConfig& config, bool include_embeddings);

// Training FLOPs per token at sequence length seq_len, the PaLM (appendix B) / nanoGPT convention:
//   6 * N  +  12 * layers * hidden_size * seq_len
// N = parameter_count(config, false): each weight does one multiply-add (2 FLOPs) forward and two
// backward. The second term is the attention scores (QK^T) and the weighted values (AV), 2 * 2 *
// hidden * seq_len per layer forward, times 3 for forward + backward, counted over the full
// (unmasked) square as the convention does, so MFU figures compare with published ones.
double training_flops_per_token(const ModelConfig& config, std::int64_t seq_len);

}  // namespace albion::models
