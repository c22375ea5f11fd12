// File: tests/runtime/models/bf16_inference_test.cpp
// Note [Inference in the training's precision] (runtime/models/bf16_inference.h), under bf16
// autocast on the CPU: a model held for inference (linear weights stored in bf16, nothing
// trainable) draws, scores and computes bit for bit what the model the trainer holds computes
// under autocast (fp32 weights cast by autocast, a LoRA base held in bf16 beside fp32 adapters);
// a tied head's table stays fp32 and is cast once for a whole generation, an untied head never.
#include <gtest/gtest.h>

#include <ATen/record_function.h>
#include <torch/types.h>

#include "kernels/common/autocast_scope.h"
#include "runtime/models/bf16_inference.h"
#include "runtime/models/lora.h"
#include "runtime/models/sampler.h"
#include "tests/runtime/models/model_test_support.h"

namespace albion::models {
namespace {

struct Variant {
  const char* name;
  ModelConfig config;
  bool lora;
};

class Bf16Inference : public ::testing::TestWithParam<Variant> {
 protected:
  const ModelConfig& config() const { return GetParam().config; }

  // The model as the trainer holds it at a step, in fp32: all of it trainable, or LoRA's frozen
  // base held in bf16 beside trained adapters. The same weights on every call.
  std::shared_ptr<CausalLm> trained() const {
    const std::shared_ptr<CausalLm> lm = testing::randomised_fp64_model(config(), 11);
    lm->to(at::kFloat);
    if (GetParam().lora) {
      add_lora_adapters(*lm, {4, 8, {"all-linear"}});
      at::manual_seed(5);
      torch::NoGradGuard no_grad;
      for (auto& [name, p] : lm->trainable_parameters()) p.normal_(0.0, 0.3);
      hold_frozen_weights_in_bf16(*lm);
    }
    return lm;
  }

  at::Tensor ids() const {
    at::manual_seed(7);
    return at::randint(config().vocab_size, {2, config().context_length}, at::kLong);
  }
};

std::string variant_name(const ::testing::TestParamInfo<Variant>& info) { return info.param.name; }
void PrintTo(const Variant& variant, std::ostream* out) { *out << variant.name; }

TEST_P(Bf16Inference, DrawsAndScoresWhatTheTrainersModelDoesUnderAutocast) {
  const std::shared_ptr<CausalLm> cast = trained();
  const std::shared_ptr<CausalLm> held = trained();
  const std::int64_t freed = hold_for_bf16_inference(*held);

  std::int64_t bf16_elements = 0;
  std::int64_t fp32_linear_elements = 0;  // in the trainer's model
  const auto cast_parameters = cast->named_parameters();
  const auto held_parameters = held->named_parameters();
  ASSERT_EQ(held_parameters.size(), cast_parameters.size());
  for (std::size_t i = 0; i < held_parameters.size(); ++i) {
    const auto& [name, p] = held_parameters[i];
    bool linear = p.dim() == 2;  // a linear layer's matrix, unless one of these
    for (const char* other : {"lora_", "wte", "wpe", "embed_tokens"}) {
      linear = linear && name.find(other) == std::string::npos;
    }
    EXPECT_EQ(p.scalar_type(), linear ? at::kBFloat16 : at::kFloat) << name;
    if (linear) bf16_elements += p.numel();
    if (linear && cast_parameters[i].second.scalar_type() == at::kFloat) fp32_linear_elements += p.numel();
    // Only a tied head's table keeps requiring a gradient (Note: so that autocast keeps its cast).
    EXPECT_EQ(p.requires_grad(), config().tie_embeddings && p.is_same(held->output_weight())) << name;
  }
  EXPECT_GT(bf16_elements, 0);
  EXPECT_EQ(freed, 2 * fp32_linear_elements);  // a LoRA base was bf16 already

  const kernels::Bf16AutocastScope autocast(at::kCPU);
  const at::Tensor input = ids();
  torch::NoGradGuard no_grad;
  const EvalModeScope cast_eval(*cast);
  const EvalModeScope held_eval(*held);
  EXPECT_TRUE(at::equal(held->forward(input), cast->forward(input)));
  EXPECT_TRUE(at::equal(held->loss(input, input), cast->loss(input, input)));  // as `albion eval` scores

  SamplingOptions options;  // as the trainer draws its sample, and `albion generate` by default
  options.max_new_tokens = 30;  // past the context: the window slides
  options.top_k = 8;
  options.temperature = 1.5;
  options.seed = 3;
  const std::vector<std::int64_t> prompt = {5, 1, 42, 17};
  const std::vector<std::int64_t> drawn = sample(*cast, prompt, options);
  EXPECT_EQ(sample(*held, prompt, options), drawn);
  ASSERT_EQ(drawn.size(), 30u);
  options.decoding = Decoding::kGreedy;
  EXPECT_EQ(sample(*held, prompt, options), sample(*cast, prompt, options));
}

// Casts of the tied head's [vocab, hidden] table, counted by the callback below.
std::int64_t g_table_casts = 0;
c10::IntArrayRef g_table_sizes;

std::unique_ptr<at::ObserverContext> count_table_casts(const at::RecordFunction& fn) {
  if (std::string_view(fn.name()) != "aten::_to_copy") return nullptr;
  const auto inputs = fn.inputs();
  if (!inputs.empty() && inputs[0].isTensor() && inputs[0].toTensor().sizes() == g_table_sizes) ++g_table_casts;
  return nullptr;
}

TEST_P(Bf16Inference, CastsATiedHeadsTableOncePerGeneration) {
  const std::shared_ptr<CausalLm> held = trained();
  hold_for_bf16_inference(*held);
  const std::vector<int64_t> table_sizes = held->output_weight().sizes().vec();
  g_table_sizes = table_sizes;
  const at::CallbackHandle handle =
      at::addThreadLocalCallback(at::RecordFunctionCallback(count_table_casts).needsInputs(true));
  SamplingOptions options;
  options.decoding = Decoding::kGreedy;
  options.max_new_tokens = 12;  // 12 forwards: the prompt's, then one per token drawn but the last
  const auto casts_in_one_generation = [&] {
    g_table_casts = 0;
    const kernels::Bf16AutocastScope autocast(at::kCPU);
    sample(*held, {5, 1, 42}, options);
    return g_table_casts;
  };
  if (config().tie_embeddings) {
    EXPECT_EQ(casts_in_one_generation(), 1);
    held->output_weight().set_requires_grad(false);  // as frozen: autocast does not keep the cast
    EXPECT_EQ(casts_in_one_generation(), 12);
  } else {
    EXPECT_EQ(casts_in_one_generation(), 0);  // held in bf16
  }
  at::removeCallback(handle);
}

INSTANTIATE_TEST_SUITE_P(Models, Bf16Inference,
                         ::testing::Values(Variant{"Gpt2", testing::small_gpt2(), false},
                                           Variant{"LlamaTied", testing::small_llama(true), false},
                                           Variant{"LlamaUntied", testing::small_llama(false), false},
                                           Variant{"LlamaLora", testing::small_llama(false), true}),
                         variant_name);

}  // namespace
}  // namespace albion::models
