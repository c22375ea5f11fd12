// File: tests/runtime/models/hf_export_test.cpp
// Export to a transformers checkpoint: every parameter of small GPT-2 and Llama models maps to a
// unique transformers key with the shape transformers' modules have (written out here by hand,
// not taken from Albion's models), values unchanged (no transposes, Note [Hugging Face names]);
// refusals; config.json. Where .venv's Python has `transformers`, `torch` and `safetensors`,
// transformers loads each exported directory and must reproduce Albion's logits (skipped otherwise).
#include "runtime/models/hf_export.h"

#include <gtest/gtest.h>
#include <torch/types.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "checkpoint/export/safetensors.h"
#include "runtime/base/error.h"
#include "tests/runtime/models/model_test_support.h"
#include "tests/support/hugging_face_directory.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace albion::models {
namespace {

using Named = std::vector<std::pair<std::string, at::Tensor>>;
using Shape = std::vector<std::int64_t>;
using testing::randomised_fp64_model;
using testing::small_gpt2;
using testing::small_llama;
using testing_support::run_command;
using testing::usage_error_of;

ModelConfig untied(ModelConfig c) {
  c.tie_embeddings = false;
  return c;
}

std::map<std::string, at::Tensor> by_name(const std::vector<HfTensor>& tensors) {
  std::map<std::string, at::Tensor> out;
  for (const HfTensor& t : tensors) EXPECT_TRUE(out.emplace(t.name, t.value).second) << "duplicate " << t.name;
  return out;
}

// Every exported tensor is contiguous fp32 on the CPU, equal to the Albion parameter of the same
// name, and nothing else is exported.
void expect_identity_export(const Named& albion, const std::vector<HfTensor>& hf) {
  const std::map<std::string, at::Tensor> exported = by_name(hf);
  ASSERT_EQ(exported.size(), albion.size());
  for (const auto& [name, value] : albion) {
    ASSERT_TRUE(exported.count(name)) << name;
    const at::Tensor& out = exported.at(name);
    EXPECT_EQ(out.scalar_type(), at::kFloat) << name;
    EXPECT_TRUE(out.device().is_cpu() && out.is_contiguous()) << name;
    EXPECT_TRUE(at::equal(out, value.to(at::kFloat))) << name;
  }
}

TEST(HfExport, Gpt2ParametersKeepTheirNamesAndConv1dLayout) {
  const ModelConfig config = small_gpt2();  // hidden 64, inner 256, vocab 97, context 24, 2 layers
  auto model = make_model(config);
  const Named albion = model->named_parameters();
  const std::vector<HfTensor> hf = to_hugging_face(config, albion);
  expect_identity_export(albion, hf);
  ASSERT_EQ(hf.size(), 2u + 2u * 12u + 2u);
  EXPECT_EQ(hf.front().name, "transformer.wte.weight");
  EXPECT_EQ(hf.back().name, "transformer.ln_f.bias");
  const std::map<std::string, Shape> expected = {
      {"transformer.wte.weight", {97, 64}},          {"transformer.wpe.weight", {24, 64}},
      {"transformer.h.0.ln_1.weight", {64}},         {"transformer.h.0.ln_1.bias", {64}},
      {"transformer.h.0.attn.c_attn.weight", {64, 192}}, {"transformer.h.0.attn.c_attn.bias", {192}},
      {"transformer.h.1.attn.c_proj.weight", {64, 64}},  {"transformer.h.1.attn.c_proj.bias", {64}},
      {"transformer.h.1.ln_2.weight", {64}},         {"transformer.h.1.mlp.c_fc.weight", {64, 256}},
      {"transformer.h.1.mlp.c_fc.bias", {256}},      {"transformer.h.1.mlp.c_proj.weight", {256, 64}},
      {"transformer.h.1.mlp.c_proj.bias", {64}},     {"transformer.ln_f.weight", {64}},
  };
  const std::map<std::string, at::Tensor> exported = by_name(hf);
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(exported.count(name)) << name;
    EXPECT_EQ(exported.at(name).sizes().vec(), shape) << name;
  }
  EXPECT_EQ(exported.count("lm_head.weight"), 0u) << "tied: transformers re-ties it from wte";

  const std::vector<HfTensor> untied_hf = to_hugging_face(untied(config), make_model(untied(config))->named_parameters());
  EXPECT_EQ(untied_hf.back().name, "lm_head.weight");
  EXPECT_EQ(untied_hf.back().value.sizes().vec(), (Shape{97, 64}));
}

TEST(HfExport, LlamaParametersKeepTheirNamesAndLinearLayout) {
  for (const bool tie : {true, false}) {
    const ModelConfig config = small_llama(tie);  // hidden 64, 4 heads of 16, 2 kv heads, inner 96
    auto model = make_model(config);
    const Named albion = model->named_parameters();
    const std::vector<HfTensor> hf = to_hugging_face(config, albion);
    expect_identity_export(albion, hf);
    ASSERT_EQ(hf.size(), 1u + 2u * 9u + 1u + (tie ? 0u : 1u));
    EXPECT_EQ(hf.front().name, "model.embed_tokens.weight");
    const std::map<std::string, Shape> expected = {
        {"model.embed_tokens.weight", {97, 64}},
        {"model.layers.0.self_attn.q_proj.weight", {64, 64}},
        {"model.layers.0.self_attn.k_proj.weight", {32, 64}},
        {"model.layers.0.self_attn.v_proj.weight", {32, 64}},
        {"model.layers.1.self_attn.o_proj.weight", {64, 64}},
        {"model.layers.1.mlp.gate_proj.weight", {96, 64}},
        {"model.layers.1.mlp.up_proj.weight", {96, 64}},
        {"model.layers.1.mlp.down_proj.weight", {64, 96}},
        {"model.layers.1.input_layernorm.weight", {64}},
        {"model.layers.1.post_attention_layernorm.weight", {64}},
        {"model.norm.weight", {64}},
    };
    const std::map<std::string, at::Tensor> exported = by_name(hf);
    for (const auto& [name, shape] : expected) {
      ASSERT_TRUE(exported.count(name)) << name;
      EXPECT_EQ(exported.at(name).sizes().vec(), shape) << name;
    }
    EXPECT_EQ(exported.count("lm_head.weight"), tie ? 0u : 1u);
  }
}

TEST(HfExport, ConvertsAnyDtypeAndLayoutToContiguousFp32) {
  const ModelConfig config = small_llama(true);
  auto model = randomised_fp64_model(config, 3);
  Named albion = model->named_parameters();
  albion[1].second = albion[1].second.t().contiguous().t();  // q_proj: same values, transposed strides
  ASSERT_FALSE(albion[1].second.is_contiguous());
  const std::vector<HfTensor> hf = to_hugging_face(config, albion);
  expect_identity_export(albion, hf);
}

TEST(HfExport, RefusesNamesItCannotMapAndInconsistentTensors) {
  const ModelConfig config = small_gpt2();
  const Named albion = make_model(config)->named_parameters();
  auto refused = [&](const Named& parameters, const std::string& expected) {
    const std::string message = usage_error_of([&] { to_hugging_face(config, parameters); });
    EXPECT_NE(message.find(expected), std::string::npos) << message;
  };

  Named prefixed = albion;
  prefixed[0].first = "model.transformer.wte.weight";  // the checkpoint's prefix left on
  refused(prefixed, "'model.transformer.wte.weight'");
  Named llama_name = albion;
  llama_name.emplace_back("model.layers.0.self_attn.q_proj.weight", at::zeros({64, 64}));
  refused(llama_name, "no GPT2LMHeadModel name for parameter 'model.layers.0.self_attn.q_proj.weight'");
  Named missing = albion;
  missing.erase(missing.begin() + 5);
  refused(missing, "'" + albion[5].first + "' is missing");
  Named twice = albion;
  twice.push_back(albion[3]);
  refused(twice, "appears twice");
  Named transposed = albion;
  for (auto& [name, value] : transposed) {
    if (name == "transformer.h.0.attn.c_attn.weight") value = value.t();  // an nn.Linear layout
  }
  refused(transposed, "expects [64, 192]");

  // A tied head that a state dict still names: dropped when it is the embedding, refused if not.
  Named with_head = albion;
  with_head.emplace_back("lm_head.weight", albion[0].second.clone());
  EXPECT_EQ(by_name(to_hugging_face(config, with_head)).count("lm_head.weight"), 0u);
  with_head.back().second = with_head.back().second + 1;
  refused(with_head, "differs from 'transformer.wte.weight'");

  ModelConfig invalid = config;
  invalid.vocab_size = 0;
  EXPECT_THROW(to_hugging_face(invalid, albion), UsageError);
}

TEST(HfExport, ConfigJsonDescribesTheModel) {
  const nlohmann::json gpt2 = nlohmann::json::parse(hugging_face_config_json(small_gpt2()));
  EXPECT_EQ(gpt2["architectures"], nlohmann::json::array({"GPT2LMHeadModel"}));
  EXPECT_EQ(gpt2["model_type"], "gpt2");
  EXPECT_EQ(gpt2["vocab_size"], 97);
  EXPECT_EQ(gpt2["n_positions"], 24);
  EXPECT_EQ(gpt2["n_embd"], 64);
  EXPECT_EQ(gpt2["n_layer"], 2);
  EXPECT_EQ(gpt2["n_head"], 4);
  EXPECT_EQ(gpt2["n_inner"], 256);
  EXPECT_EQ(gpt2["activation_function"], "gelu_new");
  EXPECT_EQ(gpt2["layer_norm_epsilon"], 1e-5);
  EXPECT_EQ(gpt2["tie_word_embeddings"], true);
  EXPECT_EQ(gpt2["torch_dtype"], "float32");
  EXPECT_TRUE(gpt2["eos_token_id"].is_null());

  const nlohmann::json llama = nlohmann::json::parse(hugging_face_config_json(small_llama(false)));
  EXPECT_EQ(llama["architectures"], nlohmann::json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(llama["model_type"], "llama");
  EXPECT_EQ(llama["hidden_size"], 64);
  EXPECT_EQ(llama["intermediate_size"], 96);
  EXPECT_EQ(llama["num_hidden_layers"], 2);
  EXPECT_EQ(llama["num_attention_heads"], 4);
  EXPECT_EQ(llama["num_key_value_heads"], 2);
  EXPECT_EQ(llama["head_dim"], 16);
  EXPECT_EQ(llama["max_position_embeddings"], 24);
  EXPECT_EQ(llama["rope_theta"], 10000.0);
  EXPECT_EQ(llama["rms_norm_eps"], 1e-5);
  EXPECT_EQ(llama["tie_word_embeddings"], false);
  EXPECT_EQ(llama["rope_scaling"], (nlohmann::json{{"rope_type", "llama3"},
                                                   {"factor", 4.0},
                                                   {"low_freq_factor", 1.0},
                                                   {"high_freq_factor", 4.0},
                                                   {"original_max_position_embeddings", 64}}));
  ModelConfig plain_rope = small_llama(true);
  plain_rope.rope_scaling.reset();
  EXPECT_TRUE(nlohmann::json::parse(hugging_face_config_json(plain_rope))["rope_scaling"].is_null());

  const nlohmann::json preset = nlohmann::json::parse(hugging_face_config_json(model_preset("llama-3.1-8b")));
  EXPECT_EQ(preset["rope_theta"], 500000.0);
  EXPECT_EQ(preset["rope_scaling"]["factor"], 8.0);
  EXPECT_EQ(preset["max_position_embeddings"], 131072);

  const nlohmann::json qwen = nlohmann::json::parse(hugging_face_config_json(model_preset("qwen2.5-7b")));
  EXPECT_EQ(qwen["architectures"], nlohmann::json::array({"Qwen2ForCausalLM"}));
  EXPECT_EQ(qwen["model_type"], "qwen2");
  EXPECT_EQ(qwen["hidden_size"], 3584);
  EXPECT_EQ(qwen["num_key_value_heads"], 4);
  EXPECT_EQ(qwen["vocab_size"], 152064);
  EXPECT_EQ(qwen["rope_theta"], 1000000.0);
  EXPECT_EQ(qwen["rms_norm_eps"], 1e-6);
  EXPECT_TRUE(qwen["rope_scaling"].is_null());
  EXPECT_EQ(qwen["use_sliding_window"], false);
  EXPECT_FALSE(qwen.contains("attention_bias"));  // LlamaConfig's flag, which would add o_proj.bias
}

TEST(HfExport, SafetensorsViewsBorrowTheTensorBytes) {
  const ModelConfig config = small_llama(true);
  const std::vector<HfTensor> hf = to_hugging_face(config, make_model(config)->named_parameters());
  const std::vector<checkpoint::SafetensorsTensor> views = to_safetensors(hf);
  ASSERT_EQ(views.size(), hf.size());
  for (std::size_t i = 0; i < hf.size(); ++i) {
    EXPECT_EQ(views[i].name, hf[i].name);
    EXPECT_EQ(views[i].dtype, "F32");
    EXPECT_EQ(views[i].shape, hf[i].value.sizes().vec());
    EXPECT_EQ(views[i].bytes.data(), hf[i].value.data_ptr());
    EXPECT_EQ(views[i].bytes.size(), hf[i].value.nbytes());
  }
  EXPECT_THROW(to_safetensors({{"c", at::zeros({2}, at::kComplexFloat)}}), UsageError);
  EXPECT_EQ(hugging_face_safetensors_metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
}

// Exports `config`'s randomised model to `dir` with its logits on fixed ids (expected.safetensors).
void export_with_logits(const ModelConfig& config, const std::string& dir) {
  auto model = randomised_fp64_model(config, 17);
  model->to(at::kFloat);
  testing_support::write_hugging_face_directory(*model, dir);
  testing::write_expected_logits(*model, dir + "/expected.safetensors");
}

TEST(HfExport, TransformersLoadsTheExportAndComputesTheSameLogits) {
  const std::string python = ALBION_PYTHON;
  if (!testing_support::python_imports(python, "transformers, torch, safetensors")) {
    GTEST_SKIP() << "no " << python << " with the `transformers`, `torch` and `safetensors` packages";
  }
  testing_support::TempDir dir;
  export_with_logits(small_gpt2(), dir / "gpt2_tied");
  export_with_logits(untied(small_gpt2()), dir / "gpt2_untied");
  export_with_logits(small_llama(true), dir / "llama_tied");
  ModelConfig plain = small_llama(false);
  plain.rope_scaling.reset();
  export_with_logits(plain, dir / "llama_untied_plain_rope");
  ModelConfig qwen2 = plain;
  qwen2.attention_bias = true;
  qwen2.rope_theta = 1000000.0;
  export_with_logits(qwen2, dir / "qwen2_untied");

  const std::string script = R"PY(
import os, sys
import torch
import transformers
from safetensors.torch import load_file
root = sys.argv[1]
for name in sorted(os.listdir(root)):
    d = os.path.join(root, name)
    if not os.path.isdir(d):
        continue
    model, info = transformers.AutoModelForCausalLM.from_pretrained(d, output_loading_info=True)
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert not info.get(kind), (name, kind, info[kind])
    expected_class = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM",
                      "qwen2": "Qwen2ForCausalLM"}[name.split("_")[0]]
    assert type(model).__name__ == expected_class, (name, type(model).__name__)
    tied = model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert tied == ("_tied" in name), (name, tied)
    assert model.dtype == torch.float32, (name, model.dtype)
    model.eval()
    want = load_file(os.path.join(d, "expected.safetensors"))
    with torch.no_grad():
        got = model(want["input_ids"]).logits
    error = ((got - want["logits"]).abs().max() / want["logits"].abs().max()).item()
    print(name, "relative error", error)
    assert error < 1e-4, (name, error)
print("transformers agrees")
)PY";
  std::ofstream(dir / "check.py") << script;
  const auto [status, output] = run_command(python + " " + (dir / "check.py") + " " + dir.path());
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("transformers agrees"), std::string::npos) << output;
}

}  // namespace
}  // namespace albion::models
