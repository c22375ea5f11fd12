// File: runtime/models/peft_export.h
// LoRA adapters in PEFT's format, which `peft.PeftModel.from_pretrained(base, DIR)` and adapter
// servers (vLLM's multi-LoRA, for one) load next to the unchanged base model:
//   DIR/adapter_model.safetensors  "base_model.model.<layer>.lora_A.weight" [rank, in] and
//                                  "...lora_B.weight" [out, rank], fp32
//   DIR/adapter_config.json        peft_type LORA, r, lora_alpha, the adapted layers' paths as
//                                  target_modules, fan_in_fan_out for GPT-2's Conv1D layers
// Albion's adapter names are PEFT's already (runtime/models/lora.h); only the prefix PEFT's
// wrapper adds is new.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "runtime/models/hf_export.h"
#include "runtime/models/model_config.h"

namespace albion::models {

struct PeftAdapter {
  std::vector<HfTensor> tensors;  // contiguous CPU fp32, PEFT's names
  std::string config_json;        // adapter_config.json, pretty-printed with a final newline
};

// From a LoRA model's adapter parameters by Albion name ("...c_attn.lora_A.weight"; anything else
// is refused), of rank `rank`, scale alpha / rank and training dropout `dropout`. `base_model` is
// recorded as base_model_name_or_path. UsageError naming the tensor for a name that is no adapter factor, an
// A without its B (or the reverse), or a factor whose rank is not `rank`.
PeftAdapter to_peft_adapter(const ModelConfig& config,
                            const std::vector<std::pair<std::string, at::Tensor>>& adapters, std::int64_t rank,
                            double alpha, double dropout, const std::string& base_model);

}  // namespace albion::models
