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
#include "runtime/models/sequence_parallel.h"
#include "runtime/models/tensor_parallel.h"

namespace albion::models {
namespace {

// Whether a norm's output can come in the dtype of `projection`'s product: where that product is
// its only reader, reading the stream's tensor itself (the model is not cut), as without an
// adapter (a LoRA adapter reads the layer's input too).
bool into_product(const ResidualStream& stream, const AdaptableLinear& projection) {
  return stream.passes_through() && !projection.has_lora();
}

// The norm of x for `projection`.
at::Tensor normed_for(const LayerNorm& norm, const at::Tensor& x, const ResidualStream& stream,
                      const AdaptableLinear& projection) {
  return into_product(stream, projection) ? norm.forward_into_product(x) : norm.forward(x);
}

// A c_proj layer's output into the stream from its input `x`: cut by its inputs, the ranks'
// partial products are summed first and the bias added once (tensor_parallel.h).
at::Tensor into_stream(const Conv1d& layer, const at::Tensor& x, const ResidualStream& stream) {
  if (stream.passes_through()) return layer.forward(x);
  return stream.from_layer(layer.forward_without_bias(x)) + layer.bias();
}

}  // namespace

class Gpt2Attention : public torch::nn::Module {
 public:
  Gpt2Attention(const ModelConfig& c, double residual_std, const at::TensorOptions& options)
      : heads_(c.heads),
        head_dim_(c.head_dim()),
        c_attn_(register_module("c_attn", std::make_shared<Conv1d>(c.hidden_size, 3 * c.hidden_size,
                                                                   kInitStd, options))),
        c_proj_(register_module("c_proj", std::make_shared<Conv1d>(c.hidden_size, c.hidden_size,
                                                                   residual_std, options))) {}

  // Keeps this rank's heads: its range of the query, key and value heads alike.
  void shard(const std::shared_ptr<collectives::Communicator>& group) {
    c_attn_->keep_part(0, group->rank(), group->size(), /*groups=*/3);
    c_proj_->keep_part(1, group->rank(), group->size());
    heads_ /= group->size();
  }

  // `x`: the norm's output as `stream` holds it; `cache`: null, or the keys and values of earlier
  // positions (layer `layer`'s are used); `document_mask`: undefined, or the one within documents
  // (causal_attention).
  at::Tensor forward(const at::Tensor& x, const ResidualStream& stream, KvCache* cache, std::size_t layer,
                     const at::Tensor& document_mask) const {
    const at::Tensor projected = stream.project(x, {c_attn_.get()})[0];
    const std::int64_t batch = projected.size(0), length = projected.size(1), width = heads_ * head_dim_;
    const std::vector<at::Tensor> qkv = projected.split(width, -1);
    auto heads = [&](const at::Tensor& t) { return t.view({batch, length, heads_, head_dim_}).transpose(1, 2); };
    at::Tensor k = heads(qkv[1]);
    at::Tensor v = heads(qkv[2]);
    const std::int64_t past = cache ? cache->length() : 0;
    if (cache) std::tie(k, v) = cache->append(layer, k, v);
    const at::Tensor y = causal_attention(heads(qkv[0]), k, v, past, /*grouped=*/false, document_mask);
    return into_stream(*c_proj_, y.transpose(1, 2).reshape({batch, length, width}), stream);
  }

  // The one layer that reads forward()'s input.
  const Conv1d& input_projection() const { return *c_attn_; }

 private:
  std::int64_t heads_;
  std::int64_t head_dim_;
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

  // Keeps this rank's features.
  void shard(const std::shared_ptr<collectives::Communicator>& group) {
    c_fc_->keep_part(0, group->rank(), group->size());
    c_proj_->keep_part(1, group->rank(), group->size());
  }

  // `x`: the norm's output as `stream` holds it.
  at::Tensor forward(const at::Tensor& x, const ResidualStream& stream) const {
    if (use_fused_kernel(fused_, x)) {
      // The first product without its bias; the kernel adds it inside the GELU.
      const at::Tensor product = stream.project(x, {c_fc_.get()}, Bias::kNone)[0];
      return into_stream(*c_proj_, kernels::gelu_bias(product, c_fc_->bias()), stream);
    }
    return into_stream(*c_proj_, at::gelu(stream.project(x, {c_fc_.get()})[0], "tanh"), stream);
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

  void shard(const std::shared_ptr<collectives::Communicator>& group) {
    attn_->shard(group);
    mlp_->shard(group);
  }

  // The block's output h + mlp(ln_2(h)), h = x + attn(ln_1(x)), as {h, the MLP's output}: the last
  // add is left to the next norm, which makes it in its kernel where it can, as ln_2 adds the
  // attention's output (Note [The residual add in the norm]). `pending`: the previous block's MLP
  // output, added to x here the same way (undefined: x is the whole stream). `stream`: how x and
  // the output are held; `document_mask`: the attention's.
  std::pair<at::Tensor, at::Tensor> forward_deferred(const at::Tensor& x, const at::Tensor& pending,
                                                     const ResidualStream& stream, KvCache* cache, std::size_t layer,
                                                     const at::Tensor& document_mask) const {
    const AdaptableLinear& attention_input = attn_->input_projection();
    const auto [residual, normed] = pending.defined()
                                        ? ln_1_->add_then_forward(x, pending, into_product(stream, attention_input))
                                        : std::pair{x, normed_for(*ln_1_, x, stream, attention_input)};
    const at::Tensor attended = attn_->forward(normed, stream, cache, layer, document_mask);
    const auto [h, normed_2] =
        ln_2_->add_then_forward(residual, attended, into_product(stream, mlp_->input_projection()));
    return {h, mlp_->forward(normed_2, stream)};
  }

  // The whole output, as a recomputed block returns it.
  at::Tensor forward(const at::Tensor& x, const ResidualStream& stream, KvCache* cache, std::size_t layer,
                     const at::Tensor& document_mask) const {
    const auto [h, mlp_output] = forward_deferred(x, at::Tensor(), stream, cache, layer, document_mask);
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
  Gpt2Body(const ModelConfig& c, double residual_std, const at::TensorOptions& options,
           const std::shared_ptr<collectives::Communicator>& tensor_group)
      : wte_(register_module(
            "wte", std::make_shared<Embedding>(c.vocab_size, c.hidden_size, kInitStd, options))),
        wpe_(register_module("wpe", std::make_shared<Embedding>(c.context_length, c.hidden_size,
                                                                kInitStd, options))),
        tensor_group_(tensor_group),
        sequence_parallel_(c.sequence_parallel) {
    if (tensor_group) wte_->keep_part(tensor_group->rank(), tensor_group->size());
    torch::nn::ModuleList h;
    for (std::int64_t i = 0; i < c.layers; ++i) {
      blocks_.push_back(std::make_shared<Gpt2Block>(c, residual_std, options));
      if (tensor_group) blocks_.back()->shard(tensor_group);  // before the next block is drawn
      h->push_back(blocks_.back());
    }
    register_module("h", h);
    ln_f_ =
        register_module("ln_f", std::make_shared<LayerNorm>(c.hidden_size, c.norm_eps, options, c.fused_kernels));
    recompute_every_ = c.recompute_every;
  }

  // `positions`: undefined (0 onwards, after the cache's), or each token's in its document, with
  // their `document_mask`. Cut over a tensor-parallel group, the hidden states come out whole on
  // every rank, ready for the LM head's part, and their gradient is summed over the group.
  at::Tensor forward(const at::Tensor& input_ids, KvCache* cache, const at::Tensor& positions,
                     const at::Tensor& document_mask) const {
    const ResidualStream stream(tensor_group_, sequence_parallel_ && cache == nullptr, input_ids);
    const std::int64_t past = cache ? cache->length() : 0;
    const at::Tensor position_ids =
        positions.defined() ? positions
                            : at::arange(past, past + input_ids.size(1),
                                         at::TensorOptions().dtype(at::kLong).device(input_ids.device()));
    at::Tensor x = stream.from_layer(wte_->forward(input_ids)) + wpe_->forward(stream.own_tokens(position_ids));
    at::Tensor pending;  // the last block's MLP output, not yet added to the stream x
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      if (recompute_block(recompute_every_, i, is_training(), cache != nullptr)) {
        if (pending.defined()) x = x + std::exchange(pending, at::Tensor());  // a recomputed block's input is whole
        x = recomputed_in_backward(
            [block = blocks_[i], stream = stream.recomputed(), document_mask](const at::Tensor& in) {
              return block->forward(in, stream, nullptr, 0, document_mask);
            },
            x);
      } else {
        std::tie(x, pending) = blocks_[i]->forward_deferred(x, pending, stream, cache, i, document_mask);
      }
    }
    return stream.to_layer(pending.defined() ? ln_f_->add_then_forward(x, pending, /*into_product=*/false).second
                                             : ln_f_->forward(x));
  }

  const Embedding& wte() const { return *wte_; }

 private:
  std::shared_ptr<Embedding> wte_;
  std::shared_ptr<Embedding> wpe_;
  std::vector<std::shared_ptr<Gpt2Block>> blocks_;
  std::shared_ptr<LayerNorm> ln_f_;
  std::int64_t recompute_every_ = 0;
  std::shared_ptr<collectives::Communicator> tensor_group_;  // null when whole
  bool sequence_parallel_;
};

Gpt2::Gpt2(const ModelConfig& config, const at::TensorOptions& options,
           std::shared_ptr<collectives::Communicator> tensor_group)
    : CausalLm(config, std::move(tensor_group)) {
  transformer_ = register_module("transformer", std::make_shared<Gpt2Body>(config, residual_init_std(), options,
                                                                          tensor_parallel_group()));
  if (!config.tie_embeddings) {
    lm_head_ =
        register_module("lm_head", std::make_shared<Linear>(config.hidden_size, config.vocab_size,
                                                            Bias::kNone, kInitStd, options));
    if (const auto& group = tensor_parallel_group()) lm_head_->keep_part(0, group->rank(), group->size());
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
