// File: runtime/models/hf_export.cpp
// The layout transformers expects for a config (names, shapes, order), the identity mapping onto
// it (Note [Hugging Face names]) and config.json.
#include "runtime/models/hf_export.h"

#include <bit>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/base/check.h"
#include "runtime/models/safetensors_dtype.h"

namespace albion::models {
namespace {

using Shape = std::vector<std::int64_t>;
using Layout = std::vector<std::pair<std::string, Shape>>;

constexpr const char* kLmHead = "lm_head.weight";

// GPT2LMHeadModel's state dict: Conv1D weights are [in, out].
Layout gpt2_layout(const ModelConfig& c) {
  const std::int64_t h = c.hidden_size, inner = c.intermediate_size;
  Layout out = {{"transformer.wte.weight", {c.vocab_size, h}}, {"transformer.wpe.weight", {c.context_length, h}}};
  for (std::int64_t layer = 0; layer < c.layers; ++layer) {
    const std::string p = "transformer.h." + std::to_string(layer) + ".";
    const Layout block = {
        {p + "ln_1.weight", {h}},           {p + "ln_1.bias", {h}},
        {p + "attn.c_attn.weight", {h, 3 * h}}, {p + "attn.c_attn.bias", {3 * h}},
        {p + "attn.c_proj.weight", {h, h}}, {p + "attn.c_proj.bias", {h}},
        {p + "ln_2.weight", {h}},           {p + "ln_2.bias", {h}},
        {p + "mlp.c_fc.weight", {h, inner}}, {p + "mlp.c_fc.bias", {inner}},
        {p + "mlp.c_proj.weight", {inner, h}}, {p + "mlp.c_proj.bias", {h}},
    };
    out.insert(out.end(), block.begin(), block.end());
  }
  out.push_back({"transformer.ln_f.weight", {h}});
  out.push_back({"transformer.ln_f.bias", {h}});
  if (!c.tie_embeddings) out.push_back({kLmHead, {c.vocab_size, h}});
  return out;
}

// LlamaForCausalLM's state dict: nn.Linear weights are [out, in], no biases; Qwen2ForCausalLM's is
// the same with biases on q, k and v.
Layout llama_layout(const ModelConfig& c) {
  const std::int64_t h = c.hidden_size, q = c.heads * c.head_dim(), kv = c.kv_heads * c.head_dim();
  Layout out = {{"model.embed_tokens.weight", {c.vocab_size, h}}};
  for (std::int64_t layer = 0; layer < c.layers; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    const Layout block = {
        {p + "self_attn.q_proj.weight", {q, h}},
        {p + "self_attn.k_proj.weight", {kv, h}},
        {p + "self_attn.v_proj.weight", {kv, h}},
        {p + "self_attn.o_proj.weight", {h, q}},
        {p + "mlp.gate_proj.weight", {c.intermediate_size, h}},
        {p + "mlp.up_proj.weight", {c.intermediate_size, h}},
        {p + "mlp.down_proj.weight", {h, c.intermediate_size}},
        {p + "input_layernorm.weight", {h}},
        {p + "post_attention_layernorm.weight", {h}},
    };
    out.insert(out.end(), block.begin(), block.end());
    if (c.attention_bias) {
      const Layout biases = {{p + "self_attn.q_proj.bias", {q}},
                             {p + "self_attn.k_proj.bias", {kv}},
                             {p + "self_attn.v_proj.bias", {kv}}};
      out.insert(out.end(), biases.begin(), biases.end());
    }
  }
  out.push_back({"model.norm.weight", {h}});
  if (!c.tie_embeddings) out.push_back({kLmHead, {c.vocab_size, h}});
  return out;
}

Layout hugging_face_layout(const ModelConfig& c) {
  return c.architecture == Architecture::kGpt2 ? gpt2_layout(c) : llama_layout(c);
}

const char* hf_class(const ModelConfig& c) {
  if (c.architecture == Architecture::kGpt2) return "GPT2LMHeadModel";
  return c.attention_bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
}

const char* embedding_name(const ModelConfig& c) {
  return c.architecture == Architecture::kGpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight";
}

at::Tensor exported(const at::Tensor& value) { return value.detach().to(at::kCPU, at::kFloat).contiguous(); }

}  // namespace

std::vector<HfTensor> to_hugging_face(const ModelConfig& config,
                                      const std::vector<std::pair<std::string, at::Tensor>>& albion_parameters) {
  config.validate();
  // The published model's shapes: masked padding rows are dropped (Note [Masked vocabulary padding]).
  ModelConfig published = config;
  published.vocab_size = config.vocab_in_use();
  published.vocab_padding = 0;
  const Layout layout = hugging_face_layout(published);
  std::set<std::string> expected;
  for (const auto& [name, _] : layout) expected.insert(name);

  std::map<std::string, const at::Tensor*> given;
  const at::Tensor* tied_head = nullptr;
  for (const auto& [name, value] : albion_parameters) {
    ALBION_CHECK_AS(UsageError, given.emplace(name, &value).second, "parameter '", name, "' appears twice");
    if (name == kLmHead && config.tie_embeddings) {
      tied_head = &value;  // Note [Hugging Face names]: checked against the embedding below
      continue;
    }
    ALBION_CHECK_AS(UsageError, expected.count(name), "no ", hf_class(config), " name for parameter '", name,
                    "': a ", architecture_name(config.architecture), " model with this config has no such parameter");
  }

  std::vector<HfTensor> out;
  for (const auto& [name, shape] : layout) {
    // Same name on both sides (Note [Hugging Face names]).
    const auto it = given.find(name);
    ALBION_CHECK_AS(UsageError, it != given.end(), "parameter '", name, "' is missing; ", hf_class(config),
                    " needs it");
    at::Tensor value = *it->second;
    const bool vocabulary_rows = name == embedding_name(config) || name == kLmHead;
    if (vocabulary_rows && value.dim() == 2 && value.size(0) == config.vocab_size) {
      value = value.narrow(0, 0, published.vocab_size);
    }
    ALBION_CHECK_AS(UsageError, value.sizes() == at::IntArrayRef(shape), "parameter '", name, "' has shape ",
                    value.sizes(), "; ", hf_class(config), " expects ", at::IntArrayRef(shape));
    out.push_back({name, exported(value)});
  }
  if (tied_head != nullptr) {
    const at::Tensor& embedding = *given.at(embedding_name(config));
    ALBION_CHECK_AS(UsageError,
                    tied_head->sizes() == embedding.sizes() && at::equal(exported(*tied_head), exported(embedding)),
                    "parameter '", kLmHead, "' differs from '", embedding_name(config),
                    "' although the config ties them; refusing to drop it");
  }
  return out;
}

std::string hugging_face_config_json(const ModelConfig& config) {
  config.validate();
  nlohmann::ordered_json json;
  if (config.architecture == Architecture::kGpt2) {
    json = {
        {"architectures", nlohmann::ordered_json::array({"GPT2LMHeadModel"})},
        {"model_type", "gpt2"},
        {"vocab_size", config.vocab_in_use()},
        {"n_positions", config.context_length},
        {"n_ctx", config.context_length},
        {"n_embd", config.hidden_size},
        {"n_layer", config.layers},
        {"n_head", config.heads},
        {"n_inner", config.intermediate_size},
        {"activation_function", "gelu_new"},  // the tanh approximation Albion's MLP uses
        {"layer_norm_epsilon", config.norm_eps},
        {"resid_pdrop", 0.0},
        {"embd_pdrop", 0.0},
        {"attn_pdrop", 0.0},
        {"scale_attn_weights", true},
        {"initializer_range", 0.02},
    };
  } else {
    nlohmann::ordered_json rope_scaling = nullptr;
    if (config.rope_scaling) {
      rope_scaling = {
          {"rope_type", "llama3"},
          {"factor", config.rope_scaling->factor},
          {"low_freq_factor", config.rope_scaling->low_freq_factor},
          {"high_freq_factor", config.rope_scaling->high_freq_factor},
          {"original_max_position_embeddings", config.rope_scaling->original_max_position},
      };
    }
    json = {
        {"architectures", nlohmann::ordered_json::array({hf_class(config)})},
        {"model_type", hugging_face_model_type(config)},
        {"vocab_size", config.vocab_in_use()},
        {"hidden_size", config.hidden_size},
        {"intermediate_size", config.intermediate_size},
        {"num_hidden_layers", config.layers},
        {"num_attention_heads", config.heads},
        {"num_key_value_heads", config.kv_heads},
        {"head_dim", config.head_dim()},
        {"hidden_act", "silu"},
        {"max_position_embeddings", config.context_length},
        {"rms_norm_eps", config.norm_eps},
        {"rope_theta", config.rope_theta},
        {"rope_scaling", rope_scaling},
        {"attention_dropout", 0.0},
        {"initializer_range", 0.02},
    };
    if (config.attention_bias) {  // Qwen2: its biases are implied; no sliding-window attention
      json["use_sliding_window"] = false;
      json["sliding_window"] = nullptr;
      json["max_window_layers"] = config.layers;
    } else {
      json["attention_bias"] = false;
      json["mlp_bias"] = false;
      json["pretraining_tp"] = 1;
    }
  }
  json["bos_token_id"] = nullptr;
  json["eos_token_id"] = nullptr;
  json["tie_word_embeddings"] = config.tie_embeddings;
  json["use_cache"] = true;
  json["torch_dtype"] = "float32";
  return json.dump(2) + "\n";
}

std::vector<checkpoint::SafetensorsTensor> to_safetensors(const std::vector<HfTensor>& tensors) {
  static_assert(std::endian::native == std::endian::little, "safetensors stores little-endian bytes");
  std::vector<checkpoint::SafetensorsTensor> out;
  out.reserve(tensors.size());
  for (const HfTensor& t : tensors) {
    ALBION_CHECK(t.value.device().is_cpu() && t.value.is_contiguous(), "tensor '", t.name,
                 "' must be contiguous on the CPU to be written");
    const std::optional<std::string_view> dtype = safetensors_dtype(t.value.scalar_type());
    ALBION_CHECK_AS(UsageError, dtype.has_value(), "tensor '", t.name, "' has dtype ", t.value.scalar_type(),
                    ", which Albion does not write to safetensors");
    const auto* data = static_cast<const std::uint8_t*>(t.value.data_ptr());
    out.push_back({t.name, std::string(*dtype), t.value.sizes().vec(), {data, t.value.nbytes()}});
  }
  return out;
}

std::map<std::string, std::string> hugging_face_safetensors_metadata() { return {{"format", "pt"}}; }

}  // namespace albion::models
