// File: runtime/models/hf_import.cpp
#include "runtime/models/hf_import.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <torch/types.h>

#include "checkpoint/crypto/sha256.h"
#include "checkpoint/export/safetensors.h"
#include "checkpoint/io/hdf5_io.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/models/safetensors_dtype.h"
#include "runtime/models/tensor_parallel.h"

namespace albion::models {
namespace {

namespace fs = std::filesystem;

// The floating-point dtypes a Hugging Face checkpoint's weights come in.
std::optional<at::ScalarType> floating_type(const std::string& dtype) {
  const std::optional<at::ScalarType> type = scalar_type_of(dtype);
  return type && at::isFloatingType(*type) ? type : std::nullopt;
}

// The weight files of `directory`: the shards its index names, or model.safetensors.
std::vector<fs::path> weight_files(const fs::path& directory) {
  const fs::path index = directory / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream in(index);
    const nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    ALBION_CHECK_AS(UsageError, json.is_object() && json.contains("weight_map") && json["weight_map"].is_object(),
                    index.string(), ": not a safetensors index (no \"weight_map\" object)");
    std::set<std::string> names;
    for (const auto& [tensor, file] : json["weight_map"].items()) {
      ALBION_CHECK_AS(UsageError, file.is_string() && fs::path(file.get<std::string>()).filename() == file.get<std::string>(),
                      index.string(), ": tensor '", tensor, "' names no file of the directory");
      names.insert(file.get<std::string>());
    }
    std::vector<fs::path> files;
    for (const std::string& name : names) files.push_back(directory / name);
    return files;
  }
  const fs::path single = directory / "model.safetensors";
  ALBION_CHECK_AS(UsageError, fs::exists(single), directory.string(),
                  ": no model.safetensors or model.safetensors.index.json (a Hugging Face model directory)");
  return {single};
}

// `json`'s number at `key`, if it has one.
std::optional<double> number(const nlohmann::json& json, const char* key) {
  if (!json.is_object() || !json.contains(key) || !json[key].is_number()) return std::nullopt;
  return json[key].get<double>();
}

// `json`'s string at `key` ("" without one); another type, as JSON, so it shows in the warning
// rather than throwing json's type_error (config.json comes with a download).
std::string text(const nlohmann::json& json, const char* key) {
  if (!json.is_object() || !json.contains(key)) return "";
  return json[key].is_string() ? json[key].get<std::string>() : json[key].dump();
}

// Adds a line when `stored` exists and is not `expected` (relative tolerance for printed decimals).
void compare(std::vector<std::string>& out, const char* name, std::optional<double> stored, double expected) {
  if (stored && std::abs(*stored - expected) > 1e-9 * std::max(1.0, std::abs(expected))) {
    out.push_back(str_cat(name, " ", *stored, ", the preset's ", expected));
  }
}

// Buffers transformers' files may hold that are not parameters.
bool is_known_buffer(const std::string& name) {
  return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") || name.ends_with("rotary_emb.inv_freq");
}

// A config.json's rotary settings. transformers 4 keeps rope_theta and rope_scaling at the top; 5
// keeps both inside rope_parameters.
struct RopeSettings {
  nlohmann::json parameters;  // the scaling's (null without)
  std::optional<double> theta;
  std::string type;  // "" or "default" for none
};

RopeSettings rope_settings(const nlohmann::json& json) {
  RopeSettings rope;
  rope.parameters = json.contains("rope_parameters") ? json["rope_parameters"]
                    : json.contains("rope_scaling")  ? json["rope_scaling"]
                                                     : nlohmann::json();
  rope.theta = number(json, "rope_theta") ? number(json, "rope_theta") : number(rope.parameters, "rope_theta");
  rope.type = text(rope.parameters, rope.parameters.contains("rope_type") ? "rope_type" : "type");
  return rope;
}

// The token embedding's name in a full model of `config`'s architecture, and the prefix of its base model.
std::pair<std::string, std::string> embedding_and_prefix(const ModelConfig& config) {
  const bool gpt2 = config.architecture == Architecture::kGpt2;
  const std::string prefix = gpt2 ? "transformer." : "model.";
  return {prefix + (gpt2 ? "wte.weight" : "embed_tokens.weight"), prefix};
}

}  // namespace

std::vector<std::string> hugging_face_config_differences(const ModelConfig& config, const nlohmann::json& json) {
  std::vector<std::string> out;
  const bool gpt2 = config.architecture == Architecture::kGpt2;
  const std::string model_type = text(json, "model_type");
  if (!model_type.empty() && model_type != hugging_face_model_type(config)) {
    out.push_back(str_cat("model_type ", model_type, ", the preset's ", hugging_face_model_type(config)));
    return out;
  }
  compare(out, gpt2 ? "layer_norm_epsilon" : "rms_norm_eps", number(json, gpt2 ? "layer_norm_epsilon" : "rms_norm_eps"),
          config.norm_eps);
  if (gpt2) return out;
  const RopeSettings settings = rope_settings(json);
  const nlohmann::json& rope = settings.parameters;
  const std::string& rope_type = settings.type;
  compare(out, "rope_theta", settings.theta, config.rope_theta);
  const bool llama3_scaling = rope_type == "llama3";
  if (llama3_scaling != config.rope_scaling.has_value()) {
    out.push_back(str_cat("rope type '", rope_type.empty() ? "default" : rope_type, "', the preset's ",
                          config.rope_scaling ? "'llama3'" : "'default'"));
  } else if (llama3_scaling) {
    compare(out, "rope factor", number(rope, "factor"), config.rope_scaling->factor);
    compare(out, "rope low_freq_factor", number(rope, "low_freq_factor"), config.rope_scaling->low_freq_factor);
    compare(out, "rope high_freq_factor", number(rope, "high_freq_factor"), config.rope_scaling->high_freq_factor);
    compare(out, "rope original_max_position_embeddings", number(rope, "original_max_position_embeddings"),
            static_cast<double>(config.rope_scaling->original_max_position));
  }
  return out;
}

bool holds_hugging_face_model(const fs::path& directory) {
  return fs::is_regular_file(directory / "config.json") &&
         (fs::is_regular_file(directory / "model.safetensors") ||
          fs::is_regular_file(directory / "model.safetensors.index.json"));
}

std::int64_t hugging_face_vocab_size(const ModelConfig& config, const fs::path& directory) {
  ALBION_CHECK_AS(UsageError, fs::is_directory(directory), directory.string(), ": no such directory");
  const auto [embedding, prefix] = embedding_and_prefix(config);
  for (const fs::path& file : weight_files(directory)) {
    const checkpoint::MappedFile mapped(file.string());
    const checkpoint::SafetensorsIndex index =
        checkpoint::parse_safetensors_header({mapped.data(), mapped.size()}, file.string());
    for (const checkpoint::SafetensorsIndex::Entry& entry : index.entries) {
      if ((entry.name == embedding || prefix + entry.name == embedding) && !entry.shape.empty()) return entry.shape[0];
    }
  }
  return 0;
}

ModelConfig hugging_face_model_config(const nlohmann::json& json, const std::string& what) {
  ALBION_CHECK_AS(UsageError, json.is_object(), what, ": not a JSON object");
  const auto size = [&](const char* key, std::optional<std::int64_t> fallback = std::nullopt) {
    if (!json.contains(key) || json[key].is_null()) {
      ALBION_CHECK_AS(UsageError, fallback.has_value(), what, ": no \"", key, "\"");
      return *fallback;
    }
    ALBION_CHECK_AS(UsageError, json[key].is_number_integer() && json[key].get<std::int64_t>() > 0, what, ": \"", key,
                    "\" is ", json[key].dump(), ", not a positive integer");
    return json[key].get<std::int64_t>();
  };
  const auto flag = [&](const char* key, bool fallback) {
    return json.contains(key) && json[key].is_boolean() ? json[key].get<bool>() : fallback;
  };
  // A switch whose `true` would compute another function than Albion's layers do.
  const auto refuse_switch = [&](const char* key) {
    ALBION_CHECK_AS(UsageError, !flag(key, false), what, ": \"", key, "\" is true, which Albion's ",
                    text(json, "model_type"), " does not compute");
  };
  const auto expect_text = [&](const char* key, std::initializer_list<const char*> allowed) {
    const std::string value = text(json, key);
    if (value.empty()) return;
    for (const char* ok : allowed) {
      if (value == ok) return;
    }
    throw UsageError(str_cat(what, ": \"", key, "\" is ", value, ", which Albion's ", text(json, "model_type"),
                             " does not compute (", *allowed.begin(), ")"));
  };
  const std::string model_type = text(json, "model_type");
  ModelConfig c;
  if (model_type == "gpt2") {
    c = model_preset("gpt2");
    c.vocab_size = size("vocab_size");
    c.context_length = size("n_positions");
    c.hidden_size = size("n_embd");
    c.layers = size("n_layer");
    c.heads = c.kv_heads = size("n_head");
    c.intermediate_size = size("n_inner", 4 * c.hidden_size);
    c.norm_eps = number(json, "layer_norm_epsilon").value_or(1e-5);
    c.tie_embeddings = flag("tie_word_embeddings", true);
    expect_text("activation_function", {"gelu_new", "gelu_pytorch_tanh"});  // both the tanh approximation
    refuse_switch("scale_attn_by_inverse_layer_idx");
  } else if (model_type == "llama" || model_type == "qwen2") {
    c = model_preset("llama-3.2-1b");
    c.vocab_size = size("vocab_size");
    c.context_length = size("max_position_embeddings");
    c.hidden_size = size("hidden_size");
    c.layers = size("num_hidden_layers");
    c.heads = size("num_attention_heads");
    c.kv_heads = size("num_key_value_heads", c.heads);
    c.intermediate_size = size("intermediate_size");
    c.norm_eps = number(json, "rms_norm_eps").value_or(1e-6);
    c.tie_embeddings = flag("tie_word_embeddings", false);
    c.attention_bias = model_type == "qwen2";  // on q, k and v; Llama's attention_bias is on o_proj too
    if (model_type == "llama") refuse_switch("attention_bias");
    refuse_switch("mlp_bias");
    refuse_switch("use_sliding_window");  // Qwen 2's, off in its published configs
    expect_text("hidden_act", {"silu"});
    const std::int64_t head_dim = size("head_dim", c.hidden_size / c.heads);
    ALBION_CHECK_AS(UsageError, head_dim * c.heads == c.hidden_size, what, ": \"head_dim\" ", head_dim, " times ",
                    c.heads, " heads is not hidden_size ", c.hidden_size, ", which Albion's attention requires");
    const RopeSettings settings = rope_settings(json);
    const nlohmann::json& rope = settings.parameters;
    const std::string& rope_type = settings.type;
    c.rope_theta = settings.theta.value_or(10000.0);
    ALBION_CHECK_AS(UsageError, rope_type.empty() || rope_type == "default" || rope_type == "llama3", what,
                    ": rope type '", rope_type, "', which Albion does not compute (default or llama3)");
    c.rope_scaling.reset();
    if (rope_type == "llama3") {
      RopeScaling scaling;
      scaling.factor = number(rope, "factor").value_or(scaling.factor);
      scaling.low_freq_factor = number(rope, "low_freq_factor").value_or(scaling.low_freq_factor);
      scaling.high_freq_factor = number(rope, "high_freq_factor").value_or(scaling.high_freq_factor);
      scaling.original_max_position =
          static_cast<std::int64_t>(number(rope, "original_max_position_embeddings").value_or(8192));
      c.rope_scaling = scaling;
    }
  } else {
    throw UsageError(str_cat(what, ": model_type '", model_type, "', not one Albion runs (gpt2, llama or qwen2)"));
  }
  c.validate();
  return c;
}

std::string hugging_face_weights_digest(const fs::path& directory) {
  ALBION_CHECK_AS(UsageError, fs::is_directory(directory), directory.string(), ": no such directory");
  checkpoint::Sha256Stream digest;
  std::vector<char> buffer(4 << 20);
  for (const fs::path& file : weight_files(directory)) {
    std::ifstream in(file, std::ios::binary);
    ALBION_CHECK_AS(UsageError, in.good(), file.string(), ": cannot be read");
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      digest.update(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())));
    }
    ALBION_CHECK_AS(UsageError, in.eof(), file.string(), ": read failed");
  }
  return digest.finish_hex();
}

void load_hugging_face_weights(CausalLm& model, const fs::path& directory, std::string* sha256) {
  ALBION_CHECK_AS(UsageError, fs::is_directory(directory), directory.string(), ": no such directory");
  if (std::ifstream in(directory / "config.json"); in) {
    const nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    for (const std::string& difference : hugging_face_config_differences(model.config(), json)) {
      log::warning(directory.string(), "/config.json differs from the preset: ", difference);
    }
  }
  std::map<std::string, at::Tensor> parameters;
  for (auto& [name, tensor] : model.named_parameters()) parameters.emplace(name, tensor);
  const auto [embedding, prefix] = embedding_and_prefix(model.config());
  const bool tied = model.config().tie_embeddings;
  // Note [Masked vocabulary padding]: the files' vocabulary rows, then zero rows to the model's.
  const std::int64_t padding = model.config().vocab_padding;
  const auto padded = [&](const std::string& name, const at::Tensor& values) {
    if (padding == 0 || !holds_vocabulary_rows(name) || values.dim() != 2 ||
        values.size(0) != model.config().vocab_in_use()) {
      return values;
    }
    return at::constant_pad_nd(values, {0, 0, 0, padding});
  };
  std::set<std::string> loaded;
  std::optional<at::Tensor> tied_head;  // a file's lm_head.weight under tied embeddings, checked at the end
  const std::shared_ptr<collectives::Communicator>& group = model.tensor_parallel_group();
  const std::int64_t parts = group ? group->size() : 1;
  torch::NoGradGuard no_grad;
  checkpoint::Sha256Stream digest;
  for (const fs::path& file : weight_files(directory)) {
    const checkpoint::MappedFile mapped(file.string(), checkpoint::MappedFile::Access::kSequential);
    if (sha256 != nullptr) digest.update({mapped.data(), mapped.size()});
    const checkpoint::SafetensorsIndex index =
        checkpoint::parse_safetensors_header({mapped.data(), mapped.size()}, file.string());
    for (const checkpoint::SafetensorsIndex::Entry& entry : index.entries) {
      if (is_known_buffer(entry.name)) continue;
      std::string name = entry.name;
      if (parameters.count(name) == 0 && parameters.count(prefix + name) > 0) name = prefix + name;
      const std::optional<at::ScalarType> type = floating_type(entry.dtype);
      ALBION_CHECK_AS(UsageError, type.has_value(), file.string(), ": tensor '", entry.name, "' is ", entry.dtype,
                      ", not floating point");
      void* data = const_cast<std::uint8_t*>(mapped.data() + index.data_start + entry.begin);
      const at::Tensor values = padded(name, at::from_blob(data, entry.shape, at::TensorOptions().dtype(*type)));
      if (name == "lm_head.weight" && tied) {
        tied_head = values.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);  // the mapping goes with the file
        continue;
      }
      auto found = parameters.find(name);
      ALBION_CHECK_AS(UsageError, found != parameters.end(), file.string(), ": tensor '", entry.name,
                      "' is not a parameter of the preset's ", architecture_name(model.config().architecture),
                      " model (check model.preset)");
      // A tensor-parallel rank copies its part only: of a mapped file, only those pages are read.
      const TensorParallelCut cut = group ? tensor_parallel_split(name) : TensorParallelCut{};
      const std::vector<std::int64_t> shape = tensor_parallel_global_shape(found->second.sizes(), cut.dim, parts);
      ALBION_CHECK_AS(UsageError, values.sizes() == shape, file.string(), ": tensor '", entry.name,
                      "' has shape ", values.sizes(), ", the preset's parameter ", at::IntArrayRef(shape),
                      " (check model.preset)");
      ALBION_CHECK_AS(UsageError, loaded.insert(name).second, directory.string(), ": tensor '", name, "' appears twice");
      found->second.copy_(cut.cut() ? tensor_parallel_part(values, cut.dim, group->rank(), parts, cut.groups) : values);
    }
  }
  for (const auto& [name, tensor] : parameters) {
    ALBION_CHECK_AS(UsageError, loaded.count(name) > 0, directory.string(), ": no weights for parameter '", name,
                    "' (check model.preset)");
  }
  if (tied_head) {
    if (group) *tied_head = tensor_parallel_part(*tied_head, 0, group->rank(), parts);
    ALBION_CHECK_AS(UsageError, at::equal(*tied_head, parameters.at(embedding).to(at::kCPU, at::kFloat)),
                    directory.string(), ": lm_head.weight differs from the token embedding, but the preset ties them");
  }
  if (sha256 != nullptr) *sha256 = digest.finish_hex();
}

}  // namespace albion::models
