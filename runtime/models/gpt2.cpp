// File: runtime/models/gpt2.cpp
// GPT-2's modules. Each submodule is registered under its Hugging Face name, in HF's order, and
// creates its parameters in that order too, so the initial values for a seed do not depend on
// anything but the config.
#include "runtime/models/gpt2.h"

#include <torch/nn/modules/container/modulelist.h>

#include <tuple>
#include <utility>

#include "kernels/gelu/gelu_bias.h"
#include "runtime/models/activation_checkpoint.h"
#include "runtime/models/kv_cache.h"
#include "runtime/models/layers.h"

namespace albion::models {
namespace {

// Whether a norm's output can come in the dtype of `projection`'s product: where that product is
// its only reader, as without an adapter (a LoRA adapter reads the layer's input too).
bool into_product(const AdaptableLinear& projection) { return !projection.has_lora(); }

// The norm of x for `projection`.
at::Tensor normed_for(const LayerNorm& norm, const at::Tensor& x, const AdaptableLinear& projection) {
  return into_product(projection) ? norm.forward_into_product(x) : norm.forward(x);
}

}  // namespace

class Gpt2Attention : public torch::nn::Module {
 public:
  Gpt2Attention(const ModelConfig& c, double residual_std, const at::TensorOptions& options)
      : heads_(c.heads),
        c_attn_(register_module("c_attn", std::make_shared<Conv1d>(c.hidden_size, 3 * c.hidden_size,
                                                                   kInitStd, options))),
        c_proj_(register_module("c_proj", std::make_shared<Conv1d>(c.hidden_size, c.hidden_size,
                                                                   residual_std, options))) {}

  // `cache`: null, or the keys and values of earlier positions (layer `layer`'s are used);
  // `document_mask`: undefined, or the one within documents (causal_attention).
  at::Tensor forward(const at::Tensor& x, KvCache* cache, std::size_t layer, const at::Tensor& document_mask) const {
    const std::int64_t batch = x.size(0), length = x.size(1), hidden = x.size(2);
    const std::vector<at::Tensor> qkv = c_attn_->forward(x).split(hidden, -1);
    auto heads = [&](const at::Tensor& t) {
      return t.view({batch, length, heads_, hidden / heads_}).transpose(1, 2);
    };
    at::Tensor k = heads(qkv[1]);
    at::Tensor v = heads(qkv[2]);
    const std::int64_t past = cache ? cache->length() : 0;
    if (cache) std::tie(k, v) = cache->append(layer, k, v);
    const at::Tensor y = causal_attention(heads(qkv[0]), k, v, past, /*grouped=*/false, document_mask);
    return c_proj_->forward(y.transpose(1, 2).reshape({batch, length, hidden}));
  }

  // The one layer that reads forward()'s input.
  const Conv1d& input_projection() const { return *c_attn_; }

 private:
  std::int64_t heads_;
  std::shared_ptr<Conv1d> c_attn_;
  std::shared_ptr<Conv1d> c_proj_;
};

class Gpt2Mlp : public torch::nn::Module {
 public:
  Gpt2Mlp(const ModelConfig& c, double residual_std, const at::TensorOptions& options)
      : c_fc_(register_module("c_fc", std::make_shared<Conv1d>(c.hidden_size, c.intermediate_size,
                                                               kInitStd, options))),
        c_proj_(register_module(
            "c_proj",
            std::make_shared<Conv1d>(c.intermediate_size, c.hidden_size, residual_std, options))),
        fused_(c.fused_kernels) {}

  at::Tensor forward(const at::Tensor& x) const {
    if (use_fused_kernel(fused_, x)) {
      // The first product without its bias; the kernel adds it inside the GELU.
      return c_proj_->forward(kernels::gelu_bias(c_fc_->forward_without_bias(x), c_fc_->bias()));
    }
    return c_proj_->forward(at::gelu(c_fc_->forward(x), "tanh"));
  }

  // The one layer that reads forward()'s input.
  const Conv1d& input_projection() const { return *c_fc_; }

 private:
  std::shared_ptr<Conv1d> c_fc_;
  std::shared_ptr<Conv1d> c_proj_;
  bool fused_;
};

class Gpt2Block : public torch::nn::Module {
 public:
  Gpt2Block(const ModelConfig& c, double residual_std, const at::TensorOptions& options)
      : ln_1_(register_module("ln_1",
                              std::make_shared<LayerNorm>(c.hidden_size, c.norm_eps, options, c.fused_kernels))),
        attn_(register_module("attn", std::make_shared<Gpt2Attention>(c, residual_std, options))),
        ln_2_(register_module("ln_2",
                              std::make_shared<LayerNorm>(c.hidden_size, c.norm_eps, options, c.fused_kernels))),
        mlp_(register_module("mlp", std::make_shared<Gpt2Mlp>(c, residual_std, options))) {}

  // The block's output h + mlp(ln_2(h)), h = x + attn(ln_1(x)), as {h, the MLP's output}: the last
  // add is left to the next norm, which makes it in its kernel where it can, as ln_2 adds the
  // attention's output (Note [The residual add in the norm]). `pending`: the previous block's MLP
  // output, added to x here the same way (undefined: x is the whole stream). `document_mask`: the
  // attention's.
  std::pair<at::Tensor, at::Tensor> forward_deferred(const at::Tensor& x, const at::Tensor& pending, KvCache* cache,
                                                     std::size_t layer, const at::Tensor& document_mask) const {
    const AdaptableLinear& attention_input = attn_->input_projection();
    const auto [stream, normed] = pending.defined()
                                      ? ln_1_->add_then_forward(x, pending, into_product(attention_input))
                                      : std::pair{x, normed_for(*ln_1_, x, attention_input)};
    const at::Tensor attended = attn_->forward(normed, cache, layer, document_mask);
    const auto [h, normed_2] = ln_2_->add_then_forward(stream, attended, into_product(mlp_->input_projection()));
    return {h, mlp_->forward(normed_2)};
  }

  // The whole output, as a recomputed block returns it.
  at::Tensor forward(const at::Tensor& x, KvCache* cache, std::size_t layer, const at::Tensor& document_mask) const {
    const auto [h, mlp_output] = forward_deferred(x, at::Tensor(), cache, layer, document_mask);
    return h + mlp_output;
  }

 private:
  std::shared_ptr<LayerNorm> ln_1_;
  std::shared_ptr<Gpt2Attention> attn_;
  std::shared_ptr<LayerNorm> ln_2_;
  std::shared_ptr<Gpt2Mlp> mlp_;
};

// HF's GPT2Model: "transformer.*" up to the final norm; returns hidden states.
class Gpt2Body : public torch::nn::Module {
 public:
  Gpt2Body(const ModelConfig& c, double residual_std, const at::TensorOptions& options)
      : wte_(register_module(
            "wte", std::make_shared<Embedding>(c.vocab_size, c.hidden_size, kInitStd, options))),
        wpe_(register_module("wpe", std::make_shared<Embedding>(c.context_length, c.hidden_size,
                                                                kInitStd, options))) {
    torch::nn::ModuleList h;
    for (std::int64_t i = 0; i < c.layers; ++i) {
      blocks_.push_back(std::make_shared<Gpt2Block>(c, residual_std, options));
      h->push_back(blocks_.back());
    }
    register_module("h", h);
    ln_f_ =
        register_module("ln_f", std::make_shared<LayerNorm>(c.hidden_size, c.norm_eps, options, c.fused_kernels));
    recompute_every_ = c.recompute_every;
  }

  // `positions`: undefined (0 onwards, after the cache's), or each token's in its document, with
  // their `document_mask`.
  at::Tensor forward(const at::Tensor& input_ids, KvCache* cache, const at::Tensor& positions,
                     const at::Tensor& document_mask) const {
    const std::int64_t past = cache ? cache->length() : 0;
    const at::Tensor position_ids =
        positions.defined() ? positions
                            : at::arange(past, past + input_ids.size(1),
                                         at::TensorOptions().dtype(at::kLong).device(input_ids.device()));
    at::Tensor x = wte_->forward(input_ids) + wpe_->forward(position_ids);
    at::Tensor pending;  // the last block's MLP output, not yet added to the stream x
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      if (recompute_block(recompute_every_, i, is_training(), cache != nullptr)) {
        if (pending.defined()) x = x + std::exchange(pending, at::Tensor());  // a recomputed block's input is whole
        x = recomputed_in_backward(
            [block = blocks_[i], document_mask](const at::Tensor& in) {
              return block->forward(in, nullptr, 0, document_mask);
            },
            x);
      } else {
        std::tie(x, pending) = blocks_[i]->forward_deferred(x, pending, cache, i, document_mask);
      }
    }
    return pending.defined() ? ln_f_->add_then_forward(x, pending, /*into_product=*/false).second : ln_f_->forward(x);
  }

  const Embedding& wte() const { return *wte_; }

 private:
  std::shared_ptr<Embedding> wte_;
  std::shared_ptr<Embedding> wpe_;
  std::vector<std::shared_ptr<Gpt2Block>> blocks_;
  std::shared_ptr<LayerNorm> ln_f_;
  std::int64_t recompute_every_ = 0;
};

Gpt2::Gpt2(const ModelConfig& config, const at::TensorOptions& options) : CausalLm(config) {
  transformer_ = register_module("transformer",
                                 std::make_shared<Gpt2Body>(config, residual_init_std(), options));
  if (!config.tie_embeddings) {
    lm_head_ =
        register_module("lm_head", std::make_shared<Linear>(config.hidden_size, config.vocab_size,
                                                            Bias::kNone, kInitStd, options));
  }
}

at::Tensor Gpt2::hidden_states(const at::Tensor& input_ids, KvCache* cache, const at::Tensor& positions) {
  check_input(input_ids, cache, positions);
  return transformer_->forward(input_ids, cache, positions, document_mask(positions));
}

at::Tensor Gpt2::output_weight() const { return lm_head_ ? lm_head_->weight() : transformer_->wte().weight(); }

bool Gpt2::is_embedding_table(const std::string& name) const {
  return name == "transformer.wte.weight" || name == "transformer.wpe.weight";
}

}  // namespace albion::models
