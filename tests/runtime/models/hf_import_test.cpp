// File: tests/runtime/models/hf_import_test.cpp
// Starting weights from a transformers checkpoint directory (model.init): a model's own export
// loads back bit for bit into a differently initialised model (GPT-2, tied and untied Llama) and
// into one built without drawing values;
// BF16 files are widened; base-model names without the prefix, GPT-2's mask buffers and sharded
// indexes are accepted as transformers accepts them; anything missing, unexpected or misshapen is
// refused naming the tensor; config.json differences in what shapes cannot show are named; the
// model a config.json describes (Albion's and transformers' own) is built from it.
#include "runtime/models/hf_import.h"

#include <gtest/gtest.h>
#include <torch/types.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint/export/safetensors.h"
#include "runtime/base/error.h"
#include "runtime/models/hf_export.h"
#include "tests/runtime/models/model_test_support.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace albion::models {
namespace {

using testing_support::run_command;
using testing::usage_error_of;
using testing_support::TempDir;

// Writes `tensors` (name -> value) as DIR/FILE in safetensors, values in `dtype`.
void write_weights(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                   at::ScalarType dtype = at::kFloat) {
  std::vector<HfTensor> hf;
  for (const auto& [name, value] : tensors) hf.push_back({name, value.to(dtype).contiguous()});
  checkpoint::write_safetensors(path, to_safetensors(hf), hugging_face_safetensors_metadata());
}

std::vector<std::pair<std::string, at::Tensor>> exported(const CausalLm& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (HfTensor& t : to_hugging_face(model.config(), model.named_parameters())) out.emplace_back(t.name, t.value);
  return out;
}

std::shared_ptr<CausalLm> fp32_model(const ModelConfig& config, std::uint64_t seed) {
  at::manual_seed(seed);
  return make_model(config);
}

// A model of `config` drawn from seed 1, exported to `dir`/model.safetensors.
std::shared_ptr<CausalLm> exported_model(const ModelConfig& config, const TempDir& dir) {
  auto model = fp32_model(config, 1);
  write_weights(dir / "model.safetensors", exported(*model));
  return model;
}

void expect_same_parameters(const CausalLm& a, const CausalLm& b) {
  const auto left = a.named_parameters();
  const auto right = b.named_parameters();
  ASSERT_EQ(left.size(), right.size());
  for (std::size_t i = 0; i < left.size(); ++i) {
    EXPECT_TRUE(at::equal(left[i].second, right[i].second)) << left[i].first;
  }
}

TEST(HfImport, AModelsOwnExportLoadsBackExactly) {
  for (const ModelConfig& config : {testing::small_gpt2(), testing::small_llama(true), testing::small_llama(false)}) {
    SCOPED_TRACE(architecture_name(config.architecture) + std::string(config.tie_embeddings ? " tied" : " untied"));
    TempDir dir;
    const auto trained = exported_model(config, dir);
    const auto fresh = fp32_model(config, 2);
    load_hugging_face_weights(*fresh, dir.path());
    expect_same_parameters(*trained, *fresh);
  }
}

// model.init builds its model without drawing values (make_model's InitialValues::kNone): nothing
// is taken from the random stream, and the load sets every parameter.
TEST(HfImport, AModelBuiltWithoutValuesDrawsNothingAndLoadsExactly) {
  for (const ModelConfig& config : {testing::small_gpt2(), testing::small_llama(true), testing::small_llama(false)}) {
    SCOPED_TRACE(architecture_name(config.architecture) + std::string(config.tie_embeddings ? " tied" : " untied"));
    TempDir dir;
    const auto trained = exported_model(config, dir);
    at::manual_seed(3);
    const at::Tensor expected_next_draw = at::randn({8});
    at::manual_seed(3);
    const auto fresh = make_model(config, at::kCPU, nullptr, InitialValues::kNone);
    EXPECT_TRUE(at::equal(at::randn({8}), expected_next_draw)) << "building the model drew random values";
    load_hugging_face_weights(*fresh, dir.path());
    expect_same_parameters(*trained, *fresh);
    // Once it is built, models draw their values again.
    expect_same_parameters(*fp32_model(config, 1), *trained);
  }
}

TEST(HfImport, Bf16IsWidenedAndTransformersLeftoversAreAccepted) {
  const ModelConfig config = testing::small_gpt2();
  TempDir dir;
  const auto trained = fp32_model(config, 1);
  // Saved from the base model (no "transformer." prefix), with the mask buffers of old files, in BF16.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [name, value] : exported(*trained)) tensors.emplace_back(name.substr(std::string("transformer.").size()), value);
  tensors.emplace_back("h.0.attn.bias", at::ones({1, 1, 24, 24}));
  tensors.emplace_back("h.0.attn.masked_bias", at::ones({}));
  write_weights(dir / "model.safetensors", tensors, at::kBFloat16);
  const auto fresh = fp32_model(config, 2);
  load_hugging_face_weights(*fresh, dir.path());
  const auto reference = testing::parameter_map(*trained);
  for (const auto& [name, value] : fresh->named_parameters()) {
    EXPECT_TRUE(at::equal(value, reference.at(name).to(at::kBFloat16).to(at::kFloat))) << name;
  }
}

TEST(HfImport, ShardedIndexesLoad) {
  const ModelConfig config = testing::small_llama(false);
  TempDir dir;
  const auto trained = fp32_model(config, 1);
  const auto tensors = exported(*trained);
  const std::size_t half = tensors.size() / 2;
  write_weights(dir / "model-00001-of-00002.safetensors", {tensors.begin(), tensors.begin() + half});
  write_weights(dir / "model-00002-of-00002.safetensors", {tensors.begin() + half, tensors.end()});
  nlohmann::json map;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    map[tensors[i].first] = i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  std::ofstream(dir / "model.safetensors.index.json") << nlohmann::json{{"metadata", {}}, {"weight_map", map}}.dump();
  const auto fresh = fp32_model(config, 2);
  load_hugging_face_weights(*fresh, dir.path());
  expect_same_parameters(*trained, *fresh);
}

TEST(HfImport, RefusalsNameTheTensor) {
  const ModelConfig config = testing::small_gpt2();
  const auto trained = fp32_model(config, 1);
  auto tensors = exported(*trained);
  const auto fresh = fp32_model(config, 2);
  auto refusal = [&](const std::vector<std::pair<std::string, at::Tensor>>& file) {
    TempDir dir;
    write_weights(dir / "model.safetensors", file);
    return usage_error_of([&] { load_hugging_face_weights(*fresh, dir.path()); });
  };

  auto missing = tensors;
  missing.erase(missing.begin() + 3);
  EXPECT_NE(refusal(missing).find("no weights for parameter '" + tensors[3].first + "'"), std::string::npos);
  auto extra = tensors;
  extra.emplace_back("transformer.h.9.mlp.c_fc.weight", at::zeros({2, 2}));
  EXPECT_NE(refusal(extra).find("'transformer.h.9.mlp.c_fc.weight' is not a parameter"), std::string::npos);
  auto misshapen = tensors;
  misshapen[0].second = at::zeros({98, 64});  // another vocabulary
  EXPECT_NE(refusal(misshapen).find("'transformer.wte.weight' has shape [98, 64]"), std::string::npos);
  auto tied_head = tensors;  // GPT-2 ties lm_head to wte: a file's copy must agree
  tied_head.emplace_back("lm_head.weight", at::zeros({97, 64}));
  EXPECT_NE(refusal(tied_head).find("lm_head.weight differs"), std::string::npos);
  tied_head.back().second = tensors[0].second;
  TempDir agreeing;
  write_weights(agreeing / "model.safetensors", tied_head);
  EXPECT_NO_THROW(load_hugging_face_weights(*fresh, agreeing.path()));

  TempDir empty;
  EXPECT_NE(usage_error_of([&] { load_hugging_face_weights(*fresh, empty.path()); }).find("no model.safetensors"),
            std::string::npos);
}

// config.json is compared in what shapes cannot show. Llama 3.2 1B's published config.json (the
// transformers 4 spelling) matches its preset; each changed hyperparameter is named.
TEST(HfImport, ConfigDifferencesAreNamed) {
  const nlohmann::json llama_3_2_1b = nlohmann::json::parse(R"({
    "model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0, "tie_word_embeddings": true,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}})");
  const ModelConfig preset = model_preset("llama-3.2-1b");
  EXPECT_EQ(hugging_face_config_differences(preset, llama_3_2_1b), std::vector<std::string>{});

  nlohmann::json changed = llama_3_2_1b;
  changed["rms_norm_eps"] = 1e-6;
  changed["rope_theta"] = 10000.0;
  changed["rope_scaling"]["factor"] = 8.0;
  EXPECT_EQ(hugging_face_config_differences(preset, changed),
            (std::vector<std::string>{"rms_norm_eps 1e-06, the preset's 1e-05", "rope_theta 10000, the preset's 500000",
                                      "rope factor 8, the preset's 32"}));
  changed = llama_3_2_1b;
  changed.erase("rope_scaling");
  EXPECT_EQ(hugging_face_config_differences(preset, changed),
            std::vector<std::string>{"rope type 'default', the preset's 'llama3'"});
  EXPECT_EQ(hugging_face_config_differences(testing::small_gpt2(), llama_3_2_1b),
            std::vector<std::string>{"model_type llama, the preset's gpt2"});
  // Fields of an unexpected type are named, not thrown as json's type_error (an internal error).
  changed = llama_3_2_1b;
  changed["rope_scaling"]["rope_type"] = nlohmann::json::array();
  EXPECT_EQ(hugging_face_config_differences(preset, changed),
            std::vector<std::string>{"rope type '[]', the preset's 'llama3'"});
  changed["model_type"] = 5;
  EXPECT_EQ(hugging_face_config_differences(preset, changed),
            std::vector<std::string>{"model_type 5, the preset's llama"});
  // Albion's own export, both architectures, agrees with itself.
  for (const ModelConfig& config : {testing::small_gpt2(), testing::small_llama(true)}) {
    EXPECT_EQ(hugging_face_config_differences(config, nlohmann::json::parse(hugging_face_config_json(config))),
              std::vector<std::string>{});
  }
}

// The fields a config.json can say, equal.
void expect_same_model(const ModelConfig& actual, const ModelConfig& expected) {
  EXPECT_EQ(actual.architecture, expected.architecture);
  EXPECT_EQ(actual.vocab_size, expected.vocab_size);
  EXPECT_EQ(actual.context_length, expected.context_length);
  EXPECT_EQ(actual.hidden_size, expected.hidden_size);
  EXPECT_EQ(actual.layers, expected.layers);
  EXPECT_EQ(actual.heads, expected.heads);
  EXPECT_EQ(actual.kv_heads, expected.kv_heads);
  EXPECT_EQ(actual.intermediate_size, expected.intermediate_size);
  EXPECT_DOUBLE_EQ(actual.norm_eps, expected.norm_eps);
  EXPECT_EQ(actual.tie_embeddings, expected.tie_embeddings);
  EXPECT_EQ(actual.attention_bias, expected.attention_bias);
  if (expected.architecture == Architecture::kGpt2) return;
  EXPECT_DOUBLE_EQ(actual.rope_theta, expected.rope_theta);
  ASSERT_EQ(actual.rope_scaling.has_value(), expected.rope_scaling.has_value());
  if (!expected.rope_scaling) return;
  EXPECT_DOUBLE_EQ(actual.rope_scaling->factor, expected.rope_scaling->factor);
  EXPECT_DOUBLE_EQ(actual.rope_scaling->low_freq_factor, expected.rope_scaling->low_freq_factor);
  EXPECT_DOUBLE_EQ(actual.rope_scaling->high_freq_factor, expected.rope_scaling->high_freq_factor);
  EXPECT_EQ(actual.rope_scaling->original_max_position, expected.rope_scaling->original_max_position);
}

// `eval` of a Hugging Face directory builds its model from config.json: Albion's own config.json
// gives back the model for GPT-2, tied and untied Llama, Llama 3's rope scaling and Qwen's biases;
// what Albion does not compute is refused naming the key (transformers' own files: the next test).
TEST(HfImport, AConfigJsonGivesTheModelItDescribes) {
  ModelConfig qwen = testing::small_llama(false);
  qwen.attention_bias = true;
  qwen.rope_scaling.reset();
  for (const ModelConfig& config : {testing::small_gpt2(), testing::small_llama(true), testing::small_llama(false),
                                    qwen}) {
    SCOPED_TRACE(hugging_face_model_type(config));
    expect_same_model(hugging_face_model_config(nlohmann::json::parse(hugging_face_config_json(config)), "c.json"),
                      config);
  }
  const nlohmann::json llama = nlohmann::json::parse(hugging_face_config_json(testing::small_llama(true)));
  const auto refusal = [](nlohmann::json json) {
    return usage_error_of([&] { hugging_face_model_config(json, "c.json"); });
  };
  nlohmann::json changed = llama;
  changed["model_type"] = "mistral";
  EXPECT_EQ(refusal(changed), "c.json: model_type 'mistral', not one Albion runs (gpt2, llama or qwen2)");
  changed = llama;
  changed["rope_scaling"]["rope_type"] = "yarn";
  EXPECT_EQ(refusal(changed), "c.json: rope type 'yarn', which Albion does not compute (default or llama3)");
  changed = llama;
  changed.erase("hidden_size");
  EXPECT_EQ(refusal(changed), "c.json: no \"hidden_size\"");
  changed = llama;
  changed["num_hidden_layers"] = 2.5;
  EXPECT_EQ(refusal(changed), "c.json: \"num_hidden_layers\" is 2.5, not a positive integer");
  changed = llama;
  changed["head_dim"] = 32;
  EXPECT_NE(refusal(changed).find("\"head_dim\" 32 times 4 heads is not hidden_size 64"), std::string::npos);
  changed = llama;
  changed["hidden_act"] = "gelu";
  EXPECT_NE(refusal(changed).find("\"hidden_act\" is gelu"), std::string::npos);
  changed = llama;
  changed["attention_bias"] = true;  // Llama's also on o_proj, unlike Qwen 2's
  EXPECT_EQ(refusal(changed), "c.json: \"attention_bias\" is true, which Albion's llama does not compute");
  changed = nlohmann::json::parse(hugging_face_config_json(qwen));
  changed["use_sliding_window"] = true;
  EXPECT_EQ(refusal(changed), "c.json: \"use_sliding_window\" is true, which Albion's qwen2 does not compute");
}

// Files transformers itself wrote (save_pretrained: a full GPT-2, a base GPT2Model in BF16, a tied
// Llama, an untied Llama in shards): Albion, loading them by name, computes transformers' logits.
// Runs where the Python of the build has `transformers` and `safetensors` (setup.sh installs them;
// skipped otherwise).
TEST(HfImport, FilesTransformersWroteGiveTransformersLogits) {
  const std::string python = ALBION_PYTHON;
  if (!testing_support::python_imports(python, "transformers, torch, safetensors")) {
    GTEST_SKIP() << "no " << python << " with the `transformers`, `torch` and `safetensors` packages";
  }
  TempDir dir;
  const std::map<std::string, ModelConfig> configs = {{"gpt2", testing::small_gpt2()},
                                                      {"gpt2_base_bf16", testing::small_gpt2()},
                                                      {"llama_tied", testing::small_llama(true)},
                                                      {"llama_sharded", testing::small_llama(false)}};
  for (const auto& [name, config] : configs) {
    std::filesystem::create_directories(dir / name);
    std::ofstream(dir / name + "/config.json") << hugging_face_config_json(config);
  }
  const std::string script = R"PY(
import os, sys
import torch, transformers
from safetensors.torch import save_file
root = sys.argv[1]
torch.manual_seed(0)
for name in sorted(os.listdir(root)):
    d = os.path.join(root, name)
    if not os.path.isdir(d):
        continue
    model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.from_pretrained(d)).float().eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():  # well away from the 0.02 init, so errors show
            p.normal_(1.0 if p.dim() == 1 and pname.endswith("weight") else 0.0, 0.2)
        if name.endswith("bf16"):
            model = model.to(torch.bfloat16)
            model.transformer.save_pretrained(d)  # the base model: names without "transformer."
            model = model.float()
        else:
            model.save_pretrained(d, max_shard_size="40KB" if "sharded" in name else "5GB")
        ids = torch.remainder(torch.arange(26) * 37 + 5, model.config.vocab_size).view(2, 13)
        save_file({"input_ids": ids, "logits": model(ids).logits.contiguous()}, os.path.join(d, "expected.safetensors"))
print("written")
)PY";
  std::ofstream(dir / "write.py") << script;
  const auto [status, output] = run_command(python + " " + (dir / "write.py") + " " + dir.path());
  ASSERT_EQ(status, 0) << output;
  ASSERT_TRUE(std::filesystem::exists(dir / "llama_sharded/model.safetensors.index.json")) << output;

  for (const auto& [name, config] : configs) {
    SCOPED_TRACE(name);
    // transformers 5 spells RoPE as rope_parameters: the same hyperparameters, and the same model
    // built from them (as `eval DIR` builds it).
    std::ifstream written(dir / name + "/config.json");
    const nlohmann::json json = nlohmann::json::parse(written);
    EXPECT_EQ(hugging_face_config_differences(config, json), std::vector<std::string>{});
    const ModelConfig described = hugging_face_model_config(json, name + "/config.json");
    expect_same_model(described, config);
    const auto model = fp32_model(described, 3);
    load_hugging_face_weights(*model, dir / name);
    const std::string path = dir / name + "/expected.safetensors";
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    const checkpoint::SafetensorsIndex index = checkpoint::parse_safetensors_header({data, bytes.size()}, path);
    std::map<std::string, at::Tensor> want;
    for (const auto& entry : index.entries) {
      const auto type = entry.dtype == "I64" ? at::kLong : at::kFloat;
      want[entry.name] = at::from_blob(const_cast<std::uint8_t*>(data + index.data_start + entry.begin), entry.shape,
                                       at::TensorOptions().dtype(type)).clone();
    }
    torch::NoGradGuard no_grad;
    model->eval();
    const at::Tensor logits = model->forward(want.at("input_ids"));
    EXPECT_LT(testing::relative_error(logits, want.at("logits")), 1e-4);
  }
}

}  // namespace
}  // namespace albion::models
