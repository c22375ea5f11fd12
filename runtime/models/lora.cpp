// File: runtime/models/lora.cpp
#include "runtime/models/lora.h"

#include <torch/types.h>

#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "runtime/base/check.h"
#include "runtime/models/layers.h"

namespace albion::models {
namespace {

// The linear layers a LoRA target may name, by module path; the output head never.
std::vector<std::pair<std::string, std::shared_ptr<AdaptableLinear>>> adaptable_layers(CausalLm& model) {
  std::vector<std::pair<std::string, std::shared_ptr<AdaptableLinear>>> layers;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto layer = std::dynamic_pointer_cast<AdaptableLinear>(item.value());
    if (layer != nullptr && item.key() != "lm_head") layers.emplace_back(item.key(), layer);
  }
  return layers;
}

// PEFT's rule: the target is the whole path or its last dot-separated components.
bool matches(const std::string& path, const std::string& target) {
  if (target == "all-linear") return true;
  return path == target || (path.size() > target.size() && path.ends_with(target) &&
                            path[path.size() - target.size() - 1] == '.');
}

}  // namespace

std::vector<std::string> add_lora_adapters(CausalLm& model, const LoraOptions& options) {
  ALBION_CHECK_AS(UsageError, options.rank > 0, "the LoRA rank must be positive, got ", options.rank);
  ALBION_CHECK_AS(UsageError, options.alpha > 0 && std::isfinite(options.alpha),
                  "the LoRA alpha must be positive and finite, got ", options.alpha);
  ALBION_CHECK_AS(UsageError, options.dropout >= 0 && options.dropout < 1, "the LoRA dropout must be in [0, 1), got ",
                  options.dropout);
  ALBION_CHECK_AS(UsageError, !options.targets.empty(), "no LoRA target layers named");
  const auto layers = adaptable_layers(model);
  std::set<std::string> chosen;
  for (const std::string& target : options.targets) {
    bool matched = false;
    for (const auto& [path, layer] : layers) {
      if (!matches(path, target)) continue;
      chosen.insert(path);
      matched = true;
    }
    if (!matched) {
      std::set<std::string> names;  // "q_proj", "attn.c_proj": what a target can say
      for (const auto& [path, layer] : layers) {
        const std::size_t last = path.rfind('.');
        const std::size_t parent = last == std::string::npos ? std::string::npos : path.rfind('.', last - 1);
        names.insert(path.substr(last + 1));
        if (parent != std::string::npos) names.insert(path.substr(parent + 1));
      }
      std::string known;
      for (const std::string& name : names) known += (known.empty() ? "" : ", ") + name;
      throw UsageError(str_cat("LoRA target '", target, "' names no linear layer of the ",
                               architecture_name(model.config().architecture), " model (it has: all-linear, ",
                               known, ")"));
    }
  }
  for (at::Tensor& parameter : model.parameters()) parameter.set_requires_grad(false);
  std::vector<std::string> adapted;
  for (const auto& [path, layer] : layers) {  // registration order, so a seed fixes the draws
    if (chosen.count(path) == 0) continue;
    layer->add_lora(options.rank, options.alpha, options.dropout);
    adapted.push_back(path);
  }
  return adapted;
}

std::int64_t hold_frozen_weights_in_bf16(CausalLm& model) {
  std::int64_t freed = 0;
  // Every linear layer, the output head too where it has a weight of its own (a tied head is the
  // embedding table, which the lookup reads in fp32).
  for (const auto& module : model.modules(/*include_self=*/false)) {
    if (auto layer = std::dynamic_pointer_cast<AdaptableLinear>(module)) {
      freed += layer->hold_frozen_weight_in(at::kBFloat16);
    }
  }
  return freed;
}

std::vector<std::pair<std::string, at::Tensor>> merged_parameters(CausalLm& model) {
  std::map<std::string, at::Tensor> merged;
  {
    torch::NoGradGuard no_grad;
    for (const auto& [path, layer] : adaptable_layers(model)) {
      if (layer->has_lora()) merged.emplace(path + ".weight", layer->merged_weight());
    }
  }
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& [name, tensor] : model.named_parameters()) {
    if (name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos) continue;
    auto found = merged.find(name);
    out.emplace_back(name, found != merged.end() ? found->second : tensor);
  }
  return out;
}

}  // namespace albion::models
