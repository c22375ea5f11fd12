// File: runtime/models/llama.cpp
// Llama's modules, registered under their Hugging Face names in HF's order (attention, MLP, then
// the two norms of a layer), which is also the order their initial values are drawn in.
#include "runtime/models/llama.h"

#include <torch/nn/modules/container/modulelist.h>

#include <tuple>
#include <utility>
#include <vector>

#include "kernels/rope/rope.h"
#include "kernels/swiglu/swiglu.h"
#include "runtime/models/activation_checkpoint.h"
#include "runtime/models/kv_cache.h"
#include "runtime/models/layers.h"
#include "runtime/models/sequence_parallel.h"
#include "runtime/models/tensor_parallel.h"

namespace albion::models {
namespace {

// Llama's projections have no bias; registers one under its Hugging Face name.
std::shared_ptr<Linear> register_linear(torch::nn::Module& owner, const char* name, std::int64_t in,
                                        std::int64_t out, double init_std,
                                        const at::TensorOptions& options, Bias bias = Bias::kNone) {
  return owner.register_module(name, std::make_shared<Linear>(in, out, bias, init_std, options));
}

// Qwen2's attention: biases on the query, key and value projections (not the output's).
Bias qkv_bias(const ModelConfig& c) { return c.attention_bias ? Bias::kWith : Bias::kNone; }

// How many matrix products read a norm's output for `layers`, and nothing else does, where the
// layers read the stream's tensor itself: each layer's own, and its adapter's first where it has
// one that reads the layer's input as it is (no dropout in training); else 0.
// RmsNorm::forward_into_products then writes one operand for each.
std::int64_t products_reading(const ResidualStream& stream, std::initializer_list<const Linear*> layers) {
  if (!stream.passes_through()) return 0;
  std::int64_t products = 0;
  for (const Linear* layer : layers) {
    if (!layer->adapter_sees_layer_input()) return 0;
    products += layer->has_lora() ? 2 : 1;
  }
  return products;
}

// `layers` applied to the norm's output: to the operands products_reading counted where the norm
// wrote them (a layer's, then its adapter's), else to the one output through the stream.
std::vector<at::Tensor> products_of(const ResidualStream& stream, const std::vector<at::Tensor>& operands,
                                    std::initializer_list<const Linear*> layers) {
  if (operands.size() == 1) return stream.project(operands[0], {layers.begin(), layers.end()});
  std::vector<at::Tensor> outputs;
  auto operand = operands.begin();
  for (const Linear* layer : layers) {
    const at::Tensor& input = *operand++;
    outputs.push_back(layer->has_lora() ? layer->forward(input, *operand++) : layer->forward(input));
  }
  return outputs;
}

}  // namespace

class LlamaAttention : public torch::nn::Module {
 public:
  LlamaAttention(const ModelConfig& c, double residual_std, const at::TensorOptions& options)
      : heads_(c.heads),
        kv_heads_(c.kv_heads),
        head_dim_(c.head_dim()),
        q_proj_(register_linear(*this, "q_proj", c.hidden_size, c.heads * head_dim_, kInitStd, options,
                                qkv_bias(c))),
        k_proj_(register_linear(*this, "k_proj", c.hidden_size, c.kv_heads * head_dim_, kInitStd, options,
                                qkv_bias(c))),
        v_proj_(register_linear(*this, "v_proj", c.hidden_size, c.kv_heads * head_dim_, kInitStd, options,
                                qkv_bias(c))),
        o_proj_(register_linear(*this, "o_proj", c.heads * head_dim_, c.hidden_size, residual_std, options)),
        fused_(c.fused_kernels) {}

  // Keeps this rank's heads: the query and key/value heads [r h / n, (r + 1) h / n) stay grouped as
  // before, because n divides the key/value heads.
  void shard(const std::shared_ptr<collectives::Communicator>& group) {
    const int index = group->rank(), count = group->size();
    for (const auto& projection : {q_proj_, k_proj_, v_proj_}) projection->keep_part(0, index, count);
    o_proj_->keep_part(1, index, count);
    heads_ /= count;
    kv_heads_ /= count;
  }

  // The products reading the input norm's output (products_reading).
  std::int64_t input_products(const ResidualStream& stream) const {
    return products_reading(stream, {q_proj_.get(), k_proj_.get(), v_proj_.get()});
  }

  // `input`: the norm's output, or its input_products() operands; `rope`: the tables of x's
  // positions, [T, head_dim], or [B, T, head_dim] for packed documents, with their `document_mask`
  // (else undefined; causal_attention); `cache`: null, or the keys and values of earlier positions
  // (layer `layer`'s are used); `stream`: how `input` and the output are held.
  at::Tensor forward(const std::vector<at::Tensor>& input, const ResidualStream& stream,
                     const RotaryTables::Tables& rope, const at::Tensor& document_mask, KvCache* cache,
                     std::size_t layer) const {
    const std::vector<at::Tensor> qkv = products_of(stream, input, {q_proj_.get(), k_proj_.get(), v_proj_.get()});
    const std::int64_t batch = qkv[0].size(0), length = qkv[0].size(1);
    auto heads = [&](const at::Tensor& t, std::int64_t n) {
      return t.view({batch, length, n, head_dim_}).transpose(1, 2);
    };
    // The fused kernel rotates the projection's [batch, seq, heads, head_dim] output in place
    // before the transpose, in one pass (nothing else reads that output; Linear's backward needs
    // only its input); the composition rotates after it in five. Tables per token rotate the
    // batch's tokens as one sequence of batch x seq, each by its own row.
    const bool per_token = rope.cos.dim() == 3;
    const std::int64_t sequences = per_token ? 1 : batch, steps = per_token ? batch * length : length;
    auto rotated = [&](const at::Tensor& t, std::int64_t n) {
      if (use_fused_kernel(fused_, t)) {
        return kernels::rope_(t.view({sequences, steps, n, head_dim_}), rope.cos.view({-1, head_dim_}),
                              rope.sin.view({-1, head_dim_}))
            .view({batch, length, n, head_dim_})
            .transpose(1, 2);
      }
      // [T, d] tables broadcast over batch and heads, [B, 1, T, d] over heads.
      return per_token ? apply_rotary(heads(t, n), rope.cos.unsqueeze(1), rope.sin.unsqueeze(1))
                       : apply_rotary(heads(t, n), rope.cos, rope.sin);
    };
    const at::Tensor q = rotated(qkv[0], heads_);
    at::Tensor k = rotated(qkv[1], kv_heads_);
    at::Tensor v = heads(qkv[2], kv_heads_);
    const std::int64_t past = cache ? cache->length() : 0;
    if (cache) std::tie(k, v) = cache->append(layer, k, v);
    // Grouped (enable_gqa) lets SDPA share each k/v head across its query group: flash does it
    // natively, and the math fallback repeats k/v heads in HF's repeat_kv order (kv head j for
    // query heads j*g .. j*g+g-1), which the reference tests pin down.
    const at::Tensor y = causal_attention(q, k, v, past, /*grouped=*/kv_heads_ != heads_, document_mask);
    return stream.from_layer(o_proj_->forward(y.transpose(1, 2).reshape({batch, length, heads_ * head_dim_})));
  }

 private:
  std::int64_t heads_;
  std::int64_t kv_heads_;
  std::int64_t head_dim_;
  std::shared_ptr<Linear> q_proj_;
  std::shared_ptr<Linear> k_proj_;
  std::shared_ptr<Linear> v_proj_;
  std::shared_ptr<Linear> o_proj_;
  bool fused_;
};

class LlamaMlp : public torch::nn::Module {
 public:
  LlamaMlp(const ModelConfig& c, double residual_std, const at::TensorOptions& options)
      : gate_proj_(register_linear(*this, "gate_proj", c.hidden_size, c.intermediate_size, kInitStd, options)),
        up_proj_(register_linear(*this, "up_proj", c.hidden_size, c.intermediate_size, kInitStd, options)),
        down_proj_(register_linear(*this, "down_proj", c.intermediate_size, c.hidden_size, residual_std, options)),
        fused_(c.fused_kernels) {}

  // Keeps this rank's MLP features.
  void shard(const std::shared_ptr<collectives::Communicator>& group) {
    const int index = group->rank(), count = group->size();
    gate_proj_->keep_part(0, index, count);
    up_proj_->keep_part(0, index, count);
    down_proj_->keep_part(1, index, count);
  }

  // The products reading the norm's output before the MLP (products_reading).
  std::int64_t input_products(const ResidualStream& stream) const {
    return products_reading(stream, {gate_proj_.get(), up_proj_.get()});
  }

  // `input`: the norm's output, or its input_products() operands.
  at::Tensor forward(const std::vector<at::Tensor>& input, const ResidualStream& stream) const {
    const std::vector<at::Tensor> gate_up = products_of(stream, input, {gate_proj_.get(), up_proj_.get()});
    const at::Tensor& gate = gate_up[0];
    const at::Tensor& up = gate_up[1];
    // Under autocast the projections may come out in different dtypes; the kernel needs one.
    const bool fused = use_fused_kernel(fused_, gate) && gate.scalar_type() == up.scalar_type();
    return stream.from_layer(down_proj_->forward(fused ? kernels::swiglu(gate, up) : at::silu(gate) * up));
  }

 private:
  std::shared_ptr<Linear> gate_proj_;
  std::shared_ptr<Linear> up_proj_;
  std::shared_ptr<Linear> down_proj_;
  bool fused_;
};

class LlamaLayer : public torch::nn::Module {
 public:
  LlamaLayer(const ModelConfig& c, double residual_std, const at::TensorOptions& options)
      : self_attn_(register_module("self_attn",
                                   std::make_shared<LlamaAttention>(c, residual_std, options))),
        mlp_(register_module("mlp", std::make_shared<LlamaMlp>(c, residual_std, options))),
        input_layernorm_(register_module(
            "input_layernorm", std::make_shared<RmsNorm>(c.hidden_size, c.norm_eps, options, c.fused_kernels))),
        post_attention_layernorm_(
            register_module("post_attention_layernorm",
                            std::make_shared<RmsNorm>(c.hidden_size, c.norm_eps, options, c.fused_kernels))) {}

  void shard(const std::shared_ptr<collectives::Communicator>& group) {
    self_attn_->shard(group);
    mlp_->shard(group);
  }

  // The layer's output h + mlp(norm(h)), h = x + attention(norm(x)), as {h, the MLP's output}: the
  // last add is left to the next norm, which makes it in its kernel where it can, as
  // post_attention_layernorm adds the attention's output (Note [The residual add in the norm]).
  // `pending`: the previous layer's MLP output, added to x here the same way (undefined: x is the
  // whole stream). Each norm writes its output once per reading product where it can (Note [One
  // operand per product], kernels/rmsnorm/rmsnorm_torch.cpp).
  std::pair<at::Tensor, at::Tensor> forward_deferred(const at::Tensor& x, const at::Tensor& pending,
                                                     const ResidualStream& stream, const RotaryTables::Tables& rope,
                                                     const at::Tensor& document_mask, KvCache* cache,
                                                     std::size_t layer) const {
    const auto [residual, normed] =
        input_layernorm_->forward_into_products(x, pending, self_attn_->input_products(stream));
    const at::Tensor attended = self_attn_->forward(normed, stream, rope, document_mask, cache, layer);
    const auto [h, normed_2] =
        post_attention_layernorm_->forward_into_products(residual, attended, mlp_->input_products(stream));
    return {h, mlp_->forward(normed_2, stream)};
  }

  // The whole output, as a recomputed layer returns it.
  at::Tensor forward(const at::Tensor& x, const ResidualStream& stream, const RotaryTables::Tables& rope,
                     const at::Tensor& document_mask, KvCache* cache, std::size_t layer) const {
    const auto [h, mlp_output] = forward_deferred(x, at::Tensor(), stream, rope, document_mask, cache, layer);
    return h + mlp_output;
  }

 private:
  std::shared_ptr<LlamaAttention> self_attn_;
  std::shared_ptr<LlamaMlp> mlp_;
  std::shared_ptr<RmsNorm> input_layernorm_;
  std::shared_ptr<RmsNorm> post_attention_layernorm_;
};

// HF's LlamaModel: "model.*" up to the final norm; returns hidden states.
class LlamaBody : public torch::nn::Module {
 public:
  LlamaBody(const ModelConfig& c, double residual_std, const at::TensorOptions& options,
            const std::shared_ptr<collectives::Communicator>& tensor_group)
      : embed_tokens_(register_module(
            "embed_tokens",
            std::make_shared<Embedding>(c.vocab_size, c.hidden_size, kInitStd, options))),
        tensor_group_(tensor_group),
        sequence_parallel_(c.sequence_parallel) {
    if (tensor_group) embed_tokens_->keep_part(tensor_group->rank(), tensor_group->size());
    torch::nn::ModuleList layers;
    for (std::int64_t i = 0; i < c.layers; ++i) {
      layers_.push_back(std::make_shared<LlamaLayer>(c, residual_std, options));
      if (tensor_group) layers_.back()->shard(tensor_group);  // before the next layer is drawn
      layers->push_back(layers_.back());
    }
    register_module("layers", layers);
    norm_ = register_module("norm", std::make_shared<RmsNorm>(c.hidden_size, c.norm_eps, options, c.fused_kernels));
    recompute_every_ = c.recompute_every;
  }

  // Cut over a tensor-parallel group, the hidden states come out whole on every rank, ready for
  // the LM head's part, and their gradient is summed over the group.
  at::Tensor forward(const at::Tensor& input_ids, const RotaryTables::Tables& rope, const at::Tensor& document_mask,
                     KvCache* cache) const {
    const ResidualStream stream(tensor_group_, sequence_parallel_ && cache == nullptr, input_ids);
    at::Tensor x = stream.from_layer(embed_tokens_->forward(input_ids));
    at::Tensor pending;  // the last layer's MLP output, not yet added to the stream x
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      if (recompute_block(recompute_every_, i, is_training(), cache != nullptr)) {
        if (pending.defined()) x = x + std::exchange(pending, at::Tensor());  // a recomputed layer's input is whole
        x = recomputed_in_backward(
            [layer = layers_[i], stream = stream.recomputed(), rope, document_mask](const at::Tensor& in) {
              return layer->forward(in, stream, rope, document_mask, nullptr, 0);
            },
            x);
      } else {
        std::tie(x, pending) = layers_[i]->forward_deferred(x, pending, stream, rope, document_mask, cache, i);
      }
    }
    return stream.to_layer(pending.defined() ? norm_->add_then_forward(x, pending).second : norm_->forward(x));
  }

  const Embedding& embed_tokens() const { return *embed_tokens_; }

 private:
  std::shared_ptr<Embedding> embed_tokens_;
  std::vector<std::shared_ptr<LlamaLayer>> layers_;
  std::shared_ptr<RmsNorm> norm_;
  std::int64_t recompute_every_ = 0;
  std::shared_ptr<collectives::Communicator> tensor_group_;  // null when whole
  bool sequence_parallel_;
};

Llama::Llama(const ModelConfig& config, const at::TensorOptions& options,
             std::shared_ptr<collectives::Communicator> tensor_group)
    : CausalLm(config, std::move(tensor_group)),
      rotary_(rope_inverse_frequencies(config.head_dim(), config.rope_theta, config.rope_scaling)) {
  model_ = register_module("model", std::make_shared<LlamaBody>(config, residual_init_std(), options,
                                                                 tensor_parallel_group()));
  if (!config.tie_embeddings) {
    lm_head_ =
        register_module("lm_head", std::make_shared<Linear>(config.hidden_size, config.vocab_size,
                                                            Bias::kNone, kInitStd, options));
    if (const auto& group = tensor_parallel_group()) lm_head_->keep_part(0, group->rank(), group->size());
  }
}

at::Tensor Llama::hidden_states(const at::Tensor& input_ids, KvCache* cache, const at::Tensor& positions) {
  const std::int64_t past = cache ? cache->length() : 0;
  const std::int64_t length = input_ids.size(1);
  check_input(input_ids, cache, positions);
  const at::Tensor& embedding = model_->embed_tokens().weight();
  // fp64 tables for an fp64 model, fp32 otherwise; apply_rotary casts them to q's dtype.
  const RotaryTables::Tables all = rotary_.get(past + length, embedding.device(), embedding.scalar_type());
  RotaryTables::Tables rope = {all.cos.narrow(0, past, length), all.sin.narrow(0, past, length)};
  if (positions.defined()) {  // a document's tokens sit at 0 .. length - 1 at most
    const at::Tensor flat = positions.reshape({-1});
    const std::vector<std::int64_t> per_token = {input_ids.size(0), length, all.cos.size(1)};
    rope = {all.cos.index_select(0, flat).view(per_token), all.sin.index_select(0, flat).view(per_token)};
  }
  return model_->forward(input_ids, rope, document_mask(positions), cache);
}

at::Tensor Llama::output_weight() const { return lm_head_ ? lm_head_->weight() : model_->embed_tokens().weight(); }

bool Llama::is_embedding_table(const std::string& name) const {
  return name == "model.embed_tokens.weight";
}

}  // namespace albion::models
