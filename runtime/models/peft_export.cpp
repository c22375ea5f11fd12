// File: runtime/models/peft_export.cpp
#include "runtime/models/peft_export.h"

#include <map>
#include <nlohmann/json.hpp>

#include "runtime/base/check.h"

namespace albion::models {
namespace {

constexpr std::string_view kA = ".lora_A.weight";
constexpr std::string_view kB = ".lora_B.weight";

}  // namespace

PeftAdapter to_peft_adapter(const ModelConfig& config,
                            const std::vector<std::pair<std::string, at::Tensor>>& adapters, std::int64_t rank,
                            double alpha, double dropout, const std::string& base_model) {
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> layers;  // path -> (A, B)
  std::vector<std::string> order;
  for (const auto& [name, tensor] : adapters) {
    const bool a = name.ends_with(kA);
    ALBION_CHECK_AS(UsageError, a || name.ends_with(kB), "'", name, "' is not a LoRA adapter factor");
    const std::string path = name.substr(0, name.size() - kA.size());
    ALBION_CHECK_AS(UsageError, tensor.dim() == 2 && tensor.size(a ? 0 : 1) == rank, "'", name, "' has shape ",
                    tensor.sizes(), ", not that of a rank-", rank, " factor");
    auto [slot, added] = layers.try_emplace(path);
    if (added) order.push_back(path);
    at::Tensor& factor = a ? slot->second.first : slot->second.second;
    ALBION_CHECK_AS(UsageError, !factor.defined(), "'", name, "' appears twice");
    factor = tensor;
  }
  ALBION_CHECK_AS(UsageError, !order.empty(), "no LoRA adapters to export");
  PeftAdapter out;
  for (const std::string& path : order) {
    const auto& [a, b] = layers.at(path);
    ALBION_CHECK_AS(UsageError, a.defined() && b.defined(), "'", path, "' has lora_", a.defined() ? "A" : "B",
                    " but no lora_", a.defined() ? "B" : "A");
    for (const auto& [suffix, factor] : {std::pair{kA, a}, std::pair{kB, b}}) {
      out.tensors.push_back({str_cat("base_model.model.", path, suffix),
                             factor.detach().to(at::kCPU, at::kFloat).contiguous()});
    }
  }
  const bool gpt2 = config.architecture == Architecture::kGpt2;
  nlohmann::ordered_json json = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model},
      {"r", rank},
      {"lora_alpha", alpha},
      {"lora_dropout", dropout},
      {"target_modules", order},
      {"fan_in_fan_out", gpt2},  // GPT-2's Conv1D stores its weight [in, out]
      {"bias", "none"},
      {"use_rslora", false},
      {"modules_to_save", nullptr},
      {"init_lora_weights", true},
      {"inference_mode", true},
  };
  out.config_json = json.dump(2) + "\n";
  return out;
}

}  // namespace albion::models
