// File: launch/checkpoint_model.cpp
#include "launch/checkpoint_model.h"

#include <c10/util/accumulate.h>
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "runtime/base/check.h"
#include "runtime/base/progress.h"
#include "runtime/models/bf16_inference.h"
#include "runtime/models/hf_import.h"
#include "runtime/models/lora.h"
#include "runtime/train/checkpointing.h"
#include "runtime/train/trainer.h"

namespace albion::launch {

namespace {

constexpr const char* kModelPrefix = "model.";

// A LoRA checkpoint's base must still be where it was, with the same weights.
void check_lora_base(const train::LoraBase& base, const std::string& what) {
  ALBION_CHECK_AS(UsageError, std::filesystem::is_directory(base.directory), what,
                  ": the checkpoint holds LoRA adapters of the base model in ", base.directory,
                  ", which no longer exists; restore that directory to use them");
  train::require_same_lora_base(base, base.directory, models::hugging_face_weights_digest(base.directory), what);
}

}  // namespace

CheckpointModel read_checkpoint_model(checkpoint::CheckpointReader& reader, bool terminal, bool adapters_alone) {
  const std::string path = reader.path().string();
  std::istringstream ini(reader.manifest().recipe);
  CheckpointModel stored;
  stored.recipe = config::parse_recipe(ini, path + " (stored recipe)", {});
  stored.config = train::recipe_model_config(stored.recipe);
  std::vector<checkpoint::TensorInfo> weights;
  double weight_bytes = 0;
  for (const checkpoint::TensorInfo& info : reader.tensors()) {
    if (!info.name.starts_with(kModelPrefix)) continue;
    ALBION_CHECK_AS(IntegrityError, info.dtype == "F32", path, ": ", info.name, " is ", info.dtype, ", expected F32");
    weights.push_back(info);
    weight_bytes += 4.0 * static_cast<double>(c10::multiply_integers(info.global_shape));
  }
  stored.lora_base = train::recorded_lora_base(reader.manifest().state_json);
  ALBION_CHECK_AS(IntegrityError, stored.lora_base.empty() == (stored.recipe.lora.rank == 0), path,
                  ": the stored recipe's lora.rank and the trainer state's LoRA base disagree");
  if (!stored.lora_base.empty() && !adapters_alone) check_lora_base(stored.lora_base, path);  // before decrypting
  ProgressBar bar(reader.manifest().header.encrypted() ? "decrypt" : "read", weight_bytes, "MB", 1e6, terminal);
  for (const checkpoint::TensorInfo& info : weights) {
    at::Tensor values = at::empty(info.global_shape, at::kFloat);
    reader.read(info.name, 0, values.numel(),
                {static_cast<std::uint8_t*>(values.data_ptr()), static_cast<std::size_t>(values.nbytes())});
    bar.advance(static_cast<double>(values.nbytes()));
    stored.parameters.emplace_back(info.name.substr(std::string(kModelPrefix).size()), values);
  }
  bar.finish();
  ALBION_CHECK_AS(IntegrityError, !stored.parameters.empty(), path, ": the checkpoint holds no model weights");
  if (stored.config.vocab_size == 0) stored.config.vocab_size = stored.lora_base.vocab_size;
  if (stored.config.vocab_size == 0) {  // a preset that takes it from the tokenizer: the embedding knows it
    for (const auto& [name, values] : stored.parameters) {
      if (name.ends_with("wte.weight") || name.ends_with("embed_tokens.weight")) {
        stored.config.vocab_size = values.size(0);
      }
    }
  }
  return stored;
}

std::shared_ptr<models::CausalLm> load_checkpoint_model(CheckpointModel stored, const at::Device& device,
                                                        const std::string& what, bool bf16_inference) {
  stored.config.validate();
  // Every parameter is set below, from the base's files or the checkpoint (each checked present).
  std::shared_ptr<models::CausalLm> model =
      models::make_model(stored.config, at::kCPU, nullptr, models::InitialValues::kNone);
  if (!stored.lora_base.empty()) {  // the frozen base (checked by read_checkpoint_model), then adapters
    models::load_hugging_face_weights(*model, stored.lora_base.directory);
    models::add_lora_adapters(*model, train::recipe_lora_options(stored.recipe));
  }
  std::map<std::string, at::Tensor> weights(std::make_move_iterator(stored.parameters.begin()),
                                            std::make_move_iterator(stored.parameters.end()));
  torch::NoGradGuard no_grad;
  for (auto& [name, parameter] : model->trainable_parameters()) {
    auto found = weights.find(name);
    ALBION_CHECK_AS(IntegrityError, found != weights.end(), what, ": the checkpoint has no weights for '", name, "'");
    ALBION_CHECK_AS(IntegrityError, found->second.sizes() == parameter.sizes(), what, ": '", name, "' has shape ",
                    found->second.sizes(), ", the model expects ", parameter.sizes());
    parameter.copy_(found->second);
    weights.erase(found);
  }
  ALBION_CHECK_AS(IntegrityError, weights.empty(), what, ": the checkpoint has weights the model lacks, e.g. '",
                  weights.empty() ? "" : weights.begin()->first, "'");
  if (bf16_inference) models::hold_for_bf16_inference(*model);
  model->to(device);
  return model;
}

}  // namespace albion::launch
