// File: runtime/models/gpt2.h
// GPT-2 (Radford et al. 2019) with the parameter names of transformers' GPT2LMHeadModel:
//   transformer.wte.weight [V, H]          transformer.wpe.weight [context, H]
//   transformer.h.{i}.ln_1.{weight,bias}   transformer.h.{i}.attn.c_attn.{weight [H, 3H], bias}
//   transformer.h.{i}.attn.c_proj.{weight [H, H], bias}   transformer.h.{i}.ln_2.{weight,bias}
//   transformer.h.{i}.mlp.c_fc.{weight [H, I], bias}      transformer.h.{i}.mlp.c_proj.{weight [I,
//   H], bias} transformer.ln_f.{weight,bias}         lm_head.weight [V, H] only when tie_embeddings
//   is false
// Pre-norm blocks, learned positions, LayerNorm, GELU (tanh approximation), no dropout.
// HF's causal-mask buffers ("attn.bias") are not parameters here: the mask is SDPA's is_causal.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "runtime/models/causal_lm.h"

namespace albion::models {

class Gpt2Block;
class Gpt2Body;
class Linear;

class Gpt2 : public CausalLm {
 public:
  // `tensor_group`: null, or the group the model is cut over (runtime/models/tensor_parallel.h).
  Gpt2(const ModelConfig& config, const at::TensorOptions& options,
       std::shared_ptr<collectives::Communicator> tensor_group = nullptr);
  at::Tensor hidden_states(const at::Tensor& input_ids, KvCache* cache, const at::Tensor& positions = {}) override;
  at::Tensor output_weight() const override;

 protected:
  bool is_embedding_table(const std::string& name) const override;

 private:
  std::shared_ptr<Gpt2Body> transformer_;
  std::shared_ptr<Linear> lm_head_;  // null when tied to transformer.wte
};

}  // namespace albion::models
