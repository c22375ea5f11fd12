// File: tests/runtime/models/parameter_names_test.cpp
// Parameter names and shapes are the Hugging Face state-dict keys of the published checkpoints;
// every preset's tensors add up to parameter_count(); the weight-decay rule by name. Models are
// built on the meta device, so even the 70B preset costs no memory.
#include <gtest/gtest.h>

#include <map>

#include "runtime/base/error.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/model_config.h"

namespace albion::models {
namespace {

using Shapes = std::map<std::string, std::vector<std::int64_t>>;

ModelConfig preset_with_vocab(const std::string& name) {
  ModelConfig c = model_preset(name);
  if (c.vocab_size == 0) c.vocab_size = 50257;  // tiny: as a GPT-2 tokenizer would set it
  return c;
}

Shapes shapes_of(CausalLm& model) {
  Shapes out;
  for (const auto& [name, p] : model.named_parameters()) out[name] = p.sizes().vec();
  return out;
}

TEST(ParameterNames, Gpt2MatchesHuggingFaceKeys) {
  auto model = make_model(preset_with_vocab("gpt2"), at::kMeta);
  const Shapes s = shapes_of(*model);
  EXPECT_EQ(s.size(), 2u + 12u * 12u + 2u);
  EXPECT_EQ(s.at("transformer.wte.weight"), (std::vector<std::int64_t>{50257, 768}));
  EXPECT_EQ(s.at("transformer.wpe.weight"), (std::vector<std::int64_t>{1024, 768}));
  EXPECT_EQ(s.at("transformer.h.0.ln_1.weight"), (std::vector<std::int64_t>{768}));
  EXPECT_EQ(s.at("transformer.h.0.attn.c_attn.weight"), (std::vector<std::int64_t>{768, 2304}));
  EXPECT_EQ(s.at("transformer.h.0.attn.c_attn.bias"), (std::vector<std::int64_t>{2304}));
  EXPECT_EQ(s.at("transformer.h.5.attn.c_proj.weight"), (std::vector<std::int64_t>{768, 768}));
  EXPECT_EQ(s.at("transformer.h.11.ln_2.bias"), (std::vector<std::int64_t>{768}));
  EXPECT_EQ(s.at("transformer.h.11.mlp.c_fc.weight"), (std::vector<std::int64_t>{768, 3072}));
  EXPECT_EQ(s.at("transformer.h.11.mlp.c_proj.weight"), (std::vector<std::int64_t>{3072, 768}));
  EXPECT_EQ(s.at("transformer.ln_f.bias"), (std::vector<std::int64_t>{768}));
  EXPECT_EQ(s.count("lm_head.weight"), 0u);  // tied to transformer.wte.weight
  EXPECT_EQ(model->named_parameters().front().first, "transformer.wte.weight");
  EXPECT_EQ(parameter_count(model->config(), true), 124439808);
  EXPECT_EQ(parameter_count(model->config(), false), 123653376);
}

TEST(ParameterNames, Llama32MatchesHuggingFaceKeys) {
  auto model = make_model(model_preset("llama-3.2-1b"), at::kMeta);
  const Shapes s = shapes_of(*model);
  EXPECT_EQ(s.size(), 1u + 16u * 9u + 1u);
  EXPECT_EQ(s.at("model.embed_tokens.weight"), (std::vector<std::int64_t>{128256, 2048}));
  EXPECT_EQ(s.at("model.layers.0.self_attn.q_proj.weight"),
            (std::vector<std::int64_t>{2048, 2048}));
  EXPECT_EQ(s.at("model.layers.0.self_attn.k_proj.weight"), (std::vector<std::int64_t>{512, 2048}));
  EXPECT_EQ(s.at("model.layers.0.self_attn.v_proj.weight"), (std::vector<std::int64_t>{512, 2048}));
  EXPECT_EQ(s.at("model.layers.7.self_attn.o_proj.weight"),
            (std::vector<std::int64_t>{2048, 2048}));
  EXPECT_EQ(s.at("model.layers.15.mlp.gate_proj.weight"), (std::vector<std::int64_t>{8192, 2048}));
  EXPECT_EQ(s.at("model.layers.15.mlp.up_proj.weight"), (std::vector<std::int64_t>{8192, 2048}));
  EXPECT_EQ(s.at("model.layers.15.mlp.down_proj.weight"), (std::vector<std::int64_t>{2048, 8192}));
  EXPECT_EQ(s.at("model.layers.15.input_layernorm.weight"), (std::vector<std::int64_t>{2048}));
  EXPECT_EQ(s.at("model.layers.15.post_attention_layernorm.weight"),
            (std::vector<std::int64_t>{2048}));
  EXPECT_EQ(s.at("model.norm.weight"), (std::vector<std::int64_t>{2048}));
  EXPECT_EQ(s.count("lm_head.weight"), 0u);
  for (const auto& [name, shape] : s) {
    EXPECT_EQ(name.find(".bias"), std::string::npos) << name;
  }
}

TEST(ParameterNames, Llama31HasSeparateLmHead) {
  auto model = make_model(model_preset("llama-3.1-8b"), at::kMeta);
  const Shapes s = shapes_of(*model);
  EXPECT_EQ(s.size(), 1u + 32u * 9u + 1u + 1u);
  EXPECT_EQ(s.at("lm_head.weight"), (std::vector<std::int64_t>{128256, 4096}));
  EXPECT_EQ(s.at("model.layers.31.self_attn.k_proj.weight"),
            (std::vector<std::int64_t>{1024, 4096}));
  EXPECT_EQ(s.at("model.layers.31.mlp.down_proj.weight"), (std::vector<std::int64_t>{4096, 14336}));
}

TEST(ParameterNames, EveryPresetAddsUpToItsParameterCount) {
  const std::map<std::string, std::int64_t> published = {
      {"gpt2", 124439808},          {"gpt2-medium", 354823168},     {"gpt2-large", 774030080},
      {"gpt2-xl", 1557611200},      {"llama-3.2-1b", 1235814400},   {"llama-3.2-3b", 3212749824},
      {"llama-3.1-8b", 8030261248}, {"llama-3.1-70b", 70553706496}, {"qwen2.5-0.5b", 494032768},
      {"qwen2.5-1.5b", 1543714304}, {"qwen2.5-3b", 3085938688},     {"qwen2.5-7b", 7615616512},
      {"qwen2.5-14b", 14770033664}, {"qwen2.5-32b", 32763876352},   {"qwen2.5-72b", 72706203648},
  };
  for (const std::string& name : model_preset_names()) {
    const ModelConfig config = preset_with_vocab(name);
    auto model = make_model(config, at::kMeta);
    std::int64_t total = 0;
    for (const auto& [_, p] : model->named_parameters()) total += p.numel();
    EXPECT_EQ(total, parameter_count(config, true)) << name;
    if (published.count(name)) {
      EXPECT_EQ(total, published.at(name)) << name;
    }
  }
}

TEST(WeightDecay, MatricesOnly) {
  auto gpt2 = make_model(preset_with_vocab("tiny"), at::kMeta);
  EXPECT_TRUE(gpt2->is_weight_decayed("transformer.h.0.attn.c_attn.weight"));
  EXPECT_TRUE(gpt2->is_weight_decayed("transformer.h.3.mlp.c_proj.weight"));
  EXPECT_FALSE(gpt2->is_weight_decayed("transformer.h.0.attn.c_attn.bias"));
  EXPECT_FALSE(gpt2->is_weight_decayed("transformer.h.0.ln_1.weight"));
  EXPECT_FALSE(gpt2->is_weight_decayed("transformer.wte.weight"));
  EXPECT_FALSE(gpt2->is_weight_decayed("transformer.wpe.weight"));
  EXPECT_FALSE(gpt2->is_weight_decayed("lm_head.weight"));  // tied: the token embedding
  EXPECT_THROW(gpt2->is_weight_decayed("transformer.h.9.ln_1.weight"), Error);

  auto llama = make_model(model_preset("llama-3.1-8b"), at::kMeta);
  EXPECT_TRUE(llama->is_weight_decayed("lm_head.weight"));
  EXPECT_TRUE(llama->is_weight_decayed("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(llama->is_weight_decayed("model.layers.0.mlp.down_proj.weight"));
  EXPECT_FALSE(llama->is_weight_decayed("model.embed_tokens.weight"));
  EXPECT_FALSE(llama->is_weight_decayed("model.layers.0.input_layernorm.weight"));
  EXPECT_FALSE(llama->is_weight_decayed("model.norm.weight"));
}

}  // namespace
}  // namespace albion::models
