// File: runtime/models/model_config.cpp
// ModelConfig::validate and the counts derived from a config. The parameter count is computed
// from the shapes each architecture registers (runtime/models/gpt2.cpp, llama.cpp); the model
// tests check the two agree tensor for tensor.
#include "runtime/models/model_config.h"

#include <cmath>

#include "runtime/base/check.h"

namespace albion::models {
namespace {

void require_positive(std::int64_t value, const char* field) {
  ALBION_CHECK_AS(UsageError, value > 0, "model config field '", field, "' must be positive, got ",
                  value);
}

void require_positive(double value, const char* field) {
  ALBION_CHECK_AS(UsageError, std::isfinite(value) && value > 0, "model config field '", field,
                  "' must be a positive number, got ", value);
}

}  // namespace

const char* architecture_name(Architecture architecture) {
  switch (architecture) {
    case Architecture::kGpt2: return "gpt2";
    case Architecture::kLlama: return "llama";
  }
  return "unknown";
}

const char* hugging_face_model_type(const ModelConfig& config) {
  if (config.architecture == Architecture::kGpt2) return "gpt2";
  return config.attention_bias ? "qwen2" : "llama";
}

void ModelConfig::take_tokenizer_vocabulary(std::uint64_t vocabulary) {
  if (vocab_size != 0) return;
  const auto multiple = static_cast<std::uint64_t>(vocab_multiple);
  vocab_size = static_cast<std::int64_t>((vocabulary + multiple - 1) / multiple * multiple);
}

bool ModelConfig::pad_vocabulary_for(std::int64_t degree) {
  if (vocab_size % degree == 0) return false;
  const std::int64_t in_use = vocab_in_use();
  vocab_size = (in_use + degree - 1) / degree * degree;
  vocab_padding = vocab_size - in_use;
  return true;
}

void ModelConfig::validate() const {
  ALBION_CHECK_AS(UsageError, vocab_size > 0,
                  "model config field 'vocab_size' must be positive, got ", vocab_size,
                  " (0 means 'from the tokenizer' and must be filled in first)");
  require_positive(vocab_multiple, "vocab_multiple");
  ALBION_CHECK_AS(UsageError, vocab_padding >= 0 && vocab_padding < vocab_size,
                  "model config field 'vocab_padding' = ", vocab_padding, " must be in [0, vocab_size = ",
                  vocab_size, ")");
  require_positive(context_length, "context_length");
  require_positive(hidden_size, "hidden_size");
  require_positive(layers, "layers");
  require_positive(heads, "heads");
  require_positive(kv_heads, "kv_heads");
  require_positive(intermediate_size, "intermediate_size");
  require_positive(norm_eps, "norm_eps");
  ALBION_CHECK_AS(UsageError, recompute_every >= 0, "model config field 'recompute_every' must be >= 0, got ",
                  recompute_every);
  ALBION_CHECK_AS(UsageError, hidden_size % heads == 0, "model config field 'heads' = ", heads,
                  " must divide 'hidden_size' = ", hidden_size);
  ALBION_CHECK_AS(UsageError, heads % kv_heads == 0, "model config field 'kv_heads' = ", kv_heads,
                  " must divide 'heads' = ", heads);
  if (architecture == Architecture::kGpt2) {
    ALBION_CHECK_AS(UsageError, !attention_bias,
                    "model config field 'attention_bias' is for the llama architecture (GPT-2's attention has biases)");
    // GPT-2's fused c_attn projects to exactly 3 * hidden: no grouped-query attention.
    ALBION_CHECK_AS(UsageError, kv_heads == heads, "model config field 'kv_heads' = ", kv_heads,
                    " must equal 'heads' = ", heads, " for gpt2 (no grouped-query attention)");
    return;
  }
  ALBION_CHECK_AS(UsageError, head_dim() % 2 == 0, "model config field 'heads' = ", heads,
                  " gives an odd head dimension ", head_dim(), "; RoPE needs an even one");
  require_positive(rope_theta, "rope_theta");
  if (rope_scaling) {
    require_positive(rope_scaling->factor, "rope_scaling.factor");
    require_positive(rope_scaling->low_freq_factor, "rope_scaling.low_freq_factor");
    require_positive(rope_scaling->original_max_position, "rope_scaling.original_max_position");
    ALBION_CHECK_AS(
        UsageError, rope_scaling->high_freq_factor > rope_scaling->low_freq_factor,
        "model config field 'rope_scaling.high_freq_factor' = ", rope_scaling->high_freq_factor,
        " must exceed 'rope_scaling.low_freq_factor' = ", rope_scaling->low_freq_factor);
  }
}

std::int64_t parameter_count(const ModelConfig& c, bool include_embeddings) {
  const std::int64_t h = c.hidden_size;
  const std::int64_t output_projection = c.vocab_size * h;  // lm_head, or wte reused as it
  std::int64_t per_layer = 0;
  std::int64_t lookup_tables = 0;
  std::int64_t final_norm = 0;
  switch (c.architecture) {
    case Architecture::kGpt2:
      per_layer = 2 * (2 * h)                                        // ln_1, ln_2 (weight + bias)
                  + (h * 3 * h + 3 * h)                              // attn.c_attn
                  + (h * h + h)                                      // attn.c_proj
                  + (h * c.intermediate_size + c.intermediate_size)  // mlp.c_fc
                  + (c.intermediate_size * h + h);                   // mlp.c_proj
      lookup_tables = c.vocab_size * h + c.context_length * h;       // wte, wpe
      final_norm = 2 * h;
      break;
    case Architecture::kLlama: {
      const std::int64_t kv = c.kv_heads * c.head_dim();
      per_layer = 2 * h                           // input / post_attention layernorm
                  + 2 * h * h + 2 * h * kv        // q, o; k, v
                  + (c.attention_bias ? h + 2 * kv : 0)  // Qwen2: q, k, v biases
                  + 3 * h * c.intermediate_size;  // gate, up, down
      lookup_tables = c.vocab_size * h;           // embed_tokens
      final_norm = h;
      break;
    }
  }
  const std::int64_t body = c.layers * per_layer + final_norm;
  if (include_embeddings) return body + lookup_tables + (c.tie_embeddings ? 0 : output_projection);
  return body + output_projection;
}

double training_flops_per_token(const ModelConfig& config, std::int64_t seq_len) {
  const double n = static_cast<double>(parameter_count(config, /*include_embeddings=*/false));
  return 6.0 * n + 12.0 * static_cast<double>(config.layers) *
                       static_cast<double>(config.hidden_size) * static_cast<double>(seq_len);
}

}  // namespace albion::models
