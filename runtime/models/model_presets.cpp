// File: runtime/models/model_presets.cpp
// The named model presets, with the hyper-parameters of the published checkpoints (the Hugging
// Face config.json of openai-community/gpt2*, meta-llama/Llama-3.* and Qwen/Qwen2.5-*), so a preset plus a
// published safetensors file is the published model. `tiny` is Albion's own: a GPT-2 small enough
// to train on two CPU cores in minutes, and `tiny-llama` the same size in the Llama layout (grouped
// key/value heads, an untied LM head), which tensor parallelism can cut 2 ways; their vocab_size = 0
// is filled in from the tokenizer (tiny-llama's padded to a multiple of 64).
#include <algorithm>
#include <array>
#include <string_view>

#include "runtime/base/check.h"
#include "runtime/config/nearest_name.h"
#include "runtime/models/model_config.h"

namespace albion::models {
namespace {

struct Preset {
  std::string_view name;
  ModelConfig config;
};

ModelConfig gpt2(std::int64_t vocab, std::int64_t context, std::int64_t hidden, std::int64_t layers,
                 std::int64_t heads) {
  ModelConfig c;
  c.architecture = Architecture::kGpt2;
  c.vocab_size = vocab;
  c.context_length = context;
  c.hidden_size = hidden;
  c.layers = layers;
  c.heads = heads;
  c.kv_heads = heads;
  c.intermediate_size = 4 * hidden;
  c.norm_eps = 1e-5;
  c.tie_embeddings = true;
  return c;
}

// Every Llama 3.x checkpoint shares the vocabulary, RoPE base, 128k context, eight KV heads and
// the "llama3" rope scaling (low 1, high 4, original 8192); the 3.2 models scale by 32, 3.1 by 8.
ModelConfig llama3(std::int64_t hidden, std::int64_t layers, std::int64_t heads,
                   std::int64_t intermediate, double rope_factor, bool tie) {
  ModelConfig c;
  c.architecture = Architecture::kLlama;
  c.vocab_size = 128256;
  c.context_length = 131072;
  c.hidden_size = hidden;
  c.layers = layers;
  c.heads = heads;
  c.kv_heads = 8;
  c.intermediate_size = intermediate;
  c.norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.rope_scaling = RopeScaling{rope_factor, 1.0, 4.0, 8192};
  c.tie_embeddings = tie;
  return c;
}

// Qwen2.5 (Qwen/Qwen2.5-*): Llama's layout with biases on q, k and v, RoPE base 1e6 without
// scaling, RMSNorm epsilon 1e-6, 32k context; the small models tie their embeddings.
ModelConfig qwen25(std::int64_t hidden, std::int64_t layers, std::int64_t heads, std::int64_t kv_heads,
                   std::int64_t intermediate, bool tie) {
  ModelConfig c;
  c.architecture = Architecture::kLlama;
  c.attention_bias = true;
  c.vocab_size = tie ? 151936 : 152064;
  c.context_length = 32768;
  c.hidden_size = hidden;
  c.layers = layers;
  c.heads = heads;
  c.kv_heads = kv_heads;
  c.intermediate_size = intermediate;
  c.norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.tie_embeddings = tie;
  return c;
}

ModelConfig tiny_llama() {
  ModelConfig c;
  c.architecture = Architecture::kLlama;
  c.vocab_size = 0;
  c.vocab_multiple = 64;  // the byte tokenizer's 257 ids become 320: cut 2, 4 or 8 ways
  c.context_length = 256;
  c.hidden_size = 128;
  c.layers = 4;
  c.heads = 4;
  c.kv_heads = 2;
  c.intermediate_size = 352;
  c.norm_eps = 1e-5;
  c.tie_embeddings = false;
  return c;
}

const std::array<Preset, 17>& presets() {
  static const std::array<Preset, 17> kPresets = {{
      {"tiny", gpt2(/*vocab=*/0, 256, 128, 4, 4)},
      {"tiny-llama", tiny_llama()},
      {"gpt2", gpt2(50257, 1024, 768, 12, 12)},
      {"gpt2-medium", gpt2(50257, 1024, 1024, 24, 16)},
      {"gpt2-large", gpt2(50257, 1024, 1280, 36, 20)},
      {"gpt2-xl", gpt2(50257, 1024, 1600, 48, 25)},
      {"llama-3.2-1b", llama3(2048, 16, 32, 8192, 32.0, /*tie=*/true)},
      {"llama-3.2-3b", llama3(3072, 28, 24, 8192, 32.0, /*tie=*/true)},
      {"llama-3.1-8b", llama3(4096, 32, 32, 14336, 8.0, /*tie=*/false)},
      {"llama-3.1-70b", llama3(8192, 80, 64, 28672, 8.0, /*tie=*/false)},
      {"qwen2.5-0.5b", qwen25(896, 24, 14, 2, 4864, /*tie=*/true)},
      {"qwen2.5-1.5b", qwen25(1536, 28, 12, 2, 8960, /*tie=*/true)},
      {"qwen2.5-3b", qwen25(2048, 36, 16, 2, 11008, /*tie=*/true)},
      {"qwen2.5-7b", qwen25(3584, 28, 28, 4, 18944, /*tie=*/false)},
      {"qwen2.5-14b", qwen25(5120, 48, 40, 8, 13824, /*tie=*/false)},
      {"qwen2.5-32b", qwen25(5120, 64, 40, 8, 27648, /*tie=*/false)},
      {"qwen2.5-72b", qwen25(8192, 80, 64, 8, 29568, /*tie=*/false)},
  }};
  return kPresets;
}

}  // namespace

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : presets()) names.emplace_back(p.name);
  return names;
}

ModelConfig model_preset(const std::string& name) {
  for (const Preset& p : presets()) {
    if (p.name == name) return p.config;
  }
  const std::vector<std::string> names = model_preset_names();
  std::string hint;
  if (std::optional<std::string> nearest = config::nearest_name(name, names)) {
    hint = str_cat("; did you mean '", *nearest, "'?");
  } else {
    for (const std::string& n : names) hint += (hint.empty() ? "; valid presets: " : ", ") + n;
  }
  throw UsageError(str_cat("unknown model preset '", name, "'", hint));
}

}  // namespace albion::models
