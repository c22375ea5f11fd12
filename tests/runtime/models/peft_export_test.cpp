// File: tests/runtime/models/peft_export_test.cpp
// LoRA adapters in PEFT's format (runtime/models/peft_export.h): PEFT's names and config, refusals
// of what is no adapter, and PEFT itself (PeftModel.from_pretrained over transformers' base model)
// computing the logits Albion's adapted model computes, for GPT-2 (Conv1D, fan_in_fan_out) and
// Llama.
#include "runtime/models/peft_export.h"

#include <gtest/gtest.h>
#include <torch/types.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint/export/safetensors.h"
#include "runtime/base/error.h"
#include "runtime/models/lora.h"
#include "tests/runtime/models/model_test_support.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace albion::models {
namespace {

using testing::usage_error_of;

// A randomised fp32 model with trained-looking rank-4 adapters on `targets` (B non-zero).
std::shared_ptr<CausalLm> adapted_model(const ModelConfig& config, const std::vector<std::string>& targets) {
  auto model = testing::randomised_fp64_model(config, 19);
  model->to(at::kFloat);
  add_lora_adapters(*model, {4, 8, targets});
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : model->trainable_parameters()) p.normal_(0.0, 0.2);
  return model;
}

TEST(PeftExport, NamesAndConfigArePefts) {
  const ModelConfig config = testing::small_gpt2();
  const auto model = adapted_model(config, {"c_attn"});
  const PeftAdapter adapter = to_peft_adapter(config, model->trainable_parameters(), 4, 8, 0.05, "/data/uk/base");
  ASSERT_EQ(adapter.tensors.size(), 4u);
  EXPECT_EQ(adapter.tensors[0].name, "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight");
  EXPECT_EQ(adapter.tensors[1].name, "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight");
  EXPECT_EQ(adapter.tensors[0].value.sizes(), (std::vector<std::int64_t>{4, 64}));
  EXPECT_EQ(adapter.tensors[1].value.sizes(), (std::vector<std::int64_t>{192, 4}));
  const nlohmann::json json = nlohmann::json::parse(adapter.config_json);
  EXPECT_EQ(json["peft_type"], "LORA");
  EXPECT_EQ(json["r"], 4);
  EXPECT_EQ(json["lora_alpha"], 8.0);
  EXPECT_EQ(json["lora_dropout"], 0.05);
  EXPECT_EQ(json["fan_in_fan_out"], true);
  EXPECT_EQ(json["base_model_name_or_path"], "/data/uk/base");
  EXPECT_EQ(json["target_modules"], nlohmann::json({"transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"}));

  const at::Tensor a = at::zeros({4, 64});
  EXPECT_NE(usage_error_of([&] { to_peft_adapter(config, {{"transformer.wte.weight", a}}, 4, 8, 0, ""); })
                .find("'transformer.wte.weight' is not a LoRA adapter factor"), std::string::npos);
  EXPECT_NE(usage_error_of([&] { to_peft_adapter(config, {{"x.lora_A.weight", a}}, 4, 8, 0, ""); })
                .find("'x' has lora_A but no lora_B"), std::string::npos);
  EXPECT_NE(usage_error_of([&] { to_peft_adapter(config, {{"x.lora_A.weight", a}}, 8, 8, 0, ""); })
                .find("not that of a rank-8 factor"), std::string::npos);
  EXPECT_NE(usage_error_of([&] { to_peft_adapter(config, {}, 4, 8, 0, ""); }).find("no LoRA adapters"), std::string::npos);
}

// Writes the base model (its weights without the adapters), the PEFT adapter and the adapted
// model's logits on fixed ids into `dir`.
void export_base_adapter_and_logits(const ModelConfig& config, const std::vector<std::string>& targets,
                                    const std::filesystem::path& dir) {
  const auto model = adapted_model(config, targets);
  std::vector<std::pair<std::string, at::Tensor>> base;
  for (auto& [name, p] : model->named_parameters()) {
    if (!p.requires_grad()) base.emplace_back(name, p);
  }
  std::filesystem::create_directories(dir / "base");
  const std::vector<HfTensor> hf = to_hugging_face(config, base);
  checkpoint::write_safetensors(dir / "base" / "model.safetensors", to_safetensors(hf), hugging_face_safetensors_metadata());
  std::ofstream(dir / "base" / "config.json") << hugging_face_config_json(config);
  const PeftAdapter adapter = to_peft_adapter(config, model->trainable_parameters(), 4, 8, 0, (dir / "base").string());
  std::filesystem::create_directories(dir / "adapter");
  checkpoint::write_safetensors(dir / "adapter" / "adapter_model.safetensors", to_safetensors(adapter.tensors),
                                hugging_face_safetensors_metadata());
  std::ofstream(dir / "adapter" / "adapter_config.json") << adapter.config_json;
  testing::write_expected_logits(*model, dir / "expected.safetensors");
}

TEST(PeftExport, PeftLoadsTheAdaptersAndComputesTheSameLogits) {
  const std::string python = ALBION_PYTHON;
  if (!testing_support::python_imports(python, "peft, transformers, torch, safetensors")) {
    GTEST_SKIP() << "no " << python << " with the `peft`, `transformers`, `torch` and `safetensors` packages";
  }
  testing_support::TempDir dir;
  export_base_adapter_and_logits(testing::small_gpt2(), {"all-linear"}, dir / "gpt2");
  export_base_adapter_and_logits(testing::small_llama(false), {"q_proj", "v_proj", "down_proj"}, dir / "llama");
  const std::string script = R"PY(
import os, sys
import peft, torch, transformers
from safetensors.torch import load_file
root = sys.argv[1]
for name in sorted(os.listdir(root)):
    d = os.path.join(root, name)
    if not os.path.isdir(d):
        continue
    base = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(d, "base"))
    want = load_file(os.path.join(d, "expected.safetensors"))
    with torch.no_grad():
        plain = base(want["input_ids"]).logits
    model = peft.PeftModel.from_pretrained(base, os.path.join(d, "adapter"))
    model.eval()
    with torch.no_grad():
        got = model(want["input_ids"]).logits
    scale = want["logits"].abs().max()
    error = ((got - want["logits"]).abs().max() / scale).item()
    moved = ((plain - want["logits"]).abs().max() / scale).item()
    print(name, "relative error", error, "adapters move the logits by", moved)
    assert moved > 1e-2, (name, moved)
    assert error < 1e-4, (name, error)
print("peft agrees")
)PY";
  std::ofstream(dir / "check.py") << script;
  const auto [status, output] = testing_support::run_command(python + " " + (dir / "check.py") + " " + dir.path());
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("peft agrees"), std::string::npos) << output;
}

}  // namespace
}  // namespace albion::models
