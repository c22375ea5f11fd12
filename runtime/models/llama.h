// File: runtime/models/llama.h
// Llama (2 and 3 layout) with the parameter names of transformers' LlamaForCausalLM:
//   model.embed_tokens.weight [V, H]
//   model.layers.{i}.self_attn.{q_proj [heads*d, H], k_proj [kv*d, H], v_proj [kv*d, H], o_proj [H,
//   heads*d]}.weight model.layers.{i}.mlp.{gate_proj [I, H], up_proj [I, H], down_proj [H,
//   I]}.weight model.layers.{i}.input_layernorm.weight [H]
//   model.layers.{i}.post_attention_layernorm.weight [H] model.norm.weight [H] lm_head.weight [V,
//   H] unless tie_embeddings
// No biases; RMSNorm; RoPE in HF's rotate_half layout with optional Llama 3 scaling (rope.h);
// grouped-query attention (kv head j serves query heads j*g .. j*g+g-1, g = heads / kv_heads,
// HF's repeat_kv order); SwiGLU MLP down(silu(gate(x)) * up(x)). Tensor parallelism cuts each layer's
// attention by heads and its MLP by features (runtime/models/tensor_parallel.h).
#pragma once

#include <ATen/ATen.h>

#include <memory>

#include "runtime/models/causal_lm.h"
#include "runtime/models/rope.h"

namespace albion::models {

class LlamaBody;
class Linear;

class Llama : public CausalLm {
 public:
  // `tensor_group`: null, or the ranks to cut every layer over as it is built (make_model).
  Llama(const ModelConfig& config, const at::TensorOptions& options,
        std::shared_ptr<collectives::Communicator> tensor_group = nullptr);
  at::Tensor hidden_states(const at::Tensor& input_ids, KvCache* cache, const at::Tensor& positions = {}) override;
  at::Tensor output_weight() const override;

 protected:
  bool is_embedding_table(const std::string& name) const override;

 private:
  std::shared_ptr<LlamaBody> model_;
  std::shared_ptr<Linear> lm_head_;  // null when tied to model.embed_tokens
  RotaryTables rotary_;
};

}  // namespace albion::models
