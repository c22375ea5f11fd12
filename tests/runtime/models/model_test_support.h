// File: tests/runtime/models/model_test_support.h
// Small configs and helpers shared by the model tests: fp64 models with every parameter
// randomised (so biases and norm weights are not the trivial 0 / 1 of a fresh init) and lookup of
// parameters by their Hugging Face names.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>

#include "checkpoint/export/safetensors.h"
#include "runtime/base/error.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/hf_export.h"
#include "runtime/models/model_config.h"

namespace albion::models::testing {

inline ModelConfig small_gpt2() {
  ModelConfig c = model_preset("tiny");
  c.vocab_size = 97;
  c.context_length = 24;
  c.hidden_size = 64;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 4;
  c.intermediate_size = 256;
  return c;
}

// Rope scaling with original 64 positions puts the 16-wide heads' wavelengths in all three bands.
inline ModelConfig small_llama(bool tie_embeddings) {
  ModelConfig c = model_preset("llama-3.2-1b");
  c.vocab_size = 97;
  c.context_length = 24;
  c.hidden_size = 64;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.intermediate_size = 96;
  c.rope_theta = 10000.0;
  c.rope_scaling = RopeScaling{4.0, 1.0, 4.0, 64};
  c.tie_embeddings = tie_embeddings;
  return c;
}

// An fp64 CPU model whose parameters are all drawn from N(0, std) (norm weights around 1).
inline std::shared_ptr<CausalLm> randomised_fp64_model(const ModelConfig& config,
                                                       std::uint64_t seed, double std = 0.2) {
  at::manual_seed(seed);
  std::shared_ptr<CausalLm> model = make_model(config);
  model->to(at::kDouble);
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : model->named_parameters()) {
    const bool norm_weight = p.dim() == 1 && name.ends_with(".weight");
    p.normal_(norm_weight ? 1.0 : 0.0, std);
  }
  return model;
}

// `published` with `padding` masked vocabulary rows added (ModelConfig::vocab_padding), zero, in
// its dtype: what model.init makes of a published model whose vocabulary a recipe pads.
inline std::shared_ptr<CausalLm> with_vocab_padding(const CausalLm& published, std::int64_t padding) {
  ModelConfig config = published.config();
  config.vocab_size += padding;
  config.vocab_padding = padding;
  std::shared_ptr<CausalLm> padded = make_model(config);
  std::map<std::string, at::Tensor> values;
  for (const auto& [name, value] : published.named_parameters()) values.emplace(name, value);
  padded->to(values.begin()->second.scalar_type());
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : padded->named_parameters()) {
    const at::Tensor& value = values.at(name);
    p.zero_();
    p.narrow(0, 0, value.size(0)).copy_(value);  // the vocabulary's rows; any other tensor whole
  }
  return padded;
}

inline std::map<std::string, at::Tensor> parameter_map(CausalLm& model) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, p] : model.named_parameters()) out.emplace(name, p.detach());
  return out;
}

// The message of the UsageError `f` throws; a test failure, and "", when it throws none.
template <typename F>
std::string usage_error_of(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UsageError";
  return {};
}

// Writes `model`'s logits on fixed ids to `file` as safetensors ("input_ids", "logits"): what the
// Python interop checks compare transformers' (or PEFT's) logits with.
inline void write_expected_logits(CausalLm& model, const std::string& file) {
  const at::Tensor ids = at::remainder(at::arange(2 * 13, at::kLong) * 37 + 5, model.config().vocab_size).view({2, 13});
  at::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model.forward(ids).contiguous();
  }
  const std::vector<HfTensor> expected = {{"input_ids", ids}, {"logits", logits}};
  checkpoint::write_safetensors(file, to_safetensors(expected), {});
}

// max |a - b| / max |b|
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

}  // namespace albion::models::testing
