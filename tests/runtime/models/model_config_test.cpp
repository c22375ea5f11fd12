// File: tests/runtime/models/model_config_test.cpp
// Presets carry the published hyper-parameters; bad configs fail with a UsageError naming the
// field; the FLOP count follows the documented formula.
#include <gtest/gtest.h>

#include <functional>

#include "runtime/base/error.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/model_config.h"
#include "tests/runtime/models/model_test_support.h"

namespace albion::models {
namespace {

using testing::usage_error_of;

ModelConfig valid_gpt2() {
  ModelConfig c = model_preset("tiny");
  c.vocab_size = 256;
  return c;
}

TEST(ModelPreset, PublishedHyperParameters) {
  const ModelConfig g = model_preset("gpt2-xl");
  EXPECT_EQ(g.architecture, Architecture::kGpt2);
  EXPECT_EQ(g.hidden_size, 1600);
  EXPECT_EQ(g.layers, 48);
  EXPECT_EQ(g.heads, 25);
  EXPECT_EQ(g.intermediate_size, 6400);
  EXPECT_TRUE(g.tie_embeddings);

  const ModelConfig l = model_preset("llama-3.1-70b");
  EXPECT_EQ(l.architecture, Architecture::kLlama);
  EXPECT_EQ(l.vocab_size, 128256);
  EXPECT_EQ(l.kv_heads, 8);
  EXPECT_EQ(l.head_dim(), 128);
  EXPECT_EQ(l.rope_theta, 500000.0);
  ASSERT_TRUE(l.rope_scaling.has_value());
  EXPECT_EQ(l.rope_scaling->factor, 8.0);
  EXPECT_EQ(l.rope_scaling->original_max_position, 8192);
  EXPECT_FALSE(l.tie_embeddings);

  const ModelConfig qwen = model_preset("qwen2.5-0.5b");
  EXPECT_EQ(qwen.architecture, Architecture::kLlama);
  EXPECT_TRUE(qwen.attention_bias);
  EXPECT_EQ(qwen.head_dim(), 64);
  EXPECT_EQ(qwen.kv_heads, 2);
  EXPECT_EQ(qwen.vocab_size, 151936);
  EXPECT_FALSE(qwen.rope_scaling.has_value());
  EXPECT_EQ(qwen.norm_eps, 1e-6);
  EXPECT_TRUE(qwen.tie_embeddings);
  EXPECT_EQ(std::string(hugging_face_model_type(qwen)), "qwen2");

  const ModelConfig s = model_preset("llama-3.2-3b");
  EXPECT_EQ(s.rope_scaling->factor, 32.0);
  EXPECT_EQ(s.rope_scaling->high_freq_factor, 4.0);
  EXPECT_TRUE(s.tie_embeddings);

  EXPECT_EQ(model_preset("tiny").vocab_size, 0);
  for (const std::string& name : model_preset_names()) {
    ModelConfig c = model_preset(name);
    if (c.vocab_size == 0) c.vocab_size = 1000;
    EXPECT_NO_THROW(c.validate()) << name;
  }
}

TEST(ModelPreset, UnknownNameSuggestsNearest) {
  const std::string message = usage_error_of([] { model_preset("llama-3.2-1B"); });
  EXPECT_NE(message.find("unknown model preset 'llama-3.2-1B'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'llama-3.2-1b'"), std::string::npos) << message;
  const std::string far = usage_error_of([] { model_preset("mixtral"); });
  EXPECT_NE(far.find("gpt2-medium"), std::string::npos) << far;
}

TEST(ModelConfigValidate, NamesTheOffendingField) {
  auto error_for = [](const std::function<void(ModelConfig&)>& edit) {
    ModelConfig c = valid_gpt2();
    edit(c);
    return usage_error_of([&] { c.validate(); });
  };
  EXPECT_NE(error_for([](ModelConfig& c) {
              c.heads = 3;
            }).find("'heads' = 3 must divide 'hidden_size' = 128"),
            std::string::npos);
  EXPECT_NE(error_for([](ModelConfig& c) { c.vocab_size = 0; }).find("'vocab_size'"),
            std::string::npos);
  EXPECT_NE(error_for([](ModelConfig& c) { c.layers = -1; }).find("'layers' must be positive"),
            std::string::npos);
  EXPECT_NE(
      error_for([](ModelConfig& c) { c.kv_heads = 2; }).find("'kv_heads' = 2 must equal 'heads'"),
      std::string::npos);

  ModelConfig llama = model_preset("llama-3.2-1b");
  llama.kv_heads = 5;
  EXPECT_NE(
      usage_error_of([&] { llama.validate(); }).find("'kv_heads' = 5 must divide 'heads' = 32"),
      std::string::npos);
  llama.kv_heads = 8;
  llama.rope_scaling->high_freq_factor = 1.0;
  EXPECT_NE(usage_error_of([&] { llama.validate(); }).find("'rope_scaling.high_freq_factor'"),
            std::string::npos);
  llama = model_preset("llama-3.2-1b");
  llama.hidden_size = 32 * 3;  // head_dim 3: RoPE needs pairs
  EXPECT_NE(usage_error_of([&] { llama.validate(); }).find("odd head dimension"),
            std::string::npos);

  ModelConfig bad = valid_gpt2();
  bad.heads = 3;
  EXPECT_THROW(make_model(bad), UsageError);
}

TEST(TrainingFlops, PalmConvention) {
  const ModelConfig g = model_preset("gpt2");
  EXPECT_DOUBLE_EQ(training_flops_per_token(g, 1024), 6.0 * 123653376 + 12.0 * 12 * 768 * 1024);
  const ModelConfig l = model_preset("llama-3.1-8b");
  // Non-embedding: everything but embed_tokens; the untied lm_head counts.
  EXPECT_EQ(parameter_count(l, false), 8030261248 - 128256LL * 4096);
  // Qwen2.5 7B as Qwen publishes it: 7.61B parameters, 6.53B without the embeddings (q, k, v biases
  // included).
  const ModelConfig q = model_preset("qwen2.5-7b");
  EXPECT_EQ(parameter_count(q, true), 7615616512);
  EXPECT_EQ(parameter_count(q, true) - parameter_count(q, false), 152064LL * 3584);
}

}  // namespace
}  // namespace albion::models
