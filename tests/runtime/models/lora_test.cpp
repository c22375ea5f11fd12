// File: tests/runtime/models/lora_test.cpp
// LoRA adapters (runtime/models/lora.h) on GPT-2 (Conv1d layers, stored transposed) and Llama:
// an adapted model starts as its base exactly, computes what its merged weights compute, trains
// its adapters only, and adapts exactly the layers its targets name.
#include <gtest/gtest.h>

#include <torch/types.h>

#include "kernels/common/autocast_scope.h"
#include "runtime/base/error.h"
#include "runtime/models/lora.h"
#include "tests/runtime/models/model_test_support.h"

namespace albion::models {
namespace {

using testing::relative_error;
using testing::usage_error_of;

class LoraModel : public ::testing::TestWithParam<const char*> {
 protected:
  bool gpt2() const { return std::string(GetParam()) == "gpt2"; }
  ModelConfig config() const { return gpt2() ? testing::small_gpt2() : testing::small_llama(false); }
  std::shared_ptr<CausalLm> base() const { return testing::randomised_fp64_model(config(), 11); }
  at::Tensor ids() const { return at::randint(config().vocab_size, {2, config().context_length}, at::kLong); }
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, at::Tensor>>& parameters) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : parameters) names.push_back(name);
  return names;
}

TEST_P(LoraModel, StartsAsTheBaseModelExactly) {
  const std::shared_ptr<CausalLm> lm = base();
  const at::Tensor input = ids();
  torch::NoGradGuard no_grad;
  const at::Tensor before = lm->forward(input);
  add_lora_adapters(*lm, {4, 8, {"all-linear"}});
  EXPECT_TRUE(at::equal(lm->forward(input), before));
}

TEST_P(LoraModel, MergedWeightsComputeTheAdaptedModel) {
  const std::shared_ptr<CausalLm> lm = base();
  add_lora_adapters(*lm, {4, 8, {"all-linear"}});
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : lm->trainable_parameters()) p.normal_(0.0, 0.3);  // B too: a trained adapter
  const at::Tensor input = ids();
  const at::Tensor adapted = lm->forward(input);
  const std::shared_ptr<CausalLm> merged = base();
  ASSERT_GT(relative_error(merged->forward(input), adapted), 1e-3);  // the adapters do change it
  const auto weights = merged_parameters(*lm);
  const auto plain = merged->named_parameters();
  ASSERT_EQ(names_of(weights), names_of(plain));  // no lora_A / lora_B, the base's order
  for (std::size_t i = 0; i < plain.size(); ++i) plain[i].second.copy_(weights[i].second);
  EXPECT_LT(relative_error(merged->forward(input), adapted), 1e-12);
}

TEST_P(LoraModel, TrainsTheAdaptersOnly) {
  const std::shared_ptr<CausalLm> lm = base();
  const std::vector<std::string> adapted = add_lora_adapters(*lm, {4, 8, {"all-linear"}});
  const std::int64_t per_layer = gpt2() ? 4 : 7;  // c_attn, attn.c_proj, c_fc, mlp.c_proj / q k v o gate up down
  ASSERT_EQ(static_cast<std::int64_t>(adapted.size()), per_layer * config().layers);
  for (const std::string& path : adapted) EXPECT_EQ(path.find("lm_head"), std::string::npos);

  const auto trainable = lm->trainable_parameters();
  ASSERT_EQ(trainable.size(), 2 * adapted.size());
  for (std::size_t i = 0; i < adapted.size(); ++i) {
    EXPECT_EQ(trainable[2 * i].first, adapted[i] + ".lora_A.weight");
    EXPECT_EQ(trainable[2 * i + 1].first, adapted[i] + ".lora_B.weight");
    const at::Tensor& a = trainable[2 * i].second;
    const at::Tensor& b = trainable[2 * i + 1].second;
    EXPECT_EQ(a.size(0), 4);
    EXPECT_EQ(b.size(1), 4);
    EXPECT_LE(a.abs().max().item<double>(), 1.0 / std::sqrt(static_cast<double>(a.size(1))));  // PEFT's bound
    EXPECT_TRUE(at::equal(b, at::zeros_like(b)));
    EXPECT_TRUE(lm->is_weight_decayed(trainable[2 * i].first));
  }

  const at::Tensor input = ids();
  lm->loss(input, input).backward();
  for (auto& [name, p] : lm->named_parameters()) {
    const bool adapter = name.find(".lora_") != std::string::npos;
    EXPECT_EQ(p.grad().defined(), adapter) << name;
    // With B = 0 the first gradient reaches B only: A's is zero until B moves.
    if (name.ends_with("lora_B.weight")) {
      EXPECT_GT(p.grad().abs().max().item<double>(), 0) << name;
    } else if (name.ends_with("lora_A.weight")) {
      EXPECT_EQ(p.grad().abs().max().item<double>(), 0) << name;
    }
  }
}

// Note [A frozen base held in bf16]: under bf16 autocast (on the CPU here) a model whose frozen
// linear weights are stored in bf16 computes the loss and the adapters' gradients of the model
// that autocast casts them for, bit for bit; outside autocast it computes what the fp32 model with
// the base rounded to bf16 computes; its merged weights are fp32. Only the frozen linear layers
// change, Llama's untied head included (not the embeddings, the norms or the adapters).
TEST_P(LoraModel, AFrozenBaseHeldInBf16ComputesWhatAutocastComputed) {
  const auto adapted_fp32 = [&] {
    const std::shared_ptr<CausalLm> lm = base();
    lm->to(at::kFloat);
    add_lora_adapters(*lm, {4, 8, {"all-linear"}});
    at::manual_seed(5);
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : lm->trainable_parameters()) p.normal_(0.0, 0.3);  // B too: a trained adapter
    return lm;
  };
  const std::shared_ptr<CausalLm> cast = adapted_fp32();
  const std::shared_ptr<CausalLm> held = adapted_fp32();
  const std::int64_t freed = hold_frozen_weights_in_bf16(*held);
  std::int64_t bf16_elements = 0;
  for (const auto& [name, p] : held->named_parameters()) {
    bool base_matrix = p.dim() == 2;  // a linear layer's, unless one of these
    for (const char* other : {"lora_", "wte", "wpe", "embed_tokens"}) {
      base_matrix = base_matrix && name.find(other) == std::string::npos;
    }
    EXPECT_EQ(p.scalar_type(), base_matrix ? at::kBFloat16 : at::kFloat) << name;
    if (base_matrix) bf16_elements += p.numel();
  }
  EXPECT_EQ(freed, 2 * bf16_elements);
  EXPECT_GT(bf16_elements, 0);

  const at::Tensor input = ids();
  const auto loss_and_adapter_gradients = [&](CausalLm& lm) {
    at::Tensor loss;
    {
      const kernels::Bf16AutocastScope autocast(at::kCPU);
      loss = lm.loss(input, input);
    }
    loss.backward();
    std::vector<at::Tensor> out = {loss.detach()};
    for (auto& [name, p] : lm.trainable_parameters()) out.push_back(p.grad());
    return out;
  };
  const std::vector<at::Tensor> expected = loss_and_adapter_gradients(*cast);
  const std::vector<at::Tensor> actual = loss_and_adapter_gradients(*held);
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(at::equal(actual[i], expected[i])) << i;

  // Outside autocast: the fp32 model with its frozen matrices rounded to bf16.
  torch::NoGradGuard no_grad;
  const auto held_parameters = held->named_parameters();
  const auto cast_parameters = cast->named_parameters();
  for (std::size_t i = 0; i < cast_parameters.size(); ++i) {
    const at::Tensor& p = cast_parameters[i].second;
    if (held_parameters[i].second.scalar_type() == at::kBFloat16) p.copy_(p.to(at::kBFloat16));
  }
  EXPECT_TRUE(at::equal(held->forward(input), cast->forward(input)));
  const auto merged = merged_parameters(*held);
  const auto expected_merged = merged_parameters(*cast);
  for (std::size_t i = 0; i < merged.size(); ++i) {
    EXPECT_TRUE(at::equal(merged[i].second.to(at::kFloat), expected_merged[i].second)) << merged[i].first;
  }
}

// lora.dropout: in training mode the adapters see a dropped-out input (so two forwards differ and
// the base's share does not); in eval mode none, as without dropout.
TEST_P(LoraModel, DropoutActsInTrainingModeOnly) {
  const at::Tensor input = ids();
  const std::shared_ptr<CausalLm> plain = base();
  add_lora_adapters(*plain, {4, 8, {"all-linear"}, 0.0});
  const std::shared_ptr<CausalLm> dropped = base();
  add_lora_adapters(*dropped, {4, 8, {"all-linear"}, 0.5});
  torch::NoGradGuard no_grad;
  const auto p = plain->trainable_parameters();
  const auto d = dropped->trainable_parameters();
  at::manual_seed(3);
  for (std::size_t i = 0; i < p.size(); ++i) d[i].second.copy_(p[i].second.normal_(0.0, 0.3));
  const at::Tensor expected = plain->forward(input);
  {
    const EvalModeScope eval_mode(*dropped);
    EXPECT_LT(relative_error(dropped->forward(input), expected), 1e-12);
  }
  EXPECT_TRUE(dropped->is_training());  // restored
  const at::Tensor first = dropped->forward(input);
  EXPECT_GT(relative_error(first, expected), 1e-3);
  EXPECT_GT(relative_error(dropped->forward(input), first), 1e-3);  // a fresh mask each time
  EXPECT_NE(usage_error_of([&] { add_lora_adapters(*base(), {4, 8, {"all-linear"}, 1.0}); }).find("dropout"),
            std::string::npos);
}

TEST_P(LoraModel, AdaptsTheLayersItsTargetsName) {
  const std::vector<std::string> targets = gpt2() ? std::vector<std::string>{"attn.c_proj"}
                                                  : std::vector<std::string>{"q_proj", "v_proj"};
  const std::vector<std::string> adapted = add_lora_adapters(*base(), {2, 4, targets});
  const std::vector<std::string> expected =
      gpt2() ? std::vector<std::string>{"transformer.h.0.attn.c_proj", "transformer.h.1.attn.c_proj"}
             : std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                        "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"};
  EXPECT_EQ(adapted, expected);
  if (gpt2()) {
    EXPECT_EQ(add_lora_adapters(*base(), {2, 4, {"c_proj"}}).size(), 4u);  // attention's and MLP's
  }

  // A target must name a linear layer by whole path components; the output head is never adapted.
  for (const char* wrong : {"proj", "mlp", "lm_head", "q_porj"}) {
    const std::string message = usage_error_of([&] { add_lora_adapters(*base(), {2, 4, {wrong}}); });
    EXPECT_NE(message.find("LoRA target '" + std::string(wrong) + "' names no linear layer"), std::string::npos) << message;
    EXPECT_NE(message.find(gpt2() ? "c_attn" : "q_proj"), std::string::npos) << message;  // what there is
  }
  EXPECT_NE(usage_error_of([&] { add_lora_adapters(*base(), {0, 4, {"all-linear"}}); }).find("rank"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Architectures, LoraModel, ::testing::Values("gpt2", "llama"));

}  // namespace
}  // namespace albion::models
