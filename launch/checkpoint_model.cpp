// File: launch/checkpoint_model.cpp
#include "launch/checkpoint_model.h"

#include <c10/util/accumulate.h>
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "runtime/base/check.h"
#include "runtime/base/progress.h"
#include "runtime/models/bf16_inference.h"
#include "runtime/models/hf_import.h"
#include "runtime/models/lora.h"
#include "runtime/models/tensor_parallel.h"
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

CheckpointModel describe_checkpoint_model(checkpoint::CheckpointReader& reader, std::int64_t tensor_degree,
                                          bool adapters_alone) {
  const std::string path = reader.path().string();
  std::istringstream ini(reader.manifest().recipe);
  CheckpointModel stored;
  stored.recipe = config::parse_recipe(ini, path + " (stored recipe)", {});
  stored.config = train::recipe_model_config(stored.recipe);
  stored.config.vocab_padding = train::recorded_vocab_padding(reader.manifest().state_json, path);
  if (const std::optional<train::StoredVocabulary> vocabulary = train::stored_vocabulary(reader)) {
    stored.config.vocab_size = vocabulary->rows;  // the rows trained, whatever the recipe's degree padded
  }
  stored.encrypted = reader.manifest().header.encrypted();
  for (const checkpoint::TensorInfo& info : reader.tensors()) {
    if (!info.name.starts_with(kModelPrefix)) continue;
    ALBION_CHECK_AS(IntegrityError, info.dtype == "F32", path, ": ", info.name, " is ", info.dtype, ", expected F32");
    stored.weights.push_back(info);
  }
  ALBION_CHECK_AS(IntegrityError, !stored.weights.empty(), path, ": the checkpoint holds no model weights");
  stored.lora_base = train::recorded_lora_base(reader.manifest().state_json);
  ALBION_CHECK_AS(IntegrityError, stored.lora_base.empty() == (stored.recipe.lora.rank == 0), path,
                  ": the stored recipe's lora.rank and the trainer state's LoRA base disagree");
  if (!stored.lora_base.empty() && !adapters_alone) check_lora_base(stored.lora_base, path);  // before decrypting
  if (stored.config.vocab_size == 0) stored.config.vocab_size = stored.lora_base.vocab_size;
  stored.config.pad_vocabulary_for(tensor_degree);
  return stored;
}

CheckpointModel read_checkpoint_model(checkpoint::CheckpointReader& reader, bool terminal, bool adapters_alone) {
  CheckpointModel stored = describe_checkpoint_model(reader, 1, adapters_alone);
  double weight_bytes = 0;
  for (const checkpoint::TensorInfo& info : stored.weights) {
    weight_bytes += 4.0 * static_cast<double>(c10::multiply_integers(info.global_shape));
  }
  const WeightRange read = weights_in(reader);
  ProgressBar bar(stored.encrypted ? "decrypt" : "read", weight_bytes, "MB", 1e6, terminal);
  for (checkpoint::TensorInfo& info : stored.weights) {
    const std::string name = info.name.substr(std::string(kModelPrefix).size());
    const auto read_stored = [&](std::int64_t offset, std::int64_t numel) { return read(name, offset, numel); };
    const at::Tensor values =
        models::read_tensor_parallel_part(read_stored, {}, info.global_shape, 0, 1, info.transposed);
    info.transposed = false;  // as `parameters` holds it
    bar.advance(static_cast<double>(values.nbytes()));
    stored.parameters.emplace_back(name, values);
  }
  bar.finish();
  return stored;
}

WeightRange weights_in(checkpoint::CheckpointReader& reader) {
  return [&reader](const std::string& name, std::int64_t offset, std::int64_t numel) {
    at::Tensor values = at::empty({numel}, at::kFloat);
    reader.read(kModelPrefix + name, offset, numel,
                {static_cast<std::uint8_t*>(values.data_ptr()), static_cast<std::size_t>(values.nbytes())});
    return values;
  };
}

WeightRange weights_in(const CheckpointModel& stored) {
  return [&stored](const std::string& name, std::int64_t offset, std::int64_t numel) {
    for (const auto& [stored_name, values] : stored.parameters) {
      if (stored_name == name) return values.reshape({-1}).narrow(0, offset, numel);
    }
    throw IntegrityError(str_cat("the checkpoint has no weights for '", name, "'"));
  };
}

std::shared_ptr<models::CausalLm> load_checkpoint_model(const CheckpointModel& stored, const WeightRange& read,
                                                        const at::Device& device, const std::string& what,
                                                        const LoadOptions& options) {
  models::ModelConfig config = stored.config;
  config.validate();
  const std::shared_ptr<collectives::Communicator>& group = options.tensor_group;
  // Every parameter is set below, from the base's files or the checkpoint (each checked present).
  std::shared_ptr<models::CausalLm> model = models::make_model(config, at::kCPU, group, models::InitialValues::kNone);
  if (!stored.lora_base.empty()) {  // the frozen base (checked by describe_checkpoint_model), then adapters
    models::load_hugging_face_weights(*model, stored.lora_base.directory);
    models::add_lora_adapters(*model, train::recipe_lora_options(stored.recipe));
  }
  std::map<std::string, const checkpoint::TensorInfo*> whole;
  for (const checkpoint::TensorInfo& info : stored.weights) {
    whole[info.name.substr(std::string(kModelPrefix).size())] = &info;
  }
  const std::int64_t parts = group ? group->size() : 1;
  const std::int64_t part = group ? group->rank() : 0;
  double bytes = 0;
  for (auto& [name, parameter] : model->trainable_parameters()) bytes += static_cast<double>(parameter.nbytes());
  std::optional<ProgressBar> bar;
  if (options.progress) bar.emplace(stored.encrypted ? "decrypt" : "read", bytes, "MB", 1e6, options.terminal);
  torch::NoGradGuard no_grad;
  for (auto& [name, parameter] : model->trainable_parameters()) {
    auto found = whole.find(name);
    ALBION_CHECK_AS(IntegrityError, found != whole.end(), what, ": the checkpoint has no weights for '", name, "'");
    const checkpoint::TensorInfo& info = *found->second;
    const models::TensorParallelCut cut = group ? models::tensor_parallel_split(name) : models::TensorParallelCut{};
    const std::vector<std::int64_t> expected = models::tensor_parallel_global_shape(parameter.sizes(), cut.dim, parts);
    std::function<at::Tensor(std::int64_t, std::int64_t)> read_stored = [&](std::int64_t offset, std::int64_t numel) {
      return read(name, offset, numel);
    };
    std::vector<std::int64_t> shape = info.global_shape;
    if (models::holds_vocabulary_rows(name) && !info.transposed && !shape.empty() &&
        shape.front() >= config.vocab_in_use()) {
      // Rows past the vocabulary in use: masked padding, as many as this degree needs (Note [A
      // checkpoint's vocabulary on another number of ranks]).
      read_stored = models::read_with_zeros_past(std::move(read_stored), c10::multiply_integers(shape), at::kFloat);
      shape.front() = expected.front();
    }
    ALBION_CHECK_AS(IntegrityError, shape == expected, what, ": '", name, "' has shape ",
                    c10::IntArrayRef(info.global_shape), ", the model expects ", c10::IntArrayRef(expected));
    parameter.copy_(
        models::read_tensor_parallel_part(read_stored, cut, parameter.sizes(), part, parts, info.transposed));
    if (bar) bar->advance(static_cast<double>(parameter.nbytes()));
    whole.erase(found);
  }
  if (bar) bar->finish();
  ALBION_CHECK_AS(IntegrityError, whole.empty(), what, ": the checkpoint has weights the model lacks, e.g. '",
                  whole.empty() ? "" : whole.begin()->first, "'");
  if (options.bf16_inference) models::hold_for_bf16_inference(*model);
  model->to(device);
  return model;
}

}  // namespace albion::launch
