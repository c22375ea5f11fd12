// File: tests/runtime/models/reference_forward_test.cpp
// Each architecture's forward against the same model written out as plain tensor algebra here
// (explicit norms, GELU/SiLU formulas, masked softmax attention, per-pair rotations, head
// repetition), in fp64 on CPU, within 1e-10 relative.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>

#include "runtime/models/causal_lm.h"
#include "tests/runtime/models/model_test_support.h"

namespace albion::models {
namespace {

using testing::parameter_map;
using testing::relative_error;
using Params = std::map<std::string, at::Tensor>;

at::Tensor ref_lookup(const at::Tensor& table, const at::Tensor& ids) {
  return table.index_select(0, ids.reshape({-1})).view({ids.size(0), ids.size(1), table.size(1)});
}

at::Tensor ref_layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                          double eps) {
  const at::Tensor centred = x - x.mean(-1, true);
  return centred / (centred.pow(2).mean(-1, true) + eps).sqrt() * w + b;
}

at::Tensor ref_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  return x / (x.pow(2).mean(-1, true) + eps).sqrt() * w;
}

at::Tensor ref_gelu_tanh(const at::Tensor& x) {
  return 0.5 * x * (1.0 + (std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x.pow(3))).tanh());
}

at::Tensor ref_silu(const at::Tensor& x) { return x / (1.0 + (-x).exp()); }

// q: [B, h, T, d]; k, v: [B, h, T, d]; softmax(q k^T / sqrt(d) with future keys at -inf) v.
at::Tensor ref_causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const std::int64_t t = q.size(2);
  at::Tensor scores = q.matmul(k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(3)));
  const at::Tensor future = at::ones({t, t}, at::kBool).triu(1);
  scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
  return scores.softmax(-1).matmul(v);
}

at::Tensor ref_split_heads(const at::Tensor& x,
                           std::int64_t heads) {  // [B, T, h*d] -> [B, h, T, d]
  return x.view({x.size(0), x.size(1), heads, -1}).permute({0, 2, 1, 3});
}

at::Tensor ref_merge_heads(const at::Tensor& x) {  // [B, h, T, d] -> [B, T, h*d]
  return x.permute({0, 2, 1, 3}).reshape({x.size(0), x.size(2), -1});
}

at::Tensor reference_gpt2(Params& p, const ModelConfig& c, const at::Tensor& ids) {
  const std::int64_t t = ids.size(1);
  at::Tensor x = ref_lookup(p["transformer.wte.weight"], ids) +
                 p["transformer.wpe.weight"].narrow(0, 0, t).unsqueeze(0);
  for (std::int64_t i = 0; i < c.layers; ++i) {
    const std::string l = "transformer.h." + std::to_string(i) + ".";
    const at::Tensor a = ref_layer_norm(x, p[l + "ln_1.weight"], p[l + "ln_1.bias"], c.norm_eps);
    const at::Tensor qkv = a.matmul(p[l + "attn.c_attn.weight"]) + p[l + "attn.c_attn.bias"];
    const std::int64_t h = c.hidden_size;
    const at::Tensor y = ref_causal_attention(ref_split_heads(qkv.narrow(-1, 0, h), c.heads),
                                              ref_split_heads(qkv.narrow(-1, h, h), c.heads),
                                              ref_split_heads(qkv.narrow(-1, 2 * h, h), c.heads));
    x = x + ref_merge_heads(y).matmul(p[l + "attn.c_proj.weight"]) + p[l + "attn.c_proj.bias"];
    const at::Tensor m = ref_layer_norm(x, p[l + "ln_2.weight"], p[l + "ln_2.bias"], c.norm_eps);
    const at::Tensor f = ref_gelu_tanh(m.matmul(p[l + "mlp.c_fc.weight"]) + p[l + "mlp.c_fc.bias"]);
    x = x + f.matmul(p[l + "mlp.c_proj.weight"]) + p[l + "mlp.c_proj.bias"];
  }
  x = ref_layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], c.norm_eps);
  return x.matmul(p["transformer.wte.weight"].t());
}

// Meta's published llama3 scaling, one frequency at a time.
std::vector<double> llama3_inverse_frequencies(const ModelConfig& c) {
  const std::int64_t d = c.head_dim();
  std::vector<double> out;
  for (std::int64_t i = 0; i < d; i += 2) {
    const double freq =
        1.0 / std::pow(c.rope_theta, static_cast<double>(i) / static_cast<double>(d));
    const RopeScaling& s = *c.rope_scaling;
    const double wavelen = 2 * std::numbers::pi / freq;
    const double low_freq_wavelen =
        static_cast<double>(s.original_max_position) / s.low_freq_factor;
    const double high_freq_wavelen =
        static_cast<double>(s.original_max_position) / s.high_freq_factor;
    if (wavelen < high_freq_wavelen) {
      out.push_back(freq);
    } else if (wavelen > low_freq_wavelen) {
      out.push_back(freq / s.factor);
    } else {
      const double smooth =
          (static_cast<double>(s.original_max_position) / wavelen - s.low_freq_factor) /
          (s.high_freq_factor - s.low_freq_factor);
      out.push_back((1 - smooth) * freq / s.factor + smooth * freq);
    }
  }
  return out;
}

// x: [B, h, T, d]; pair (x[i], x[i + d/2]) at position t turns by angle t * f[i].
at::Tensor rotate_pairs(const at::Tensor& x, const std::vector<double>& inv_freq) {
  const std::int64_t half = x.size(3) / 2;
  const at::Tensor positions = at::arange(x.size(2), at::kDouble).unsqueeze(1);
  const at::Tensor angles = positions * at::tensor(inv_freq, at::kDouble).unsqueeze(0);  // [T, d/2]
  const at::Tensor x1 = x.narrow(3, 0, half), x2 = x.narrow(3, half, half);
  return at::cat({x1 * angles.cos() - x2 * angles.sin(), x2 * angles.cos() + x1 * angles.sin()}, 3);
}

at::Tensor reference_llama(Params& p, const ModelConfig& c, const at::Tensor& ids) {
  const std::vector<double> inv_freq = llama3_inverse_frequencies(c);
  const std::int64_t group = c.heads / c.kv_heads;
  const at::Tensor kv_of_head = at::arange(c.heads, at::kLong).div(group, "floor");
  at::Tensor x = ref_lookup(p["model.embed_tokens.weight"], ids);
  for (std::int64_t i = 0; i < c.layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    const at::Tensor a = ref_rms_norm(x, p[l + "input_layernorm.weight"], c.norm_eps);
    const at::Tensor q = rotate_pairs(
        ref_split_heads(a.matmul(p[l + "self_attn.q_proj.weight"].t()), c.heads), inv_freq);
    const at::Tensor k = rotate_pairs(
        ref_split_heads(a.matmul(p[l + "self_attn.k_proj.weight"].t()), c.kv_heads), inv_freq);
    const at::Tensor v =
        ref_split_heads(a.matmul(p[l + "self_attn.v_proj.weight"].t()), c.kv_heads);
    const at::Tensor y =
        ref_causal_attention(q, k.index_select(1, kv_of_head), v.index_select(1, kv_of_head));
    x = x + ref_merge_heads(y).matmul(p[l + "self_attn.o_proj.weight"].t());
    const at::Tensor m = ref_rms_norm(x, p[l + "post_attention_layernorm.weight"], c.norm_eps);
    const at::Tensor gated = ref_silu(m.matmul(p[l + "mlp.gate_proj.weight"].t())) *
                             m.matmul(p[l + "mlp.up_proj.weight"].t());
    x = x + gated.matmul(p[l + "mlp.down_proj.weight"].t());
  }
  x = ref_rms_norm(x, p["model.norm.weight"], c.norm_eps);
  const at::Tensor& head = c.tie_embeddings ? p["model.embed_tokens.weight"] : p["lm_head.weight"];
  return x.matmul(head.t());
}

at::Tensor random_ids(const ModelConfig& c, std::int64_t batch, std::int64_t length) {
  return at::randint(c.vocab_size, {batch, length}, at::kLong);
}

TEST(ReferenceForward, Gpt2MatchesPlainTorchOps) {
  const ModelConfig config = testing::small_gpt2();
  auto model = testing::randomised_fp64_model(config, 1);
  Params params = parameter_map(*model);
  const at::Tensor ids = random_ids(config, 2, 13);
  const at::Tensor logits = model->forward(ids);
  ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{2, 13, config.vocab_size}));
  ASSERT_EQ(logits.scalar_type(), at::kDouble);
  EXPECT_LT(relative_error(logits, reference_gpt2(params, config, ids)), 1e-10);
}

TEST(ReferenceForward, LlamaMatchesPlainTorchOps) {
  for (bool tie : {false, true}) {
    const ModelConfig config = testing::small_llama(tie);
    auto model = testing::randomised_fp64_model(config, 2);
    Params params = parameter_map(*model);
    const at::Tensor ids = random_ids(config, 2, config.context_length);
    const at::Tensor logits = model->forward(ids);
    ASSERT_EQ(logits.sizes(),
              (std::vector<std::int64_t>{2, config.context_length, config.vocab_size}));
    EXPECT_LT(relative_error(logits, reference_llama(params, config, ids)), 1e-10) << "tie " << tie;
  }
}

TEST(ReferenceForward, LaterTokensDoNotChangeEarlierLogits) {
  for (const ModelConfig& config : {testing::small_gpt2(), testing::small_llama(false)}) {
    auto model = testing::randomised_fp64_model(config, 3);
    const at::Tensor ids = random_ids(config, 1, 16);
    at::Tensor changed = ids.clone();
    changed[0][9] = (ids[0][9].item<std::int64_t>() + 1) % config.vocab_size;
    const at::Tensor a = model->forward(ids), b = model->forward(changed);
    EXPECT_TRUE(at::allclose(a.narrow(1, 0, 9), b.narrow(1, 0, 9), 0.0, 1e-12))
        << architecture_name(config.architecture);
    EXPECT_GT((a.narrow(1, 9, 7) - b.narrow(1, 9, 7)).abs().min().item<double>(), 0.0)
        << architecture_name(config.architecture);
  }
}

TEST(Loss, MaskedMeanOfTokenCrossEntropy) {
  for (const ModelConfig& config : {testing::small_gpt2(), testing::small_llama(true)}) {
    auto model = testing::randomised_fp64_model(config, 4);
    const at::Tensor ids = random_ids(config, 2, 10);
    const at::Tensor targets = random_ids(config, 2, 10);
    at::Tensor mask = at::zeros({2, 10}, at::kLong);
    mask[0].narrow(0, 3, 5).fill_(1);
    mask[1][9] = 1;
    // Masked-out targets may hold anything, e.g. a padding id outside the vocabulary.
    const at::Tensor padded_targets = at::where(mask == 1, targets, -1);

    const at::Tensor log_probs = model->forward(ids).log_softmax(-1);
    const at::Tensor token_ce = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
    const double expected = (token_ce * mask).sum().item<double>() / 6.0;
    const at::Tensor loss = model->loss(ids, padded_targets, mask);
    EXPECT_EQ(loss.dim(), 0);
    EXPECT_NEAR(loss.item<double>(), expected, 1e-12);
    EXPECT_NEAR(model->loss(ids, targets, {}).item<double>(), token_ce.mean().item<double>(),
                1e-12);
    EXPECT_EQ(model->loss(ids, targets, at::zeros({2, 10}, at::kLong)).item<double>(), 0.0);
  }
}

TEST(Loss, Fp32ModelGivesFp32LossAndFiniteGradients) {
  for (const ModelConfig& config : {testing::small_gpt2(), testing::small_llama(false)}) {
    at::manual_seed(5);
    auto model = make_model(config);
    const at::Tensor ids = random_ids(config, 2, 12);
    const at::Tensor loss = model->loss(ids, ids.roll(-1, 1), at::ones({2, 12}, at::kFloat));
    EXPECT_EQ(loss.scalar_type(), at::kFloat);
    // A fresh model predicts nearly uniformly.
    EXPECT_NEAR(loss.item<double>(), std::log(static_cast<double>(config.vocab_size)), 0.1);
    loss.backward();
    for (const auto& [name, p] : model->named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << name;
      EXPECT_TRUE(p.grad().isfinite().all().item<bool>()) << name;
      EXPECT_GT(p.grad().abs().sum().item<double>(), 0.0) << name;
    }
  }
}

TEST(Init, SeededGpt2StyleInitialisation) {
  ModelConfig config = testing::small_llama(false);
  config.layers = 8;
  at::manual_seed(6);
  auto a = make_model(config);
  at::manual_seed(6);
  auto b = make_model(config);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(at::equal(pa[i].second, pb[i].second));

  Params p = parameter_map(*a);
  EXPECT_TRUE(at::equal(p["model.norm.weight"], at::ones_like(p["model.norm.weight"])));
  EXPECT_NEAR(p["lm_head.weight"].std().item<double>(), 0.02, 0.001);
  EXPECT_NEAR(p["model.layers.3.mlp.up_proj.weight"].std().item<double>(), 0.02, 0.001);
  EXPECT_NEAR(p["model.layers.3.mlp.down_proj.weight"].std().item<double>(), 0.02 / 4.0, 0.0002);
  EXPECT_NEAR(p["model.layers.3.self_attn.o_proj.weight"].std().item<double>(), 0.02 / 4.0, 0.0005);

  ModelConfig gpt = testing::small_gpt2();
  gpt.layers = 8;
  Params g = parameter_map(*make_model(gpt));
  EXPECT_TRUE(at::equal(g["transformer.h.0.attn.c_attn.bias"],
                        at::zeros_like(g["transformer.h.0.attn.c_attn.bias"])));
  EXPECT_NEAR(g["transformer.h.0.mlp.c_proj.weight"].std().item<double>(), 0.02 / 4.0, 0.0002);
  EXPECT_NEAR(g["transformer.wpe.weight"].std().item<double>(), 0.02, 0.001);
}

}  // namespace
}  // namespace albion::models
